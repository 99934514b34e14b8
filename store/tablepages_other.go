//go:build !linux

package store

import "errors"

// errNoPageout means table pages cannot be released on this system.
var errNoPageout = errors.New("releasing table pages: not implemented on this system")

// releaseTablePages is not implemented here: badger's tables stay mapped
// as the kernel sees fit.
func releaseTablePages(string) (int64, error) { return 0, errNoPageout }
