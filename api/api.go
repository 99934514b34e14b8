package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/otp"
)

// MaxBodyBytes caps a request body; a larger one is answered 413.
const MaxBodyBytes = 64 << 10

// Options are what the HTTP layer needs besides the service.
type Options struct {
	Logger *slog.Logger
	// Ready reports whether the gateway can serve (store open, a carrier
	// bound); nil means always ready.
	Ready func() error
	// Observer, when set, is told the outcome of every request.
	Observer Observer
	// Access, when set, returns the Access in force (trusted proxies, the
	// limit of failed API-key attempts); it is called at each request, so
	// that a reload applies at once. nil means the zero Access.
	Access func() *Access
	// AuthFailures counts the failed API-key attempts of each remote
	// address (keys "auth/<address>"); nil counts none.
	AuthFailures otp.Limiter
}

// Observer receives request outcomes, for metrics. Labels it is given
// are route templates and fixed words, never request data.
type Observer interface {
	// Request is called once per request with gin's route template.
	Request(route string, status int, d time.Duration)
	// Verification is called once per verify-otp that reached the service:
	// ok, invalid, not_found, locked.
	Verification(result string)
	// RateLimited is called when a limit refused a request: client,
	// resend, hourly, inflight, auth (failed API-key attempts).
	RateLimited(scope string)
}

type handler struct {
	svc  *otp.Service
	log  *slog.Logger
	opts Options
}

// Context keys that handlers fill for the request log line.
const (
	keyClient  = "otpgate.client"
	keyNumber  = "otpgate.number"
	keyCarrier = "otpgate.carrier"
	keyOutcome = "otpgate.outcome"
	keyReqID   = "otpgate.request_id"
	keyRemote  = "otpgate.remote" // netip.Addr
)

func init() { gin.SetMode(gin.ReleaseMode) }

// New returns the HTTP handler of the API.
func New(svc *otp.Service, opts Options) http.Handler {
	h := &handler{svc: svc, log: opts.Logger, opts: opts}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Paths are exact. gin's default redirect of a path with a trailing
	// slash answers before any middleware: no envelope, no X-Request-Id,
	// no request log line. Such a path is unknown (404) instead.
	r.RedirectTrailingSlash = false
	r.ContextWithFallback = true
	r.Use(h.logRequests, h.recover)
	r.NoRoute(func(c *gin.Context) { h.writeError(c, errRouteNotFound) })
	r.NoMethod(func(c *gin.Context) { h.writeError(c, errMethodNotAllowed) })

	v3 := r.Group("/api/v3/otp-verification", h.authenticate)
	v3.POST("/send-otp", h.sendOTP)
	v3.POST("/verify-otp", h.verifyOTP)
	v3.GET("/status/:requestId", h.status)

	healthz := func(c *gin.Context) { c.Data(200, "application/json; charset=utf-8", []byte(`{"status":"ok"}`)) }
	r.GET("/healthz", healthz)
	r.GET("/openapi.yaml", serveOpenAPI)
	r.GET("/readyz", h.ready)
	// Load balancers that probe with HEAD: the GET's status and headers
	// (net/http drops the body).
	r.HEAD("/healthz", healthz)
	r.HEAD("/readyz", h.ready)
	return r
}

// logRequests writes one line per request and feeds Observe.
func (h *handler) logRequests(c *gin.Context) {
	start := time.Now()
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 || !printable(id) {
		id = newID()
	}
	c.Set(keyReqID, id)
	c.Header("X-Request-Id", id)
	remote := RemoteAddr(c.Request, h.access().TrustedProxies)
	c.Set(keyRemote, remote)
	c.Next()
	d := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	if h.opts.Observer != nil {
		h.opts.Observer.Request(route, status, d)
	}
	outcome := c.GetString(keyOutcome)
	if outcome == "" {
		outcome = "ok"
	}
	if !h.log.Enabled(c.Request.Context(), slog.LevelInfo) {
		return // the attributes below cost allocations on every request
	}
	h.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
		slog.String("request_id", id),
		slog.String("remote", remoteString(remote)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.String("client", c.GetString(keyClient)),
		slog.String("number", c.GetString(keyNumber)),
		slog.String("carrier", c.GetString(keyCarrier)),
		slog.String("outcome", outcome),
		slog.Float64("latency_ms", float64(d.Microseconds())/1000),
	)
}

// recover turns a panic into a logged 500 with no detail.
func (h *handler) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("panic in handler", "route", c.FullPath(), "panic", p)
			c.Set(keyOutcome, "internal_error")
			c.Data(internalError.status, "application/json; charset=utf-8", internalError.body)
			c.Abort()
		}
	}()
	c.Next()
}

// authenticate resolves the API key to a client id.
func (h *handler) authenticate(c *gin.Context) {
	key := strings.TrimSpace(c.GetHeader("Authorization"))
	if len(key) >= 6 && strings.EqualFold(key[:6], "bearer") && (len(key) == 6 || key[6] == ' ') {
		key = strings.TrimSpace(key[6:])
	}
	id, err := h.svc.Authenticate(key)
	if err != nil {
		if h.authFailureLimited(c) {
			err = errAuthLimited
		}
		h.writeError(c, err)
		return
	}
	c.Set(keyClient, id)
	c.Next()
}

type sendBody struct {
	ClientID     *string `json:"clientId"`
	PhoneNumber  *string `json:"phoneNumber"`
	Channel      *string `json:"channel"`
	CustomTextID *string `json:"customTextId"`
}

