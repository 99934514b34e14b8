// Package phone owns otpgate's numbering plan: it parses the phone numbers
// clients send ("+91-9876543210", "+91 9876543210", "+919876543210") and
// validates them against the vendor's supported-countries table, embedded as
// countries.tsv. Where several countries share a calling code it tells them
// apart with github.com/nyaruka/phonenumbers; validity stays the table's rule.
//
// Everything in the package is safe for concurrent use.
package phone
