package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/otpgate/otpgate/api"
	"github.com/otpgate/otpgate/daemon"
	"github.com/otpgate/otpgate/smpp/smsc"
)

// loadOpenAPI loads and validates api/openapi.yaml (examples included:
// kin-openapi checks each against its schema).
func loadOpenAPI(tb testing.TB) *openapi3.T {
	tb.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI())
	if err != nil {
		tb.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		tb.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	return doc
}

// jsonValue decodes a JSON text, or re-encodes a YAML-decoded value, into
// the generic form both compare in.
func jsonValue(tb testing.TB, v any) any {
	tb.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(x); err != nil {
			tb.Fatalf("encode example: %v", err)
		}
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatalf("not JSON: %v: %s", err, b)
	}
	return out
}

// docExample is a named JSON example of one documented response.
type docExample struct {
	where string // "sendOtp 400 customerNotFound" or "components RouteNotFound notFound"
	value any
}

// errorExamples returns every named example of the document's 4xx
// responses and of the API's 503: those are the error table, with exact
// bodies.
func errorExamples(tb testing.TB, doc *openapi3.T) []docExample {
	tb.Helper()
	var out []docExample
	add := func(where string, resp *openapi3.Response) {
		mt := resp.Content.Get("application/json")
		if mt == nil {
			tb.Fatalf("%s: no application/json content", where)
		}
		if len(mt.Examples) == 0 {
			tb.Fatalf("%s: no examples", where)
		}
		for name, ex := range mt.Examples {
			out = append(out, docExample{where + " " + name, jsonValue(tb, ex.Value.Value)})
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				if strings.HasPrefix(status, "4") || (status == "503" && !strings.HasPrefix(op.OperationID, "readyz")) {
					add(op.OperationID+" "+status, ref.Value)
				}
			}
		}
	}
	for name, ref := range doc.Components.Responses {
		if name == "RouteNotFound" || name == "MethodNotAllowed" {
			add("components "+name, ref.Value)
		}
	}
	return out
}

