package daemon

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/otpgate/otpgate/internal/redact"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/phone"
	"github.com/otpgate/otpgate/smpp"
	"go.yaml.in/yaml/v3"
)

// Config is the YAML configuration file (README.md, "Configuration";
// configs/otpgate.yaml is the annotated example). A top-level key tagged
// reload:"restart" cannot change on a reload (see restartOnly): the running
// daemon holds what it opened with it.
type Config struct {
	Listen         string          `yaml:"listen" reload:"restart"`
	DebugListen    string          `yaml:"debug_listen"`                  // replaced by admin_listen: refused with a hint
	AdminListen    string          `yaml:"admin_listen" reload:"restart"` // /metrics, /readyz with reason, pprof; "" turns it off
	Admin          AdminConfig     `yaml:"admin" reload:"restart"`
	MaxConnections int             `yaml:"max_connections" reload:"restart"`
	DataDir        string          `yaml:"data_dir" reload:"restart"`
	SecretFile     string          `yaml:"secret_file" reload:"restart"`
	Store          StoreConfig     `yaml:"store" reload:"restart"`
	SubmitTimeout  Duration        `yaml:"submit_timeout"`
	Log            LogConfig       `yaml:"log"`
	OTP            OTPConfig       `yaml:"otp"`
	Clients        []ClientConfig  `yaml:"clients"`
	Carriers       []CarrierConfig `yaml:"carriers"`
	Routes         []RouteConfig   `yaml:"routes"`
	BlockedNumbers []string        `yaml:"blocked_numbers"`
	// AuthFailuresPerMinute: failed API-key attempts one remote address
	// may make in a minute before 429 (0: no limit).
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute"`
	// TrustedProxies: CIDRs of the proxies whose X-Forwarded-For is
	// believed (empty: none).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Guard is the SMS-pumping guard (config_guard.go).
	Guard GuardConfig `yaml:"guard"`
	// Fleet is this node's place in a fleet (config_fleet.go).
	Fleet FleetConfig `yaml:"fleet" reload:"restart"`

	// What reading the _file secrets found (see secretfiles.go): the
	// problems go to Validate, the warnings to Warnings.
	fileProblems, fileWarnings Problems
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// OTPConfig is the `otp:` section.
type OTPConfig struct {
	TTL                 Duration `yaml:"ttl"`
	MaxAttempts         int      `yaml:"max_attempts"`
	ResendInterval      Duration `yaml:"resend_interval"`
	MaxPerNumberPerHour int      `yaml:"max_per_number_per_hour"`
	// RetryUndelivered: a receipt saying UNDELIV, EXPIRED or REJECTD while
	// the code is live sends it once more through the route's next carrier.
	RetryUndelivered bool `yaml:"retry_undelivered"`
	// MaxFailuresPerDay caps wrong guesses per client and number over 24
	// hours from the first (0: no cap).
	MaxFailuresPerDay int `yaml:"max_failures_per_day"`
	// MinDigits is the shortest code a template may produce.
	MinDigits int `yaml:"min_digits"`
	// DefaultClientRate is the rate of a client without one (per_second
	// 0: such clients are unlimited).
	DefaultClientRate RateConfig `yaml:"default_client_rate"`
}

// ClientConfig is one entry of `clients:`.
type ClientConfig struct {
	ID             string                `yaml:"id"`
	APIKeys        []string              `yaml:"api_keys"`
	Sender         string                `yaml:"sender"`
	Countries      []string              `yaml:"countries"`
	Rate           RateConfig            `yaml:"rate"`
	CustomTexts    map[string]CustomText `yaml:"custom_texts"`
	CallbackURL    string                `yaml:"callback_url"`
	CallbackSecret Secret                `yaml:"callback_secret"`
	MOCallbackURL  string                `yaml:"mo_callback_url"` // MO messages to sender, signed with callback_secret
	// TLVs go on every SMS of the client; DefaultTextTLVs on those with a
	// default text ("4".."8"), by text id. Tag "0x1400" → value.
	TLVs            map[string]string            `yaml:"tlvs"`
	DefaultTextTLVs map[string]map[string]string `yaml:"default_text_tlvs"`
	// Budget, Weight and SafeList belong to the pumping guard (config_guard.go).
	Budget   BudgetConfig `yaml:"budget"`
	Weight   float64      `yaml:"weight"`
	SafeList []string     `yaml:"safe_list"`
	// CallbackSecretFile holds callback_secret instead (read at start and
	// on each reload).
	CallbackSecretFile string `yaml:"callback_secret_file"`
}

// RateConfig is a token bucket.
type RateConfig struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// CarrierConfig is one entry of `carriers:`.
type CarrierConfig struct {
	Name       string  `yaml:"name"`
	Address    string  `yaml:"address"`
	SystemID   string  `yaml:"system_id"`
	Password   Secret  `yaml:"password"`
	SystemType string  `yaml:"system_type"`
	Mode       string  `yaml:"mode"`
	Binds      int     `yaml:"binds"`
	TPS        float64 `yaml:"tps"`
	Burst      int     `yaml:"burst"`
	Window     int     `yaml:"window"`
	TLS        bool    `yaml:"tls"`
	TLSCAFile  string  `yaml:"tls_ca_file"` // PEM CAs to trust instead of the system's
	Simulate   bool    `yaml:"simulate"`
	// SubmitAckTimeout: a submit unanswered this long rebinds the session
	// and marks the carrier degraded (default 30s).
	SubmitAckTimeout Duration `yaml:"submit_ack_timeout"`
	// StallTimeout: a send waits this long for a submit_sm_resp (or for a
	// window slot held by unanswered submits) before the route's next
	// carrier takes it (default 3s; "0s" turns it off).
	StallTimeout *Duration `yaml:"stall_timeout"`
	// ReceiptTimezone is the IANA zone of the receipts' done dates; "" is UTC.
	ReceiptTimezone string `yaml:"receipt_timezone"`

	// What goes into each submit_sm (see submit.go); absent keys take
	// smpp's defaults.
	SourceTON          string            `yaml:"source_ton"` // auto or 0..6
	SourceNPI          string            `yaml:"source_npi"` // auto or 0..18
	DestTON            *int              `yaml:"dest_ton"`
	DestNPI            *int              `yaml:"dest_npi"`
	Validity           string            `yaml:"validity"` // ttl, none or a duration
	ValidityFormat     string            `yaml:"validity_format"`
	DCS0Charset        string            `yaml:"dcs0_charset"`
	LongMessages       string            `yaml:"long_messages"`
	RegisteredDelivery *int              `yaml:"registered_delivery"`
	ServiceType        string            `yaml:"service_type"`
	TLVs               map[string]string `yaml:"tlvs"`

	// Binds that fail or die, and dead peers; 0 takes smpp's default.
	AuthRetryDelay      Duration `yaml:"auth_retry_delay"`
	ReconnectDelay      Duration `yaml:"reconnect_delay"`
	EnquireLinkInterval Duration `yaml:"enquire_link_interval"`
	InactivityTimeout   Duration `yaml:"inactivity_timeout"`
	// TLS client certificate (PEM, both or neither) and the name the
	// SMSC's certificate is checked against (default: the address's host).
	TLSCertFile   string `yaml:"tls_cert_file"`
	TLSKeyFile    string `yaml:"tls_key_file"`
	TLSServerName string `yaml:"tls_server_name"`

	// PasswordFile holds password instead (read at start and on each
	// reload, so that a rotated password takes effect on SIGHUP).
	PasswordFile string `yaml:"password_file"`
	// Suspended starts the carrier suspended (unbound until resumed on
	// the admin port: POST /carriers/{name}/resume).
	Suspended bool `yaml:"suspended"`
}

// RouteConfig is one entry of `routes:`.
type RouteConfig struct {
	Countries []string `yaml:"countries"`
	Prefixes  []string `yaml:"prefixes"`
	Carriers  []string `yaml:"carriers"`
}

// Duration is a time.Duration written as "30s", "5m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration like \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: bad duration %q", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Secret is a password or key from the config: it prints as [REDACTED].
type Secret string

// String hides the secret.
func (Secret) String() string { return redact.Text }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return redact.Text }

