// Package callback delivers delivery-receipt callbacks to clients' HTTP
// endpoints: it drains the durable queue (otp.CallbackQueue) that the store
// fills with every delivery-state change, POSTs each callback signed with
// the client's secret, and reschedules failures with back-off until a 2xx
// or otp.CallbackMaxAge.
package callback