func TestOpenAPI_Document(t *testing.T) {
	doc := loadOpenAPI(t)

	t.Run("Endpoints", func(t *testing.T) {
		want := []string{
			"GET /api/v3/otp-verification/status/{requestId}",
			"GET /healthz", "GET /openapi.yaml", "GET /readyz", "HEAD /healthz", "HEAD /readyz",
			"POST /api/v3/otp-verification/send-otp", "POST /api/v3/otp-verification/verify-otp",
		}
		var got []string
		for path, item := range doc.Paths.Map() {
			for method := range item.Operations() {
				got = append(got, method+" "+path)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("got operations %v, want %v", got, want)
		}
	})

	// Every row of the error table that errors_test.go drives over the
	// wire is an example of the document, byte for byte in value.
	t.Run("ErrorTableRows", func(t *testing.T) {
		examples := errorExamples(t, doc)
		rows := map[string]string{
			"badNumber": badNumber, "noCustomer": noCustomer, "noText": noText, "blocked": blocked,
			"upstreamDown": upstreamDown, "unprocessable": unprocessable, "invalidOTP": invalidOTP,
			"otpNotFound": otpNotFound, "maxAttempts": maxAttempts, "tooMany": tooMany, "noKey": noKey,
			"wrongKey": wrongKey, "tooLarge": tooLarge, "routeNotFound": routeNotFound,
			"methodNotAllow":  methodNotAllow,
			"requestNotFound": envelope(404, "Request not found", "Not Found", 404),
		}
		for name, body := range rows {
			want := jsonValue(t, body)
			found := false
			for _, ex := range examples {
				if reflect.DeepEqual(ex.value, want) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("error row %s %s: not an example of openapi.yaml", name, body)
			}
		}
	})

	t.Run("Security", func(t *testing.T) {
		s := doc.Components.SecuritySchemes["apiKey"]
		if s == nil || s.Value.Type != "apiKey" || s.Value.In != "header" || s.Value.Name != "Authorization" {
			t.Fatalf("got security scheme %+v, want apiKey in header Authorization", s)
		}
		for path, item := range doc.Paths.Map() {
			for method, op := range item.Operations() {
				secured := op.Security != nil && len(*op.Security) > 0
				if want := strings.HasPrefix(path, "/api/"); secured != want {
					t.Errorf("%s %s: secured %v, want %v", method, path, secured, want)
				}
			}
		}
	})
}

// reqCheck says what the document must think of a request.
type reqCheck int

const (
	reqValid     reqCheck = iota // the request conforms to the document
	reqInvalid                   // the document rejects it (the gateway answers 4xx)
	reqUndecided                 // beyond what OpenAPI can state (trailing data after the JSON)
)

// exchange is one real request to a running gateway.
type exchange struct {
	name         string
	method, path string
	key          string // Authorization header; "" for none
	body         string
	status       int
	req          reqCheck
}

// apiChecker sends exchanges to a gateway and validates each request and
// response against the document; it records which documented responses
// (operation, status, named example) real answers covered.
type apiChecker struct {
	url      string
	doc      *openapi3.T
	router   routers.Router
	opts     *openapi3filter.Options
	examples []docExample
	covered  map[string]bool
}

func newAPIChecker(tb testing.TB, doc *openapi3.T, url string) *apiChecker {
	tb.Helper()
	doc.Servers = openapi3.Servers{{URL: url}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		tb.Fatal(err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // a status the document does not list is an error
		MultiError:            true,
		// Accepts any key that is present: which key is valid is the
		// gateway's business, not the document's.
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if in.SecurityScheme.In != "header" {
				return fmt.Errorf("scheme %s: unexpected location %q", in.SecuritySchemeName, in.SecurityScheme.In)
			}
			if in.RequestValidationInput.Request.Header.Get(in.SecurityScheme.Name) == "" {
				return errors.New("no " + in.SecurityScheme.Name + " header")
			}
			return nil
		},
	}
	return &apiChecker{url: url, doc: doc, router: router, opts: opts, examples: errorExamples(tb, doc),
		covered: map[string]bool{}}
}

func (a *apiChecker) newRequest(tb testing.TB, x exchange) *http.Request {
	tb.Helper()
	var body io.Reader = http.NoBody
	if x.method == http.MethodPost {
		body = strings.NewReader(x.body)
	}
	req, err := http.NewRequest(x.method, a.url+x.path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if x.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if x.key != "" {
		req.Header.Set("Authorization", x.key)
	}
	req.Header.Set("X-Request-Id", "openapi-"+x.name)
	return req
}

// do runs x and returns the response body.
func (a *apiChecker) do(t *testing.T, x exchange) string {
	t.Helper()
	ctx := context.Background()

	// The request, as the document sees it.
	vreq := a.newRequest(t, x)
	route, params, rerr := a.router.FindRoute(vreq)
	var in *openapi3filter.RequestValidationInput
	if rerr == nil {
		in = &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: a.opts}
		err := openapi3filter.ValidateRequest(ctx, in)
		switch {
		case x.req == reqValid && err != nil:
			t.Errorf("request does not conform to openapi.yaml: %v", err)
		case x.req == reqInvalid && err == nil:
			t.Errorf("openapi.yaml accepts a request the gateway answers %d", x.status)
		}
	}

	// The real answer.
	resp, err := httpClient.Do(a.newRequest(t, x))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != x.status {
		t.Fatalf("got %d %s, want %d", resp.StatusCode, body, x.status)
	}
	if got, want := resp.Header.Get("X-Request-Id"), "openapi-"+x.name; got != want {
		t.Errorf("X-Request-Id: got %q, want %q", got, want)
	}

	if rerr != nil {
		a.undocumented(t, x, rerr, resp, body)
		return string(body)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Options: a.opts}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("response does not conform to openapi.yaml: %v\nbody: %s", err, body)
	}
	key := fmt.Sprintf("%s %d", route.Operation.OperationID, resp.StatusCode)
	a.covered[key] = true
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		a.example(t, key, body)
	}
	return string(body)
}

// example checks that an error body is exactly one of the named examples
// documented for its operation and status, and records which.
func (a *apiChecker) example(t *testing.T, prefix string, body []byte) {
	t.Helper()
	got := jsonValue(t, body)
	for _, ex := range a.examples {
		if strings.HasPrefix(ex.where, prefix+" ") && reflect.DeepEqual(ex.value, got) {
			a.covered[ex.where] = true
			return
		}
	}
	t.Errorf("body %s is no example of %s in openapi.yaml", body, prefix)
}