// Format hides the secret from every fmt verb, %d and %x included, as part
// of a struct too.
func (s Secret) Format(f fmt.State, verb rune) { redact.Format(f, verb, s.GoString()) }

// LogValue hides the secret from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue(redact.Text) }

// MarshalJSON hides the secret when a config struct is encoded (as a JSON
// log handler does with a struct attribute).
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redact.Text + `"`), nil }

// Defaults of keys left out.
const (
	defaultListen         = "127.0.0.1:8080"
	defaultMaxConns       = 4096
	defaultDataDir        = "./data"
	defaultSubmitTimeout  = 10 * time.Second
	defaultTTL            = 5 * time.Minute
	defaultMaxAttempts    = 5
	defaultResend         = 30 * time.Second
	defaultPerHour        = 5
	defaultFailuresPerDay = 20
	defaultMinDigits      = 4
	defaultAuthFailures   = 60
	defaultClientRate     = 10
	defaultClientBurst    = 20
)

// Problem is one thing wrong with a config file, and where.
type Problem struct {
	Path string // e.g. "clients[1].custom_texts.41"
	Msg  string
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// Problems is every problem found in a config file.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return "config: " + strings.Join(s, "; ")
}

// LoadConfig reads and checks the file at path. The error is a Problems
// listing everything wrong, or a read/parse error.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f)
	if err != nil {
		return nil, err
	}
	cfg.checkConfigFile(f)
	if ps := cfg.Validate(); len(ps) > 0 {
		return cfg, ps
	}
	return cfg, nil
}