type verifyBody struct {
	ClientID    *string `json:"clientId"`
	PhoneNumber *string `json:"phoneNumber"`
	OTP         *string `json:"otp"`
}

func (h *handler) sendOTP(c *gin.Context) {
	var b sendBody
	if err := h.decode(c, &b); err != nil {
		h.writeError(c, err)
		return
	}
	if !present(b.ClientID, b.PhoneNumber, b.Channel, b.CustomTextID) {
		h.writeError(c, otp.ErrUnprocessable)
		return
	}
	res, err := h.svc.Send(c.Request.Context(), otp.SendRequest{
		AuthClientID: c.GetString(keyClient), ClientID: *b.ClientID, PhoneNumber: *b.PhoneNumber,
		Channel: *b.Channel, CustomTextID: *b.CustomTextID,
	})
	c.Set(keyNumber, res.Masked)
	c.Set(keyCarrier, res.Carrier)
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Data(200, "application/json; charset=utf-8", sentBody(res.RequestID))
}

// sendResult is send-otp's 200 body: {"result":{...}}.
type sendResult struct {
	Result struct {
		Status            int    `json:"status"`
		StatusDescription string `json:"statusDescription"`
		RequestID         string `json:"requestId"`
	} `json:"result"`
}

const (
	sentPrefix = `{"result":{"status":200,"statusDescription":"Success OTP sent","requestId":"`
	sentSuffix = `"}}`
)

// sentBody is send-otp's 200 body for requestID, the bytes json.Marshal
// gives for sendResult, written without reflection: it is on every send.
// Request ids are hex; an id needing JSON escapes takes json.Marshal.
func sentBody(requestID string) []byte {
	for i := 0; i < len(requestID); i++ {
		if c := requestID[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			var r sendResult
			r.Result.Status, r.Result.StatusDescription, r.Result.RequestID = 200, "Success OTP sent", requestID
			b, _ := jsonMarshal(r) // strings and an int: cannot fail
			return b
		}
	}
	b := make([]byte, 0, len(sentPrefix)+len(requestID)+len(sentSuffix))
	return append(append(append(b, sentPrefix...), requestID...), sentSuffix...)
}

var verifiedBody = []byte(`{"result":{"status":200,"statusDescription":"OTP verified"}}`)

func (h *handler) verifyOTP(c *gin.Context) {
	var b verifyBody
	if err := h.decode(c, &b); err != nil {
		h.writeError(c, err)
		return
	}
	if !present(b.ClientID, b.PhoneNumber, b.OTP) {
		h.writeError(c, otp.ErrUnprocessable)
		return
	}
	res, err := h.svc.Verify(c.Request.Context(), otp.VerifyRequest{
		AuthClientID: c.GetString(keyClient), ClientID: *b.ClientID, PhoneNumber: *b.PhoneNumber, OTP: *b.OTP,
	})
	c.Set(keyNumber, res.Masked)
	if o := h.opts.Observer; o != nil {
		if r := verificationResult(err); r != "" {
			o.Verification(r)
		}
	}
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Data(200, "application/json; charset=utf-8", verifiedBody)
}

type statusResult struct {
	Status      int               `json:"status"`
	RequestID   string            `json:"requestId"`
	ClientID    string            `json:"clientId"`
	PhoneNumber string            `json:"phoneNumber"`
	Carrier     string            `json:"carrier"`
	State       string            `json:"state"`
	Error       string            `json:"error"`
	SubmittedAt string            `json:"submittedAt"`
	DoneAt      string            `json:"doneAt"`
	Verified    bool              `json:"verified"`
	Attempts    []otp.AttemptBody `json:"attempts,omitempty"`
}

func (h *handler) status(c *gin.Context) {
	m, err := h.svc.Status(c.Request.Context(), c.GetString(keyClient), c.Param("requestId"))
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Set(keyNumber, m.Display)
	c.Set(keyCarrier, m.Carrier)
	state, code, done := m.Summary()
	r := statusResult{Status: 200, RequestID: m.RequestID, ClientID: m.ClientID, PhoneNumber: m.Display,
		Carrier: m.Carrier, State: string(state), Error: code, SubmittedAt: m.SubmittedAt.UTC().Format(time.RFC3339),
		Verified: m.Verified, Attempts: otp.AttemptBodies(m)}
	if !done.IsZero() {
		r.DoneAt = done.UTC().Format(time.RFC3339)
	}
	h.writeJSON(c, struct {
		Result statusResult `json:"result"`
	}{r})
}

// ready answers whether the gateway is ready, without the reason: that
// goes to the admin port and the log, not to the public port.
func (h *handler) ready(c *gin.Context) {
	if h.opts.Ready != nil {
		if err := h.opts.Ready(); err != nil {
			c.Data(503, "application/json; charset=utf-8", []byte(`{"status":"unavailable"}`))
			return
		}
	}
	c.Data(200, "application/json; charset=utf-8", []byte(`{"status":"ready"}`))
}

// present reports whether every field was given as a non-empty string.
func present(fields ...*string) bool {
	for _, f := range fields {
		if f == nil || *f == "" {
			return false
		}
	}
	return true
}

func (h *handler) writeJSON(c *gin.Context, v any) {
	b, err := jsonMarshal(v)
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Data(200, "application/json; charset=utf-8", b)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
