package api

// ErrorOutcomes returns the outcome name of every row of the error table,
// so that the wire test of the table can check it exercised each row.
func ErrorOutcomes() []string {
	out := make([]string, len(errorTable))
	for i, row := range errorTable {
		out[i] = row.outcome
	}
	return out
}