// ParseConfig decodes YAML and fills defaults; unknown keys are errors.
func ParseConfig(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := defaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s", yamlProblem(err))
	}
	cfg.setDefaults()
	cfg.readSecretFiles()
	return &cfg, nil
}

// yamlProblem is err's text without the values it quotes: the YAML
// decoder names an unknown anchor (a password starting with an unquoted
// "*") and quotes a value that does not fit its key's type (a secret under
// a mis-indented key), and the problem goes to check-config's output, the
// journal and the reload log. Line numbers and key names stay.
func yamlProblem(err error) string {
	msg := yamlQuoted.ReplaceAllString(err.Error(), "a value")
	return yamlAnchor.ReplaceAllString(msg, "an unknown anchor (quote a value that starts with *)")
}

var (
	yamlQuoted = regexp.MustCompile("`[^`]*`")
	yamlAnchor = regexp.MustCompile(`unknown anchor '[^']*'`)
)

// shownAddress is an address as a problem may show it: an address with
// "@" (a URL with credentials, smpp://id:password@host:port or
// redis://:password@host:port) loses what comes before its last "@".
func shownAddress(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return "…" + a[i:]
	}
	return a
}

// defaultConfig holds the value of every key a file leaves out; decoding
// onto it keeps an explicit 0 (resend_interval: 0s means no interval).
func defaultConfig() Config {
	return Config{
		Listen:         defaultListen,
		AdminListen:    defaultAdminListen,
		MaxConnections: defaultMaxConns,
		DataDir:        defaultDataDir,
		SubmitTimeout:  Duration(defaultSubmitTimeout),
		Log:            LogConfig{Level: "info", Format: "json"},
		OTP: OTPConfig{TTL: Duration(defaultTTL), MaxAttempts: defaultMaxAttempts,
			ResendInterval: Duration(defaultResend), MaxPerNumberPerHour: defaultPerHour, RetryUndelivered: true,
			MaxFailuresPerDay: defaultFailuresPerDay, MinDigits: defaultMinDigits,
			DefaultClientRate: RateConfig{PerSecond: defaultClientRate, Burst: defaultClientBurst}},
		AuthFailuresPerMinute: defaultAuthFailures,
		Guard:                 defaultGuardConfig(),
	}
}

func (c *Config) setDefaults() {
	c.setStoreDefaults()
	c.setFleetDefaults()
	if c.SecretFile == "" {
		c.SecretFile = strings.TrimSuffix(c.DataDir, "/") + "/otp.secret"
	}
	for i := range c.Carriers {
		k := &c.Carriers[i]
		// smpp owns the defaults; they are filled in here so that
		// Validate, reload's comparison and check-config see them.
		if k.Mode == "" {
			k.Mode = smpp.ModeTransceiver
		}
		if k.Binds == 0 {
			k.Binds = smpp.DefaultBinds
		}
		if k.Burst == 0 {
			k.Burst = smpp.DefaultBurst
		}
		if k.Window == 0 {
			k.Window = smpp.DefaultWindow
		}
	}
}

// Validate lists every problem of the configuration with its place.
func (c *Config) Validate() Problems {
	var ps Problems
	add := func(path, format string, a ...any) { ps = append(ps, Problem{path, fmt.Sprintf(format, a...)}) }
	c.validateTop(add)
	c.validateOTP(add)
	c.validateClients(add)
	names := c.validateCarriers(add)
	c.validateRoutes(names, add)
	c.validateBlocked(add)
	c.validateInbound(add)
	c.validateAccess(add)
	c.validateStore(add)
	c.validateFleet(add)
	c.validateGuard(add)
	ps = append(ps, c.fileProblems...)
	return ps
}

