// Package api is otpgate's HTTP layer: gin routes for send-otp, verify-otp
// and status, API-key authentication, request decoding, and the one table
// that maps domain errors to the documented error bodies.
package api
