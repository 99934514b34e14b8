package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/otpgate/otpgate/smpp"
)

// checkCarrierLink adds the problems of a carrier's reconnect, keepalive
// and TLS client settings (at path p).
func checkCarrierLink(p string, k CarrierConfig, add func(path, format string, a ...any)) {
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"auth_retry_delay", k.AuthRetryDelay},
		{"reconnect_delay", k.ReconnectDelay},
		{"enquire_link_interval", k.EnquireLinkInterval},
		{"inactivity_timeout", k.InactivityTimeout},
	} {
		if d.v < 0 {
			add(p+"."+d.key, "must not be negative")
		}
	}
	enquire := time.Duration(k.EnquireLinkInterval)
	if enquire <= 0 {
		enquire = smpp.DefaultEnquireLink
	}
	if k.InactivityTimeout > 0 && time.Duration(k.InactivityTimeout) <= enquire {
		add(p+".inactivity_timeout", "must be longer than enquire_link_interval (%s)", enquire)
	}
	switch {
	case k.TLSCertFile != "" && k.TLSKeyFile == "":
		add(p+".tls_key_file", "missing: tls_cert_file and tls_key_file go together")
	case k.TLSKeyFile != "" && k.TLSCertFile == "":
		add(p+".tls_cert_file", "missing: tls_cert_file and tls_key_file go together")
	case k.TLSCertFile != "" && !k.TLS:
		add(p+".tls_cert_file", "set but tls is false")
	case k.TLSCertFile != "":
		if _, err := tls.LoadX509KeyPair(k.TLSCertFile, k.TLSKeyFile); err != nil {
			add(p+".tls_cert_file", "%v", err)
		}
	}
	if k.TLSServerName != "" && !k.TLS {
		add(p+".tls_server_name", "set but tls is false")
	}
}

// Warnings lists what the configuration allows but some carriers may not:
// check-config prints them and the daemon logs them; neither fails.
func (c *Config) Warnings() Problems {
	var ws Problems
	for i, k := range c.Carriers {
		if k.Simulate {
			ws = append(ws, Problem{fmt.Sprintf("carriers[%d].simulate", i),
				"the bundled simulator takes this carrier's SMS: none leaves this machine, and its log lines carry each SMS's text, codes included; not for production"})
		}
		if n := len(k.Password); n > smpp.SMPPPassword && n <= smpp.MaxPassword {
			ws = append(ws, Problem{fmt.Sprintf("carriers[%d].password", i),
				fmt.Sprintf("longer than %d characters: SMPP 3.4 allows %d, many SMSCs accept up to %d; check with the carrier",
					smpp.SMPPPassword, smpp.SMPPPassword, smpp.MaxPassword)})
		}
	}
	return append(ws, c.fileWarnings...)
}

// logWarnings logs each warning of cfg.
func logWarnings(log *slog.Logger, cfg *Config) {
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", keyPath, w.Path, keyWarning, w.Msg)
	}
}

// applyLink maps a carrier's reconnect, keepalive and TLS client settings
// onto cc, whose TLS is already set when the carrier uses TLS. The name
// the SMSC's certificate is checked against defaults (in smpp) to the
// host of the address.
func applyLink(k CarrierConfig, cc *smpp.CarrierOptions) error {
	cc.AuthRetryDelay = time.Duration(k.AuthRetryDelay)
	cc.ReconnectDelay = time.Duration(k.ReconnectDelay)
	cc.EnquireLink = time.Duration(k.EnquireLinkInterval)
	cc.InactivityTimeout = time.Duration(k.InactivityTimeout)
	if cc.TLS == nil {
		return nil
	}
	cc.TLS.ServerName = k.TLSServerName
	if k.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(k.TLSCertFile, k.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("daemon: carrier %s: tls_cert_file: %w", k.Name, err)
		}
		cc.TLS.Certificates = []tls.Certificate{cert}
	}
	return nil
}