// adder records one problem at a path; every validate* function takes one.
type adder = func(path, format string, a ...any)

// validateTop checks the top-level keys.
func (c *Config) validateTop(add adder) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen", "want host:port, got %q", c.Listen)
	}
	c.validateAdmin(add)
	if c.MaxConnections < 1 {
		add("max_connections", "must be at least 1")
	}
	if err := checkSecretFile(c.SecretFile); err != nil {
		add("secret_file", "%v", err)
	}
	if c.SubmitTimeout <= 0 {
		add("submit_timeout", "must be positive")
	}
	if !oneOf(c.Log.Level, "debug", "info", "warn", "error") {
		add("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if !oneOf(c.Log.Format, "json", "text") {
		add("log.format", "want json or text, got %q", c.Log.Format)
	}
}

// validateOTP checks the otp: section.
func (c *Config) validateOTP(add adder) {
	if c.OTP.TTL <= 0 {
		add("otp.ttl", "must be positive")
	}
	if c.OTP.MaxAttempts < 1 {
		add("otp.max_attempts", "must be at least 1")
	}
	if c.OTP.ResendInterval < 0 {
		add("otp.resend_interval", "must not be negative")
	}
	if c.OTP.MaxPerNumberPerHour < 0 {
		add("otp.max_per_number_per_hour", "must not be negative")
	}
	if c.OTP.MaxFailuresPerDay < 0 {
		add("otp.max_failures_per_day", "must not be negative")
	}
	if c.OTP.MinDigits < 1 || c.OTP.MinDigits > otp.MaxCodeLength {
		add("otp.min_digits", "want 1 to %d", otp.MaxCodeLength)
	}
}

// validateClients checks clients[].
func (c *Config) validateClients(add adder) {
	ids := map[string]int{}
	keys := map[string]string{}
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			add(p+".id", "missing")
		} else if j, dup := ids[cl.ID]; dup {
			add(p+".id", "duplicate of clients[%d].id %q", j, cl.ID)
		} else {
			ids[cl.ID] = i
		}
		if len(cl.APIKeys) == 0 {
			add(p+".api_keys", "no key: the client could never authenticate")
		}
		for k, key := range cl.APIKeys {
			kp := fmt.Sprintf("%s.api_keys[%d]", p, k)
			if _, err := parseKeyHash(key); err != nil {
				add(kp, "%v", err)
			} else if other, dup := keys[key]; dup {
				add(kp, "same key as %s", other)
			} else {
				keys[key] = kp
			}
		}
		if cl.Sender == "" {
			add(p+".sender", "missing")
		} else if err := checkSender(cl.Sender); err != nil {
			add(p+".sender", "%v", err)
		}
		if len(cl.Countries) == 0 {
			add(p+".countries", "empty: list ISO codes or \"*\"")
		}
		checkCountries(p, cl.Countries, add)
		if cl.Rate.PerSecond < 0 || cl.Rate.Burst < 0 {
			add(p+".rate", "must not be negative")
		}
		if cl.Rate.PerSecond > 0 && cl.Rate.Burst == 0 {
			add(p+".rate.burst", "must be at least 1 when per_second is set")
		}
		for id, text := range cl.CustomTexts {
			tp := p + ".custom_texts." + id
			if _, clash := otp.DefaultTemplates[id]; clash {
				add(tp, "id %q clashes with the default templates \"4\"..\"8\"", id)
			}
			if t, err := otp.ParseTemplate(text.Text); err != nil {
				add(tp, "%v", strings.TrimPrefix(err.Error(), "otp: "))
			} else if t.Length() < c.OTP.MinDigits {
				add(tp, "a %d-digit code is shorter than otp.min_digits (%d)", t.Length(), c.OTP.MinDigits)
			}
		}
		checkClientTLVs(p, cl, add)
		if (cl.CallbackURL == "" && cl.MOCallbackURL == "") != (cl.CallbackSecret == "") {
			add(p+".callback_secret", "callback_url (or mo_callback_url) and callback_secret go together")
		}
		if cl.CallbackURL != "" {
			if u, err := url.Parse(cl.CallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(p+".callback_url", "want an absolute http:// or https:// URL")
			}
		}
	}
}