// undocumented checks the answer to a path or method the document does
// not list: the 404/405 envelopes of components.responses.
func (a *apiChecker) undocumented(t *testing.T, x exchange, rerr error, resp *http.Response, body []byte) {
	t.Helper()
	// The router returns new RouteErrors that carry the sentinels' text.
	var re *routers.RouteError
	if !errors.As(rerr, &re) {
		t.Fatalf("route of %s %s: %v", x.method, x.path, rerr)
	}
	var name string
	switch {
	case re.Reason == routers.ErrPathNotFound.Error() && x.status == 404:
		name = "RouteNotFound"
	case re.Reason == routers.ErrMethodNotAllowed.Error() && x.status == 405:
		name = "MethodNotAllowed"
	default:
		t.Fatalf("route of %s %s: %v (status %d)", x.method, x.path, rerr, x.status)
	}
	r := a.doc.Components.Responses[name].Value
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	if err := r.Content.Get("application/json").Schema.Value.VisitJSON(v); err != nil {
		t.Errorf("body does not match %s's schema: %v", name, err)
	}
	a.covered["components "+name] = true
	a.example(t, "components "+name, body)
}

// uncovered lists the documented responses and error examples no real
// answer produced.
func (a *apiChecker) uncovered() []string {
	var out []string
	for _, item := range a.doc.Paths.Map() {
		for _, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if k := op.OperationID + " " + status; !a.covered[k] {
					out = append(out, k)
				}
			}
		}
	}
	for _, ex := range a.examples {
		if !a.covered[ex.where] {
			out = append(out, ex.where)
		}
	}
	slices.Sort(out)
	return out
}

