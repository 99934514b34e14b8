package otp

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"
)

// Policy holds the limits of the configuration's `otp:` section and
// submit_timeout (README.md, "Configuration").
type Policy struct {
	TTL                 time.Duration // code validity, and how long a lock lasts after the last wrong guess
	MaxAttempts         int           // wrong guesses before verification locks
	ResendInterval      time.Duration // least time between two sends to one client and number
	MaxPerNumberPerHour int           // sends per client and number in any hour; 0 = no cap
	SubmitTimeout       time.Duration // longest a send waits for a carrier
	RetryUndelivered    bool          // a failed delivery of a live code goes once more through another carrier
	MaxFailuresPerDay   int           // wrong guesses per client and number in 24 hours since the first; 0 = no cap
	MinDigits           int           // shortest code a template may have; shorter ones are refused
	// DefaultRatePerSecond and DefaultRateBurst are the rate of a client
	// without one (otp.default_client_rate); 0 leaves it unlimited.
	DefaultRatePerSecond float64
	DefaultRateBurst     int
}

// Client is one API client as configured.
type Client struct {
	ID             string
	KeyHashes      [][sha256.Size]byte // SHA-256 of each API key
	Sender         string              // SMS source address
	Countries      []string            // ISO codes, upper case; "*" allows all
	RatePerSecond  float64             // send and verify calls per second; 0 takes the Policy's default, < 0 is unlimited
	RateBurst      int
	Weight         float64             // share of a carrier's TPS against other clients; <= 0 means 1
	Texts          map[string]Template // custom texts on top of DefaultTemplates
	TLVs           []TLV               // on every SMS of the client
	TextTLVs       map[string][]TLV    // by text id (custom or default): on top of TLVs for that text
	CallbackURL    string
	CallbackSecret string
	MOCallbackURL  string // MO messages to Sender are POSTed here, signed with CallbackSecret
}

// Settings is an immutable snapshot of what a config file says about
// clients, limits and blocked numbers. A reload builds a new one and swaps it.
type Settings struct {
	Policy  Policy
	clients map[string]*client
	keys    []keyEntry
	blocked map[string]struct{}
	// moSenders maps SenderKey(sender) to the client that takes MOs sent
	// to that sender.
	moSenders map[string]string
}

type client struct {
	Client
	allCountries bool
	countries    map[string]struct{}
}

type keyEntry struct {
	hash     [sha256.Size]byte
	clientID string
}

// NewSettings checks and indexes clients and the block list. blocked holds
// E.164 digits without '+' (the caller parses the configured numbers).
func NewSettings(p Policy, clients []Client, blocked []string) (*Settings, error) {
	if p.TTL <= 0 || p.MaxAttempts <= 0 || p.SubmitTimeout <= 0 {
		return nil, fmt.Errorf("otp: ttl, max_attempts and submit_timeout must be positive")
	}
	s := &Settings{Policy: p, clients: make(map[string]*client, len(clients)), blocked: make(map[string]struct{}, len(blocked))}
	for _, c := range clients {
		if c.ID == "" {
			return nil, fmt.Errorf("otp: client without id")
		}
		if _, dup := s.clients[c.ID]; dup {
			return nil, fmt.Errorf("otp: duplicate client id %q", c.ID)
		}
		for id := range c.Texts {
			if _, clash := DefaultTemplates[id]; clash {
				return nil, fmt.Errorf("otp: client %q: custom text id %q clashes with a default", c.ID, id)
			}
		}
		for id := range c.TextTLVs {
			if _, ok := DefaultTemplates[id]; !ok {
				if _, ok := c.Texts[id]; !ok {
					return nil, fmt.Errorf("otp: client %q: TLVs for unknown text id %q", c.ID, id)
				}
			}
		}
		cc := &client{Client: c, countries: map[string]struct{}{}}
		if cc.RatePerSecond == 0 {
			cc.RatePerSecond, cc.RateBurst = p.DefaultRatePerSecond, p.DefaultRateBurst
		}
		if cc.Weight <= 0 {
			cc.Weight = 1
		}
		for _, iso := range c.Countries {
			if iso == "*" {
				cc.allCountries = true
			}
			cc.countries[iso] = struct{}{}
		}
		s.clients[c.ID] = cc
		for _, h := range c.KeyHashes {
			s.keys = append(s.keys, keyEntry{hash: h, clientID: c.ID})
		}
	}
	for _, n := range blocked {
		s.blocked[n] = struct{}{}
	}
	s.moSenders = indexMOSenders(clients)
	return s, nil
}

// authenticate returns the client whose key hashes to sha256(key). It
// compares against every configured hash in constant time, so neither the
// match nor its position shows in the timing.
func (s *Settings) authenticate(key string) (string, bool) {
	h := sha256.Sum256([]byte(key))
	found := -1
	for i := range s.keys {
		if subtle.ConstantTimeCompare(h[:], s.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return s.keys[found].clientID, true
}

func (c *client) template(id string) (Template, bool) {
	if t, ok := DefaultTemplates[id]; ok {
		return t, true
	}
	t, ok := c.Texts[id]
	return t, ok
}

// tlvs returns the optional parameters of an SMS with text id: the
// text's over the client's.
func (c *client) tlvs(id string) []TLV { return MergeTLVs(c.TLVs, c.TextTLVs[id]) }

func (c *client) allows(country string) bool {
	if c.allCountries {
		return true
	}
	_, ok := c.countries[country]
	return ok
}
