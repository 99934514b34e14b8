package api

import (
	"bytes"
	"testing"
)

// TestSentBody: the hand-written send-otp body is byte for byte what
// json.Marshal gives for sendResult, for request ids as newRequestID makes
// them and for ids that need escaping.
func TestSentBody(t *testing.T) {
	for _, id := range []string{"6145482bf9ac11563e90149e", "ABCdef0123", "", `a"b`, "a<b>&", "é", "a\\b\n"} {
		var r sendResult
		r.Result.Status, r.Result.StatusDescription, r.Result.RequestID = 200, "Success OTP sent", id
		want, err := jsonMarshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := sentBody(id); !bytes.Equal(got, want) {
			t.Errorf("sentBody(%q) = %s, want %s", id, got, want)
		}
	}
}
