// Package ratelimit owns otpgate's keyed token buckets (per client, per
// number, ...): one golang.org/x/time/rate limiter per key, with idle buckets
// evicted so that memory stays bounded however many keys are seen.
package ratelimit
