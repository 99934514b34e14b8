// Package smpp owns otpgate's carriers: an SMPP 3.4 client session layer
// (bind, sequence numbers, window, enquire_link, unbind, reconnect) built on
// go-smpp's PDU codec only, message encoding (GSM7/UCS2, concatenation),
// delivery-receipt parsing, and the per-country Router that implements
// otp.Sender. The bundled SMSC simulator lives in the smsc subpackage.
package smpp
