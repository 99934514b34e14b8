package smpp

import (
	"testing"
	"time"
)

func TestReceiptFields(t *testing.T) {
	for i, want := range map[int]string{fieldDoneDate: "done date", fieldStat: "stat", fieldErr: "err", fieldID: "id"} {
		if receiptKeys[i] != want {
			t.Errorf("receiptKeys[%d] = %q, want %q", i, receiptKeys[i], want)
		}
	}
	// Keys in any case, only at the start or after white space; the first
	// occurrence wins; a value runs to the next key (a repeated one too),
	// trimmed.
	got := receiptFields("ID:7f  xstat:no Sub:001 Done Date:2401011201\tstat:DELIVRD err:000 text:id:9 stat:UNDELIV")
	want := receiptText{"", "2401011201", "", "DELIVRD", "id:9", "001", "000", "7f  xstat:no"}
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	for _, c := range []struct {
		text string
		want receiptText
	}{
		// NUL separates like white space (it stays in the value before it:
		// firstToken drops it); the last value is trimmed too.
		{"id:1\x00stat:DELIVRD err:000  ", receiptText{fieldID: "1\x00", fieldStat: "DELIVRD", fieldErr: "000"}},
		// A key at the very end has an empty value; a word without its
		// colon is no key.
		{"stat:DELIVRD id", receiptText{fieldStat: "DELIVRD id"}},
		{"stat:DELIVRD err:", receiptText{fieldStat: "DELIVRD"}},
		// "sub" is a prefix of "submit date": each is read as itself.
		{"sub:001 submit date:2401011200", receiptText{fieldSub: "001", fieldSubmitDate: "2401011200"}},
	} {
		if got := receiptFields(c.text); got != c.want {
			t.Errorf("%q:\ngot  %q\nwant %q", c.text, got, c.want)
		}
	}
}

// BenchmarkParseReceipt: one receipt text as the bundled simulator writes
// it, through the reader's parse.
func BenchmarkParseReceipt(b *testing.B) {
	sm := []byte("id:0a1b2c3d4e sub:001 dlvrd:001 submit date:2612021030 done date:2612021030 stat:DELIVRD err:000 text:Your code is")
	now := time.Date(2026, 12, 2, 10, 31, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseReceipt(esmTypeReceipt, sm, nil, now, time.UTC); err != nil {
			b.Fatal(err)
		}
	}
}
