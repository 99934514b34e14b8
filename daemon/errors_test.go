package daemon_test

import (
	"strings"
	"testing"

	"github.com/otpgate/otpgate/smpp/smsc"
)

func envelope(status int, message, typ string, statusCode int) string {
	return `{"error":{"name":"Error","message":"` + message + `","status":` + itoa(status) +
		`,"reason":"Error","type":"` + typ + `","statusCode":` + itoa(statusCode) + `}}`
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

var (
	badNumber      = envelope(400, "Mobile number is not valid/allowed", "Bad Request", 400)
	noCustomer     = envelope(400, "Customer not found", "Bad Request", 400)
	noText         = envelope(400, "Custom text does not exist", "Bad Request", 400)
	blocked        = envelope(404, "Blocked phone number", "Not Found", 200)
	upstreamDown   = envelope(409, "Upstream down", "Conflict", 409)
	unprocessable  = envelope(422, "Unprocessable Entity", "Unprocessable Entity", 422)
	invalidOTP     = envelope(400, "Invalid OTP", "Bad Request", 400)
	otpNotFound    = envelope(404, "OTP not found or expired", "Not Found", 404)
	maxAttempts    = envelope(429, "Maximum verification attempts exceeded", "Too Many Requests", 429)
	tooMany        = envelope(429, "Too many requests", "Too Many Requests", 429)
	noKey          = `{"message":"No API key found in request"}`
	wrongKey       = `{"message":"Invalid authentication credentials"}`
	tooLarge       = envelope(413, "Request body too large", "Payload Too Large", 413)
	routeNotFound  = envelope(404, "Not Found", "Not Found", 404)
	methodNotAllow = envelope(405, "Method Not Allowed", "Method Not Allowed", 405)
)

const (
	sendPath   = "/api/v3/otp-verification/send-otp"
	verifyPath = "/api/v3/otp-verification/verify-otp"
)

// TestGateway_ErrorTable drives every row of the README's error table
// ("HTTP API") through the whole gateway and checks the exact body.
func TestGateway_ErrorTable(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), maxAttempts: 2}))

	// A live code for the verify rows.
	if code, body := send(t, g, "+91-9811111111"); code != 200 {
		t.Fatalf("send: %d %s", code, body)
	}
	good := codeFor(t, sim, "919811111111", 1)
	wrong := "000000"
	if good == wrong {
		wrong = "111111"
	}
	forbidInLogs(t, good)

	rows := []struct {
		name, method, path, key, body string
		status                        int
		want                          string
	}{
		{"InvalidNumber", "POST", sendPath, keyA, sendBody(clientA, "+91-12", "6"), 400, badNumber},
		{"UnsupportedCountryCode", "POST", sendPath, keyA, sendBody(clientA, "+999-123456789", "6"), 400, badNumber},
		{"NotAllowedCountry", "POST", sendPath, keyB, sendBody(clientB, "+1-2025550123", "6"), 400, badNumber},
		{"GarbageNumber", "POST", sendPath, keyA, sendBody(clientA, "call me maybe", "6"), 400, badNumber},
		{"UnknownClient", "POST", sendPath, keyA, sendBody("nobody", "+91-9811111112", "6"), 400, noCustomer},
		{"KeyOfAnotherClient", "POST", sendPath, keyB, sendBody(clientA, "+91-9811111112", "6"), 400, noCustomer},
		{"CustomTextMissing", "POST", sendPath, keyA, sendBody(clientA, "+91-9811111112", "99"), 400, noText},
		{"CustomTextOfAnotherClient", "POST", sendPath, keyB, sendBody(clientB, "+91-9811111112", "41"), 400, noText},
		{"Blocked", "POST", sendPath, keyA, sendBody(clientA, "+1-9990000000", "6"), 404, blocked},
		{"BlockedOtherFormat", "POST", sendPath, keyA, sendBody(clientA, "+19990000000", "6"), 404, blocked},
		{"UpstreamDown", "POST", sendPath, keyA, sendBody(clientA, "+44-7400123456", "6"), 409, upstreamDown},
		{"MalformedJSON", "POST", sendPath, keyA, `{"clientId":`, 422, unprocessable},
		{"NotAnObject", "POST", sendPath, keyA, `["clientId"]`, 422, unprocessable},
		{"EmptyBody", "POST", sendPath, keyA, ``, 422, unprocessable},
		{"TrailingData", "POST", sendPath, keyA, sendBody(clientA, "+91-9811111112", "6") + `{}`, 422, unprocessable},
		{"MissingField", "POST", sendPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9811111112","channel":"smsotp"}`, 422, unprocessable},
		{"NullField", "POST", sendPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":null,"channel":"smsotp","customTextId":"6"}`, 422, unprocessable},
		{"WrongType", "POST", sendPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":919811111112,"channel":"smsotp","customTextId":"6"}`, 422, unprocessable},
		{"WrongTypeCustomText", "POST", sendPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9811111112","channel":"smsotp","customTextId":6}`, 422, unprocessable},
		{"UnknownChannel", "POST", sendPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9811111112","channel":"whatsapp","customTextId":"6"}`, 422, unprocessable},
		{"VerifyMissingOTP", "POST", verifyPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9811111111"}`, 422, unprocessable},
		{"VerifyOTPNumber", "POST", verifyPath, keyA, `{"clientId":"` + clientA + `","phoneNumber":"+91-9811111111","otp":123456}`, 422, unprocessable},
		{"VerifyInvalidNumber", "POST", verifyPath, keyA, verifyBody(clientA, "+91-12", "123456"), 400, badNumber},
		{"VerifyNotAllowedCountry", "POST", verifyPath, keyB, verifyBody(clientB, "+1-2025550123", "123456"), 400, badNumber},
		{"VerifyUnknownClient", "POST", verifyPath, keyA, verifyBody("nobody", "+91-9811111111", "123456"), 400, noCustomer},
		{"VerifyKeyOfAnotherClient", "POST", verifyPath, keyB, verifyBody(clientA, "+91-9811111111", "123456"), 400, noCustomer},
		{"VerifyBlocked", "POST", verifyPath, keyA, verifyBody(clientA, "+1-9990000000", "123456"), 404, blocked},
		{"VerifyMalformed", "POST", verifyPath, keyA, `{"otp":`, 422, unprocessable},
		{"VerifyMissingKey", "POST", verifyPath, "", verifyBody(clientA, "+91-9811111111", "123456"), 401, noKey},
		{"StatusMissingKey", "GET", "/api/v3/otp-verification/status/abc", "", ``, 401, noKey},
		{"StatusWrongKey", "GET", "/api/v3/otp-verification/status/abc", "nope", ``, 401, wrongKey},
		{"NoLiveCode", "POST", verifyPath, keyA, verifyBody(clientA, "+91-9822222222", "123456"), 404, otpNotFound},
		{"WrongCode", "POST", verifyPath, keyA, verifyBody(clientA, "+91-9811111111", wrong), 400, invalidOTP},
		{"WrongCodeReachesMax", "POST", verifyPath, keyA, verifyBody(clientA, "+91-9811111111", wrong), 400, invalidOTP},
		{"AttemptsExhausted", "POST", verifyPath, keyA, verifyBody(clientA, "+91-9811111111", good), 429, maxAttempts},
		{"MissingKey", "POST", sendPath, "", sendBody(clientA, "+91-9811111112", "6"), 401, noKey},
		{"EmptyBearer", "POST", sendPath, "Bearer ", sendBody(clientA, "+91-9811111112", "6"), 401, noKey},
		{"WrongKey", "POST", sendPath, "not-a-key", sendBody(clientA, "+91-9811111112", "6"), 401, wrongKey},
		{"WrongKeyVerify", "POST", verifyPath, "Bearer nope", verifyBody(clientA, "+91-9811111111", good), 401, wrongKey},
		{"BodyTooLarge", "POST", sendPath, keyA, `{"clientId":"` + strings.Repeat("x", 70<<10) + `"}`, 413, tooLarge},
		{"UnknownPath", "GET", "/api/v3/otp-verification/nothing", keyA, ``, 404, routeNotFound},
		{"WrongMethod", "GET", sendPath, keyA, ``, 405, methodNotAllow},
		{"StatusUnknownRequest", "GET", "/api/v3/otp-verification/status/ffffffffffffffffffffffff", keyA, ``, 404, envelope(404, "Request not found", "Not Found", 404)},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			code, body := call(t, r.method, g.url+r.path, r.key, r.body)
			if code != r.status || body != r.want {
				t.Fatalf("got %d %s, want %d %s", code, body, r.status, r.want)
			}
		})
	}
}

// TestGateway_TooManyRequests covers the three 429 "Too many requests" causes.
func TestGateway_TooManyRequests(t *testing.T) {
	sim := startSim(t, smsc.Options{})
	t.Run("ResendInterval", func(t *testing.T) {
		g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), resend: "1h"}))
		if code, body := send(t, g, "+91-9833333333"); code != 200 {
			t.Fatalf("first send: %d %s", code, body)
		}
		if code, body := send(t, g, "+91-9833333333"); code != 429 || body != tooMany {
			t.Fatalf("resend: got %d %s, want 429", code, body)
		}
		// Another number is not affected.
		if code, body := send(t, g, "+91-9833333334"); code != 200 {
			t.Fatalf("other number: %d %s", code, body)
		}
	})
	t.Run("HourlyCap", func(t *testing.T) {
		g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), perHour: 2}))
		for i := 0; i < 2; i++ {
			if code, body := send(t, g, "+91-9844444444"); code != 200 {
				t.Fatalf("send %d: %d %s", i, code, body)
			}
		}
		if code, body := send(t, g, "+91-9844444444"); code != 429 || body != tooMany {
			t.Fatalf("third send: got %d %s, want 429", code, body)
		}
	})
	t.Run("ClientRate", func(t *testing.T) {
		g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), ratePerSec: 0.001, rateBurst: 2}))
		// send-otp and verify-otp share the client's bucket (burst 2, no refill to speak of).
		got := []int{}
		code, _ := send(t, g, "+91-9855555555")
		got = append(got, code)
		code, _ = verify(t, g, "+91-9855555555", "123456")
		got = append(got, code)
		for i := 0; i < 2; i++ {
			code, body := verify(t, g, "+91-9855555555", "123456")
			if body != tooMany {
				t.Fatalf("call %d over the rate: got %d %s, want 429 Too many requests", i+3, code, body)
			}
			got = append(got, code)
		}
		code, body := send(t, g, "+91-9855555556")
		if code != 429 || body != tooMany {
			t.Fatalf("send over the rate: got %d %s, want 429", code, body)
		}
		if got[0] != 200 || got[1] != 400 {
			t.Fatalf("first two calls: got %v, want 200 then 400 (wrong code)", got[:2])
		}
	})
	t.Run("UnansweredSubmitCounts", func(t *testing.T) {
		// A submit the SMSC never answers may still reach the handset: it
		// counts toward resend_interval, so retries cannot pump SMS.
		quiet := startSim(t, smsc.Options{})
		g := startGateway(t, testConfig(t, cfgOpts{simAddr: quiet.Addr(), resend: "1h", submitTimout: "500ms"}))
		quiet.SetNoAck(true)
		if code, body := send(t, g, "+91-9877777777"); code != 409 || body != upstreamDown {
			t.Fatalf("unanswered submit: got %d %s, want 409", code, body)
		}
		quiet.SetNoAck(false)
		if code, body := send(t, g, "+91-9877777777"); code != 429 || body != tooMany {
			t.Fatalf("resend after an unanswered submit: got %d %s, want 429", code, body)
		}
		if code, body := send(t, g, "+91-9877777778"); code != 200 {
			t.Fatalf("another number: got %d %s, want 200", code, body)
		}
	})
	t.Run("ResendKeepsAttempts", func(t *testing.T) {
		g := startGateway(t, testConfig(t, cfgOpts{simAddr: sim.Addr(), maxAttempts: 2}))
		number, e164 := "+91-9866666666", "919866666666"
		before := 0
		for _, m := range sim.Messages() {
			if m.Dst == e164 {
				before++
			}
		}
		if code, body := send(t, g, number); code != 200 {
			t.Fatalf("send: %d %s", code, body)
		}
		c1 := codeFor(t, sim, e164, before+1)
		if code, _ := verify(t, g, number, flip(c1)); code != 400 {
			t.Fatalf("wrong guess: got %d, want 400", code)
		}
		if code, body := send(t, g, number); code != 200 {
			t.Fatalf("resend: %d %s", code, body)
		}
		c2 := codeFor(t, sim, e164, before+2)
		if code, _ := verify(t, g, number, flip(c2)); code != 400 {
			t.Fatalf("second wrong guess: got %d, want 400", code)
		}
		// Two wrong guesses across a resend reach max_attempts 2.
		if code, body := verify(t, g, number, c2); code != 429 || body != maxAttempts {
			t.Fatalf("right code after lock: got %d %s, want 429", code, body)
		}
	})
}

// flip returns a code of the same length that differs from c.
func flip(c string) string {
	b := []byte(c)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}