// startUnready runs a gateway without waiting for /readyz, for a
// gateway that never gets a carrier bound.
func startUnready(tb testing.TB, cfg *daemon.Config) *gateway {
	tb.Helper()
	d, err := daemon.New(cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return runDaemon(tb, d)
}

// TestOpenAPI_Gateway sends real requests for every documented response
// and every row of the error table, and validates each request and each
// answer against api/openapi.yaml; then it checks that every documented
// status and error example was produced by some answer.
func TestOpenAPI_Gateway(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), maxAttempts: 2, resend: "1h"}))
	a := newAPIChecker(t, loadOpenAPI(t), g.url)

	const (
		send   = "/api/v3/otp-verification/send-otp"
		verify = "/api/v3/otp-verification/verify-otp"
		status = "/api/v3/otp-verification/status/"
	)
	run := func(x exchange) string {
		t.Helper()
		var body string
		t.Run(x.name, func(t *testing.T) { body = a.do(t, x) })
		return body
	}
	withOTP := func(number, otp string) string {
		return `{"clientId":"` + clientA + `","phoneNumber":"` + number + `","otp":` + otp + `}`
	}
	sendFields := func(phone, channel, text string) string {
		return `{"clientId":"` + clientA + `","phoneNumber":` + phone + `,"channel":` + channel + `,"customTextId":` + text + `}`
	}

	// Sends and verifies that succeed, and the status of one.
	body := run(exchange{"SendOK", "POST", send, keyA, sendBody(clientA, "+91-9800000002", "6"), 200, reqValid})
	reqID := requestID(t, body)
	good := codeFor(t, sim, "919800000002", 1)
	forbidInLogs(t, good)
	run(exchange{"VerifyOK", "POST", verify, keyA, verifyBody(clientA, "+91-9800000002", good), 200, reqValid})
	run(exchange{"StatusOK", "GET", status + reqID, "Bearer " + keyA, "", 200, reqValid})
	run(exchange{"Healthz", "GET", "/healthz", "", "", 200, reqValid})
	run(exchange{"Readyz", "GET", "/readyz", "", "", 200, reqValid})
	run(exchange{"HealthzHead", "HEAD", "/healthz", "", "", 200, reqValid})
	run(exchange{"ReadyzHead", "HEAD", "/readyz", "", "", 200, reqValid})
	run(exchange{"MetricsNotOnAPIPort", "GET", "/metrics", "", "", 404, reqInvalid})
	doc := run(exchange{"OpenAPI", "GET", "/openapi.yaml", "", "", 200, reqValid})
	if doc != string(api.OpenAPI()) {
		t.Error("GET /openapi.yaml: body differs from api.OpenAPI()")
	}

	// Attempts exhausted: max_attempts 2.
	run(exchange{"SendForLock", "POST", send, keyA, sendBody(clientA, "+91-9800000001", "6"), 200, reqValid})
	code := codeFor(t, sim, "919800000001", 1)
	forbidInLogs(t, code)
	run(exchange{"VerifyWrong1", "POST", verify, keyA, verifyBody(clientA, "+91-9800000001", flip(code)), 400, reqValid})
	run(exchange{"VerifyWrong2", "POST", verify, keyA, verifyBody(clientA, "+91-9800000001", flip(code)), 400, reqValid})
	run(exchange{"VerifyLocked", "POST", verify, keyA, verifyBody(clientA, "+91-9800000001", code), 429, reqValid})

	rows := []exchange{
		// send-otp
		{"SendInvalidNumber", "POST", send, keyA, sendBody(clientA, "+91-12", "6"), 400, reqValid},
		{"SendNotAllowedCountry", "POST", send, keyB, sendBody(clientB, "+1-2025550123", "6"), 400, reqValid},
		{"SendUnknownClient", "POST", send, keyA, sendBody("nobody", "+91-9800000003", "6"), 400, reqValid},
		{"SendKeyOfAnotherClient", "POST", send, keyB, sendBody(clientA, "+91-9800000003", "6"), 400, reqValid},
		{"SendCustomTextMissing", "POST", send, keyA, sendBody(clientA, "+91-9800000003", "99"), 400, reqValid},
		{"SendBlocked", "POST", send, keyA, sendBody(clientA, "+1-9990000000", "6"), 404, reqValid},
		{"SendUpstreamDown", "POST", send, keyA, sendBody(clientA, "+44-7400123456", "6"), 409, reqValid},
		{"SendResendTooSoon", "POST", send, keyA, sendBody(clientA, "+91-9800000002", "6"), 429, reqValid},
		{"SendMissingKey", "POST", send, "", sendBody(clientA, "+91-9800000003", "6"), 401, reqInvalid},
		{"SendEmptyBearer", "POST", send, "Bearer ", sendBody(clientA, "+91-9800000003", "6"), 401, reqValid},
		{"SendWrongKey", "POST", send, "not-a-key", sendBody(clientA, "+91-9800000003", "6"), 401, reqValid},
		{"SendTooLarge", "POST", send, keyA, `{"clientId":"` + strings.Repeat("x", 70<<10) + `"}`, 413, reqInvalid},
		{"SendMalformedJSON", "POST", send, keyA, `{"clientId":`, 422, reqInvalid},
		{"SendNotAnObject", "POST", send, keyA, `["clientId"]`, 422, reqInvalid},
		{"SendEmptyBody", "POST", send, keyA, ``, 422, reqInvalid},
		{"SendTrailingData", "POST", send, keyA, sendBody(clientA, "+91-9800000003", "6") + `{}`, 422, reqUndecided},
		{"SendMissingField", "POST", send, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9800000003","channel":"smsotp"}`, 422, reqInvalid},
		{"SendEmptyField", "POST", send, keyA, sendFields(`""`, `"smsotp"`, `"6"`), 422, reqInvalid},
		{"SendNullField", "POST", send, keyA, sendFields(`null`, `"smsotp"`, `"6"`), 422, reqInvalid},
		{"SendNumberNotString", "POST", send, keyA, sendFields(`919800000003`, `"smsotp"`, `"6"`), 422, reqInvalid},
		{"SendCustomTextNotString", "POST", send, keyA, sendFields(`"+91-9800000003"`, `"smsotp"`, `6`), 422, reqInvalid},
		{"SendUnknownChannel", "POST", send, keyA, sendFields(`"+91-9800000003"`, `"whatsapp"`, `"6"`), 422, reqInvalid},
		// verify-otp
		{"VerifyInvalidNumber", "POST", verify, keyA, verifyBody(clientA, "call me maybe", "123456"), 400, reqValid},
		{"VerifyUnknownClient", "POST", verify, keyA, verifyBody("nobody", "+91-9800000002", "123456"), 400, reqValid},
		{"VerifyNoLiveCode", "POST", verify, keyA, verifyBody(clientA, "+91-9800000009", "123456"), 404, reqValid},
		{"VerifyUsedCode", "POST", verify, keyA, verifyBody(clientA, "+91-9800000002", good), 404, reqValid},
		{"VerifyBlocked", "POST", verify, keyA, verifyBody(clientA, "+1-9990000000", "123456"), 404, reqValid},
		{"VerifyMissingKey", "POST", verify, "", verifyBody(clientA, "+91-9800000002", "123456"), 401, reqInvalid},
		{"VerifyWrongKey", "POST", verify, "Bearer nope", verifyBody(clientA, "+91-9800000002", "123456"), 401, reqValid},
		{"VerifyTooLarge", "POST", verify, keyA, `{"otp":"` + strings.Repeat("1", 70<<10) + `"}`, 413, reqInvalid},
		{"VerifyMissingOTP", "POST", verify, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9800000002"}`, 422, reqInvalid},
		{"VerifyOTPNotString", "POST", verify, keyA, withOTP("+91-9800000002", `123456`), 422, reqInvalid},
		{"VerifyNullOTP", "POST", verify, keyA, withOTP("+91-9800000002", `null`), 422, reqInvalid},
		// status
		{"StatusUnknownRequest", "GET", status + "ffffffffffffffffffffffff", keyA, "", 404, reqValid},
		{"StatusOfAnotherClient", "GET", status + reqID, keyB, "", 404, reqValid},
		{"StatusMissingKey", "GET", status + reqID, "", "", 401, reqInvalid},
		{"StatusWrongKey", "GET", status + reqID, "wrong", "", 401, reqValid},
		// neither path nor method in the document
		{"UnknownPath", "GET", "/api/v3/otp-verification/nothing", keyA, "", 404, reqInvalid},
		{"WrongMethod", "GET", send, keyA, "", 405, reqInvalid},
		{"WrongMethodHealthz", "POST", "/healthz", "", "{}", 405, reqInvalid},
	}
	for _, x := range rows {
		run(x)
	}

	// A gateway whose only carrier never binds, with a client rate of one
	// call: /readyz answers 503 and the second verify 429 "Too many requests".
	// Its auth_failures_per_minute of 1: the second wrong key is answered 429.
	ucfg := testConfig(t, cfgOpts{simAddr: deadAddr(t), ratePerSec: 0.001, rateBurst: 1})
	ucfg.AuthFailuresPerMinute = 1
	u := startUnready(t, ucfg)
	a.url = u.url
	a.doc.Servers = openapi3.Servers{{URL: u.url}}
	if a.router, _ = legacy.NewRouter(a.doc); a.router == nil {
		t.Fatal("router for the second gateway")
	}
	run(exchange{"ReadyzUnavailable", "GET", "/readyz", "", "", 503, reqValid})
	run(exchange{"ReadyzHeadUnavailable", "HEAD", "/readyz", "", "", 503, reqValid})
	run(exchange{"VerifyFirstCall", "POST", verify, keyA, verifyBody(clientA, "+91-9800000002", "123456"), 404, reqValid})
	run(exchange{"VerifyClientRate", "POST", verify, keyA, verifyBody(clientA, "+91-9800000002", "123456"), 429, reqValid})
	run(exchange{"StatusWrongKeyFirst", "GET", status + "ffffffffffffffffffffffff", "wrong", "", 401, reqValid})
	run(exchange{"StatusAuthFailures", "GET", status + "ffffffffffffffffffffffff", "wrong", "", 429, reqValid})

	// A store that cannot write (503) takes a full disk to provoke on a
	// running gateway: TestFullDisk_Gateway does that on a tmpfs; here its documented
	// body is checked against the api package's answer (TestAPI_StoreUnavailable).
	for _, op := range []string{"sendOtp 503", "verifyOtp 503"} {
		a.covered[op] = true
	}
	a.example(t, "verifyOtp 503", []byte(`{"error":{"name":"Error","message":"Service unavailable","status":503,"reason":"Error","type":"Service Unavailable","statusCode":503}}`))
	a.example(t, "sendOtp 503", []byte(`{"error":{"name":"Error","message":"Service unavailable","status":503,"reason":"Error","type":"Service Unavailable","statusCode":503}}`))
	if left := a.uncovered(); len(left) > 0 {
		t.Errorf("documented responses no real answer produced: %v", left)
	}
}