// validateCarriers checks carriers[] and returns the index of each name.
func (c *Config) validateCarriers(add adder) map[string]int {
	if len(c.Carriers) == 0 {
		add("carriers", "none configured: no SMS could be sent")
	}
	names := map[string]int{}
	for i, k := range c.Carriers {
		p := fmt.Sprintf("carriers[%d]", i)
		if k.Name == "" {
			add(p+".name", "missing")
		} else if j, dup := names[k.Name]; dup {
			add(p+".name", "duplicate of carriers[%d].name %q", j, k.Name)
		} else {
			names[k.Name] = i
		}
		if !k.Simulate {
			if _, _, err := net.SplitHostPort(k.Address); err != nil {
				add(p+".address", "want host:port, got %q", shownAddress(k.Address))
			}
		}
		// smpp owns the rules of the carrier's own settings; the config adds
		// the place.
		so := smpp.CarrierOptions{SystemID: k.SystemID, Password: string(k.Password), Mode: k.Mode,
			Binds: k.Binds, TPS: k.TPS, Burst: k.Burst, Window: k.Window, SubmitAckTimeout: time.Duration(k.SubmitAckTimeout)}
		for _, fp := range so.Check() {
			add(p+"."+fp.Key, "%s", fp.Msg)
		}
		if k.StallTimeout != nil && *k.StallTimeout < 0 {
			add(p+".stall_timeout", "must not be negative (0s turns it off)")
		}
		checkCarrierSubmit(p, k, add)
		if k.TLSCAFile != "" {
			if !k.TLS {
				add(p+".tls_ca_file", "set but tls is false")
			} else if _, err := loadCAs(k.TLSCAFile); err != nil {
				add(p+".tls_ca_file", "%v", err)
			}
		}
		checkCarrierLink(p, k, add)
	}
	return names
}

// validateRoutes checks routes[] against the carriers' names.
func (c *Config) validateRoutes(names map[string]int, add adder) {
	if len(c.Routes) == 0 {
		add("routes", "none configured: add one with countries: [\"*\"]")
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if len(r.Countries) == 0 && len(r.Prefixes) == 0 {
			add(p, "needs countries or prefixes")
		}
		checkCountries(p, r.Countries, add)
		for k, pre := range r.Prefixes {
			if _, err := smpp.ParsePrefix(pre); err != nil {
				add(fmt.Sprintf("%s.prefixes[%d]", p, k), "want \"+\" and digits, got %q", pre)
			}
		}
		if len(r.Carriers) == 0 {
			add(p+".carriers", "empty")
		}
		for k, name := range r.Carriers {
			if _, ok := names[name]; !ok {
				add(fmt.Sprintf("%s.carriers[%d]", p, k), "unknown carrier %q", name)
			}
		}
	}
}

// validateBlocked checks blocked_numbers.
func (c *Config) validateBlocked(add adder) {
	for i, n := range c.BlockedNumbers {
		if _, err := phone.Parse(n); err != nil {
			add(fmt.Sprintf("blocked_numbers[%d]", i), "not a valid number %q", n)
		}
	}
}

// checkCountries reports the entries of a countries list (at path) that
// are neither "*" nor an ISO code of the supported-countries table.
func checkCountries(path string, isos []string, add func(path, format string, a ...any)) {
	for k, iso := range isos {
		if iso == "*" {
			continue
		}
		if _, ok := phone.CountryByISO(strings.ToUpper(iso)); !ok {
			add(fmt.Sprintf("%s.countries[%d]", path, k), "unknown country %q", iso)
		}
	}
}

// parseKeyHash reads "sha256:<64 hex>".
func parseKeyHash(s string) ([sha256.Size]byte, error) {
	var h [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, errors.New("want sha256:<hex> from `otpgate hash-key`")
	}
	b, err := hex.DecodeString(hexPart)
	if err != nil || len(b) != sha256.Size {
		return h, errors.New("want sha256: and 64 hex digits")
	}
	copy(h[:], b)
	return h, nil
}

// HashKey returns the config form of an API key.
func HashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(h[:])
}

func checkSender(s string) error {
	if len(s) > 20 {
		return errors.New("longer than 20 characters")
	}
	digits := true
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r == ' ', r == '-', r == '.', r == '_':
			digits = false
		default:
			return fmt.Errorf("character %q not allowed", r)
		}
	}
	if !digits && len(s) > 11 {
		return errors.New("alphanumeric sender longer than 11 characters")
	}
	return nil
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// checkSecretFile accepts a missing file (the daemon creates it) or a
// readable one of 64 hex digits that only its owner can read.
func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if _, err := parseSecret(b); err != nil {
		return fmt.Errorf("%s %w", path, err)
	}
	return nil
}
