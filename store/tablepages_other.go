//go:build !linux

package store

import "errors"

// errNoPageout means table pages cannot be released on this system.
var errNoPageout = errors.New("releasing table pages: not implemented on this system")

// tablePager is not implemented here: badger's tables stay mapped as the
// kernel sees fit.
type tablePager struct{}

func newTablePager(string) *tablePager { return &tablePager{} }

func (*tablePager) release() (int64, error) { return 0, errNoPageout }

// resident is unknown here.
func (*tablePager) resident() int64 { return -1 }
