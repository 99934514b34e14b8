package store

// maskKey returns a store key fit for an error that may reach a log line:
// every run of seven or more digits (a phone number in a record key such
// as "client/919876543210") keeps its first and last two digits only.
func maskKey(key string) string {
	b := []byte(key)
	for i := 0; i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j-i >= 7 {
			for k := i + 2; k < j-2; k++ {
				b[k] = '*'
			}
		}
		i = j
	}
	return string(b)
}

// MaskKey returns key with the phone numbers in it masked, as maskKey
// does, for the other store backends' errors.
func MaskKey(key string) string { return maskKey(key) }
