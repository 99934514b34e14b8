// Package metrics owns otpgate's Prometheus collectors and serves them. It
// implements the small observer interfaces that api and smpp declare; no
// label ever holds a phone number, a key or a code.
package metrics
