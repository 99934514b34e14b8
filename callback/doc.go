// Package callback delivers delivery-receipt and MO callbacks to clients'
// HTTP endpoints: it drains the durable queue (otp.CallbackQueue) that the
// store fills, POSTs each callback signed with the client's secret and
// the time of the try, and reschedules failures with back-off until a 2xx
// or otp.CallbackMaxAge. Its scheduler shares the workers fairly among
// clients and opens a circuit on an endpoint that keeps failing, so that
// dead endpoints cannot hold up the others (see schedule.go).
package callback
