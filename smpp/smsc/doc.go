// Package smsc is the bundled SMSC simulator: an SMPP 3.4 server that stands
// in for a carrier's SMSC in trials (`otpgate smsc-sim`, `simulate: true`) and
// in tests, in the shape of net/http/httptest.
//
// It accepts binds, acknowledges submit_sm with unique message ids, logs every
// accepted SMS with its full text (deliberately: it plays the handset), and
// sends delivery receipts as deliver_sm. Its behaviour can be scripted while it
// serves: reject binds, reject or throttle submits (also by a policy on their
// fields, such as TON/NPI, or when they carry a validity_period), delay or
// swallow acks, drop connections, unbind every session soon after its bind,
// fall silent, answer enquire_link late or never, and inject raw bytes. It
// records what each accepted submit carried: addresses, data coding,
// validity_period, service_type and TLVs.
//
// Client PDUs are decoded with go-smpp's codec; the PDUs the simulator
// originates are encoded by hand, because go-smpp's deliver_sm encoder emits a
// stray byte (see docs/smpp-notes.md).
package smsc
