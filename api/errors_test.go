package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpgate/otpgate/internal/syncbuf"

	"github.com/otpgate/otpgate/api"
	"github.com/otpgate/otpgate/otp"
	"github.com/otpgate/otpgate/store"
)

// The documented error bodies, written out rather than built, so that a
// changed message or status in the table fails here.
func envelope(status int, message, typ string, statusCode int) string {
	return fmt.Sprintf(`{"error":{"name":"Error","message":%q,"status":%d,"reason":"Error","type":%q,"statusCode":%d}}`,
		message, status, typ, statusCode)
}

const (
	sendPath   = "/api/v3/otp-verification/send-otp"
	verifyPath = "/api/v3/otp-verification/verify-otp"
	statusPath = "/api/v3/otp-verification/status/"
)

func sendBody(client, number, text string) string {
	return fmt.Sprintf(`{"clientId":%q,"phoneNumber":%q,"channel":"smsotp","customTextId":%q}`, client, number, text)
}

func verifyBody(client, number, code string) string {
	return fmt.Sprintf(`{"clientId":%q,"phoneNumber":%q,"otp":%q}`, client, number, code)
}

// requestLog collects the API's JSON request lines.
type requestLog struct{ syncbuf.Buffer }

// outcome returns the outcome of the request line with id, or "".
func (l *requestLog) outcome(tb testing.TB, id string) string {
	tb.Helper()
	for _, line := range strings.Split(l.String(), "\n") {
		var rec struct {
			Msg       string `json:"msg"`
			RequestID string `json:"request_id"`
			Outcome   string `json:"outcome"`
		}
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec.Msg == "request" && rec.RequestID == id {
			return rec.Outcome
		}
	}
	return ""
}

// errorCase is one request and the row of the error table it must hit.
type errorCase struct {
	name, method, path, key, body string
	status                        int
	want                          string // the exact body
	outcome                       string // the row's name in the request log
}

