package api

import (
	"errors"

	"github.com/gin-gonic/gin"
	"github.com/otpgate/otpgate/otp"
)

// errorBody is one row of DESIGN.md's error table, already encoded.
type errorBody struct {
	status int
	body   []byte
}

func envelope(status int, message, typ string, statusCode int) errorBody {
	b, err := jsonMarshal(struct {
		Error struct {
			Name       string `json:"name"`
			Message    string `json:"message"`
			Status     int    `json:"status"`
			Reason     string `json:"reason"`
			Type       string `json:"type"`
			StatusCode int    `json:"statusCode"`
		} `json:"error"`
	}{Error: struct {
		Name       string `json:"name"`
		Message    string `json:"message"`
		Status     int    `json:"status"`
		Reason     string `json:"reason"`
		Type       string `json:"type"`
		StatusCode int    `json:"statusCode"`
	}{"Error", message, status, "Error", typ, statusCode}})
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
	err  error
	body errorBody
}{
	{otp.ErrNoAPIKey, plain(401, "No API key found in request")},
	{otp.ErrInvalidAPIKey, plain(401, "Invalid authentication credentials")},
	{otp.ErrInvalidNumber, envelope(400, "Mobile number is not valid/allowed", "Bad Request", 400)},
	{otp.ErrCustomerNotFound, envelope(400, "Customer not found", "Bad Request", 400)},
	{otp.ErrCustomTextNotFound, envelope(400, "Custom text does not exist", "Bad Request", 400)},
	// The vendor document shows statusCode 200 for this row; kept for compatibility.
	{otp.ErrBlocked, envelope(404, "Blocked phone number", "Not Found", 200)},
	{otp.ErrUpstreamDown, envelope(409, "Upstream down", "Conflict", 409)},
	{otp.ErrUnprocessable, envelope(422, "Unprocessable Entity", "Unprocessable Entity", 422)},
	{otp.ErrInvalidOTP, envelope(400, "Invalid OTP", "Bad Request", 400)},
	{otp.ErrNotFound, envelope(404, "OTP not found or expired", "Not Found", 404)},
	{otp.ErrMaxAttempts, envelope(429, "Maximum verification attempts exceeded", "Too Many Requests", 429)},
	{otp.ErrTooManyRequests, envelope(429, "Too many requests", "Too Many Requests", 429)},
	{otp.ErrRequestNotFound, envelope(404, "Request not found", "Not Found", 404)},
	{errBodyTooLarge, envelope(413, "Request body too large", "Payload Too Large", 413)},
	{errRouteNotFound, envelope(404, "Not Found", "Not Found", 404)},
	{errMethodNotAllowed, envelope(405, "Method Not Allowed", "Method Not Allowed", 405)},
}

var (
	errBodyTooLarge     = errors.New("api: request body too large")
	errRouteNotFound    = errors.New("api: no such route")
	errMethodNotAllowed = errors.New("api: method not allowed")
	internalError       = envelope(500, "Internal Server Error", "Internal Server Error", 500)
)

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
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, otp.ErrNoAPIKey):
		return "no_api_key"
	case errors.Is(err, otp.ErrInvalidAPIKey):
		return "invalid_api_key"
	case errors.Is(err, otp.ErrInvalidNumber):
		return "invalid_number"
	case errors.Is(err, otp.ErrCustomerNotFound):
		return "customer_not_found"
	case errors.Is(err, otp.ErrCustomTextNotFound):
		return "custom_text_not_found"
	case errors.Is(err, otp.ErrBlocked):
		return "blocked"
	case errors.Is(err, otp.ErrUpstreamDown):
		return "upstream_down"
	case errors.Is(err, otp.ErrUnprocessable):
		return "unprocessable"
	case errors.Is(err, otp.ErrInvalidOTP):
		return "invalid_otp"
	case errors.Is(err, otp.ErrNotFound):
		return "not_found"
	case errors.Is(err, otp.ErrMaxAttempts):
		return "max_attempts"
	case errors.Is(err, otp.ErrTooManyRequests):
		return "too_many_requests"
	case errors.Is(err, otp.ErrRequestNotFound):
		return "request_not_found"
	case errors.Is(err, errBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, errRouteNotFound):
		return "no_route"
	case errors.Is(err, errMethodNotAllowed):
		return "method_not_allowed"
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
