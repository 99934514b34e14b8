package api

import (
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/otp"
)

// errorBody is one row of the error table (README.md, "HTTP API";
// api/openapi.yaml), already encoded.
type errorBody struct {
	status int
	body   []byte
}

// errorEnvelope is the error body of the vendor API otpgate is compatible
// with (docs/architecture.md, "The vendor API"): its clients parse it.
type errorEnvelope struct {
	Error struct {
		Name       string `json:"name"`
		Message    string `json:"message"`
		Status     int    `json:"status"`
		Reason     string `json:"reason"`
		Type       string `json:"type"`
		StatusCode int    `json:"statusCode"`
	} `json:"error"`
}

func envelope(status int, message, typ string, statusCode int) errorBody {
	var e errorEnvelope
	e.Error.Name, e.Error.Message, e.Error.Status = "Error", message, status
	e.Error.Reason, e.Error.Type, e.Error.StatusCode = "Error", typ, statusCode
	b, err := jsonMarshal(e)
	if err != nil {
		panic(err) // constant input
	}
	return errorBody{status: status, body: b}
}

func plain(status int, message string) errorBody {
	b, err := jsonMarshal(struct {
		Message string `json:"message"`
	}{message})
	if err != nil {
		panic(err)
	}
	return errorBody{status: status, body: b}
}

// errorTable maps each domain error to its documented body. It is the only
// place where errors become HTTP.
var errorTable = []struct {
	err     error
	outcome string // for logs and metrics
	body    errorBody
}{
	{otp.ErrNoAPIKey, "no_api_key", plain(401, "No API key found in request")},
	{otp.ErrInvalidAPIKey, "invalid_api_key", plain(401, "Invalid authentication credentials")},
	{otp.ErrInvalidNumber, "invalid_number", envelope(400, "Mobile number is not valid/allowed", "Bad Request", 400)},
	{otp.ErrCustomerNotFound, "customer_not_found", envelope(400, "Customer not found", "Bad Request", 400)},
	{otp.ErrCustomTextNotFound, "custom_text_not_found", envelope(400, "Custom text does not exist", "Bad Request", 400)},
	// The vendor API answers statusCode 200 for this row; kept for compatibility
	// (docs/architecture.md, "The vendor API").
	{otp.ErrBlocked, "blocked", envelope(404, "Blocked phone number", "Not Found", 200)},
	{otp.ErrUpstreamDown, "upstream_down", envelope(409, "Upstream down", "Conflict", 409)},
	{otp.ErrUnprocessable, "unprocessable", envelope(422, "Unprocessable Entity", "Unprocessable Entity", 422)},
	{otp.ErrInvalidOTP, "invalid_otp", envelope(400, "Invalid OTP", "Bad Request", 400)},
	{otp.ErrNotFound, "not_found", envelope(404, "OTP not found or expired", "Not Found", 404)},
	{otp.ErrMaxAttempts, "max_attempts", envelope(429, "Maximum verification attempts exceeded", "Too Many Requests", 429)},
	{errAuthLimited, "auth_limited", envelope(429, "Too many requests", "Too Many Requests", 429)},
	{otp.ErrTooManyRequests, "too_many_requests", envelope(429, "Too many requests", "Too Many Requests", 429)},
	{otp.ErrRequestNotFound, "request_not_found", envelope(404, "Request not found", "Not Found", 404)},
	{otp.ErrUnavailable, "unavailable", envelope(503, "Service unavailable", "Service Unavailable", 503)},
	{errBodyTooLarge, "body_too_large", envelope(413, "Request body too large", "Payload Too Large", 413)},
	{errRouteNotFound, "no_route", envelope(404, "Not Found", "Not Found", 404)},
	{errMethodNotAllowed, "method_not_allowed", envelope(405, "Method Not Allowed", "Method Not Allowed", 405)},
}

var (
	errBodyTooLarge     = errors.New("api: request body too large")
	errRouteNotFound    = errors.New("api: no such route")
	errMethodNotAllowed = errors.New("api: method not allowed")
	internalError       = envelope(500, "Internal Server Error", "Internal Server Error", 500)
)

// errAuthLimited means the remote address made too many failed API-key
// attempts (Access.AuthFailuresPerMinute).
var errAuthLimited = errors.New("api: too many failed api key attempts")

// lookupError returns the documented body of err, or internalError.
func lookupError(err error) (errorBody, bool) {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.body, true
		}
	}
	return internalError, false
}

// writeError writes err's documented body. An error with no row is a bug:
// it is logged and answered 500 with no detail.
func (h *handler) writeError(c *gin.Context, err error) {
	b, ok := lookupError(err)
	if !ok {
		h.log.Error("unmapped error", "route", c.FullPath(), "error", err)
	}
	c.Set(keyOutcome, outcomeOf(err))
	if o := h.opts.Observer; o != nil {
		if scope := limitScope(err); scope != "" {
			o.RateLimited(scope)
		}
	}
	c.Data(b.status, "application/json; charset=utf-8", b.body)
	c.Abort()
}

// outcomeOf names err for logs and metrics without any request data.
func outcomeOf(err error) string {
	if err == nil {
		return "ok"
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.outcome
		}
	}
	return "internal_error"
}

// limitScope names the limit behind a 429 "Too many requests".
func limitScope(err error) string {
	switch {
	case errors.Is(err, otp.ErrClientRate):
		return "client"
	case errors.Is(err, otp.ErrResendTooSoon):
		return "resend"
	case errors.Is(err, otp.ErrHourlyCap):
		return "hourly"
	case errors.Is(err, otp.ErrSendInProgress):
		return "inflight"
	case errors.Is(err, otp.ErrGuarded):
		return "guard"
	case errors.Is(err, errAuthLimited):
		return "auth"
	}
	return ""
}

// verificationResult names a verify-otp outcome for metrics ("" when the
// request never reached the check of a code).
func verificationResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, otp.ErrInvalidOTP):
		return "invalid"
	case errors.Is(err, otp.ErrNotFound):
		return "not_found"
	case errors.Is(err, otp.ErrMaxAttempts):
		return "locked"
	}
	return ""
}