// TestAPI_ErrorTable sends, through a real listener, one request for every
// row of the error table (api/errors.go) and checks the status, the exact
// body, its content type, and the row's outcome in the request log; then
// that no row of the table went unexercised.
func TestAPI_ErrorTable(t *testing.T) {
	var logs requestLog
	srv := httptest.NewServer(newAPI(t, apiOptions{logger: slog.New(slog.NewJSONHandler(&logs, nil)), resend: time.Hour}))
	t.Cleanup(srv.Close)
	broken := httptest.NewServer(newAPI(t, apiOptions{logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		wrap: func(db *store.DB) otp.Store { return brokenStore{db} }}))
	t.Cleanup(broken.Close)

	const live, idle = "+91-9811111111", "+91-9822222222"
	wrong := "0000000" // 7 digits: never the 6-digit code of template "6"
	seen := map[string]bool{}
	reqN := 0
	run := func(t *testing.T, base string, c errorCase) {
		t.Helper()
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.key != "" {
			req.Header.Set("Authorization", c.key)
		}
		req.Header.Set("Content-Type", "application/json")
		reqN++
		id := fmt.Sprintf("errtable-%d", reqN)
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || string(b) != c.want {
			t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, c.status, c.want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type: got %q, want application/json; charset=utf-8", ct)
		}
		if got := logs.outcome(t, id); got != c.outcome {
			t.Fatalf("logged outcome: got %q, want %q", got, c.outcome)
		}
		seen[c.outcome] = true
	}

	// A live code of the client for the verify rows, and the resend row.
	req, _ := http.NewRequest("POST", srv.URL+sendPath, strings.NewReader(sendBody(clientID, live, "6")))
	req.Header.Set("Authorization", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send: got %d %s, want 200", resp.StatusCode, b)
	}

	cases := []errorCase{
		{"NoAPIKey", "POST", sendPath, "", sendBody(clientID, "+91-9811111112", "6"),
			401, `{"message":"No API key found in request"}`, "no_api_key"},
		{"InvalidAPIKey", "POST", verifyPath, "Bearer nope", verifyBody(clientID, live, "123456"),
			401, `{"message":"Invalid authentication credentials"}`, "invalid_api_key"},
		{"InvalidNumber", "POST", sendPath, apiKey, sendBody(clientID, "+91-12", "6"),
			400, envelope(400, "Mobile number is not valid/allowed", "Bad Request", 400), "invalid_number"},
		{"CustomerNotFound", "POST", sendPath, apiKey, sendBody("nobody", "+91-9811111112", "6"),
			400, envelope(400, "Customer not found", "Bad Request", 400), "customer_not_found"},
		{"CustomTextNotFound", "POST", sendPath, apiKey, sendBody(clientID, "+91-9811111112", "99"),
			400, envelope(400, "Custom text does not exist", "Bad Request", 400), "custom_text_not_found"},
		// statusCode 200, as in the vendor's API reference (see docs/architecture.md).
		{"Blocked", "POST", sendPath, apiKey, sendBody(clientID, blockedNumber, "6"),
			404, envelope(404, "Blocked phone number", "Not Found", 200), "blocked"},
		{"UpstreamDown", "POST", sendPath, apiKey, sendBody(clientID, downNumber, "6"),
			409, envelope(409, "Upstream down", "Conflict", 409), "upstream_down"},
		{"Unprocessable", "POST", sendPath, apiKey, `{"clientId":`,
			422, envelope(422, "Unprocessable Entity", "Unprocessable Entity", 422), "unprocessable"},
		{"TooManyRequests", "POST", sendPath, apiKey, sendBody(clientID, live, "6"),
			429, envelope(429, "Too many requests", "Too Many Requests", 429), "too_many_requests"},
		{"NotFound", "POST", verifyPath, apiKey, verifyBody(clientID, idle, "123456"),
			404, envelope(404, "OTP not found or expired", "Not Found", 404), "not_found"},
		{"InvalidOTP1", "POST", verifyPath, apiKey, verifyBody(clientID, live, wrong),
			400, envelope(400, "Invalid OTP", "Bad Request", 400), "invalid_otp"},
		{"InvalidOTP2", "POST", verifyPath, apiKey, verifyBody(clientID, live, wrong),
			400, envelope(400, "Invalid OTP", "Bad Request", 400), "invalid_otp"},
		{"InvalidOTP3", "POST", verifyPath, apiKey, verifyBody(clientID, live, wrong),
			400, envelope(400, "Invalid OTP", "Bad Request", 400), "invalid_otp"},
		{"MaxAttempts", "POST", verifyPath, apiKey, verifyBody(clientID, live, wrong),
			429, envelope(429, "Maximum verification attempts exceeded", "Too Many Requests", 429), "max_attempts"},
		{"RequestNotFound", "GET", statusPath + "ffffffffffffffffffffffff", apiKey, "",
			404, envelope(404, "Request not found", "Not Found", 404), "request_not_found"},
		{"BodyTooLarge", "POST", sendPath, apiKey, `{"clientId":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`,
			413, envelope(413, "Request body too large", "Payload Too Large", 413), "body_too_large"},
		{"RouteNotFound", "GET", "/api/v3/otp-verification/nothing", apiKey, "",
			404, envelope(404, "Not Found", "Not Found", 404), "no_route"},
		{"MethodNotAllowed", "GET", sendPath, apiKey, "",
			405, envelope(405, "Method Not Allowed", "Method Not Allowed", 405), "method_not_allowed"},
		// Paths are exact: no redirect, which would answer outside the
		// envelope and the request log.
		{"TrailingSlash", "POST", sendPath + "/", apiKey, sendBody(clientID, live, "6"),
			404, envelope(404, "Not Found", "Not Found", 404), "no_route"},
		{"TrailingSlashHealthz", "GET", "/healthz/", "", "",
			404, envelope(404, "Not Found", "Not Found", 404), "no_route"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { run(t, srv.URL, c) })
	}
	// One failed key per minute per address: the second is refused.
	limited := httptest.NewServer(newAPI(t, apiOptions{logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		access: &api.Access{AuthFailuresPerMinute: 1}}))
	t.Cleanup(limited.Close)
	t.Run("AuthLimited", func(t *testing.T) {
		run(t, limited.URL, errorCase{"FirstWrongKey", "POST", sendPath, "wrong", sendBody(clientID, live, "6"),
			401, `{"message":"Invalid authentication credentials"}`, "invalid_api_key"})
		run(t, limited.URL, errorCase{"AuthLimited", "POST", sendPath, "wrong", sendBody(clientID, live, "6"),
			429, envelope(429, "Too many requests", "Too Many Requests", 429), "auth_limited"})
	})
	t.Run("Unavailable", func(t *testing.T) {
		run(t, broken.URL, errorCase{"Unavailable", "POST", sendPath, apiKey, sendBody(clientID, live, "6"),
			503, envelope(503, "Service unavailable", "Service Unavailable", 503), "unavailable"})
	})

	for _, outcome := range api.ErrorOutcomes() {
		if !seen[outcome] {
			t.Errorf("row %q of the error table: no request above exercised it", outcome)
		}
	}
	for outcome := range seen {
		if !slices.Contains(api.ErrorOutcomes(), outcome) {
			t.Errorf("outcome %q is not a row of the error table", outcome)
		}
	}
	if t.Failed() {
		return
	}
	// No request of the table came near an internal error.
	if all := logs.String(); strings.Contains(all, `"outcome":"internal_error"`) {
		t.Fatalf("an internal error was logged:\n%s", all)
	}
}
