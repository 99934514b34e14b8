package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/otpgate/otpgate/otp"
)

// fillAll sets every field reachable from v (a pointer) to a non-zero value
// derived from seed, so that a field added to a stored type without being
// added to the binary encoding fails the round trip below. Fields tagged
// json:"-" are not stored and stay zero.
func fillAll(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+seed%26)) + "é")
	case reflect.Int:
		v.SetInt(int64(seed + 1))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte{byte(seed), 0, 0xff, byte(seed + 1)})
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillAll(t, s.Index(i), seed+10*(i+1))
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 19, 0, seed%60, 123456789+seed, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).Tag.Get("json") == "-" {
				continue
			}
			fillAll(t, v.Field(i), seed+i+1)
		}
	default:
		t.Fatalf("fill: no case for kind %s (%s): add it here and to codec.go", v.Kind(), v.Type())
	}
}

func roundTrip[T any](t *testing.T, in T) T {
	t.Helper()
	b, err := marshalValue(&in)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if b[0] != codecV1 {
		t.Fatalf("%T encoded as %q, want the binary encoding", in, b)
	}
	var out T
	if err := unmarshalValue(b, &out); err != nil {
		t.Fatalf("unmarshal %T: %v", in, err)
	}
	return out
}

func TestCodec_RoundTripEveryField(t *testing.T) {
	var rec otp.Record
	fillAll(t, reflect.ValueOf(&rec).Elem(), 1)
	if got := roundTrip(t, rec); !reflect.DeepEqual(got, rec) {
		t.Errorf("record:\n got %+v\nwant %+v", got, rec)
	}
	var msg otp.Message
	fillAll(t, reflect.ValueOf(&msg).Elem(), 2)
	if got := roundTrip(t, msg); !reflect.DeepEqual(got, msg) {
		t.Errorf("message:\n got %+v\nwant %+v", got, msg)
	}
	ie := indexEntry{RequestID: "r1", Part: 3}
	if got := roundTrip(t, ie); got != ie {
		t.Errorf("index: got %+v, want %+v", got, ie)
	}
}

func TestCodec_ZeroValues(t *testing.T) {
	// Zero times, nil slices and empty strings come back as such (not the
	// Unix epoch, not empty slices), as JSON with omitempty gave them.
	if got := roundTrip(t, otp.Record{}); !reflect.DeepEqual(got, otp.Record{}) {
		t.Errorf("zero record: got %+v", got)
	}
	if got := roundTrip(t, otp.Message{}); !reflect.DeepEqual(got, otp.Message{}) {
		t.Errorf("zero message: got %+v", got)
	}
	epoch := otp.Record{ExpiresAt: time.Unix(0, 0).UTC()}
	if got := roundTrip(t, epoch); !got.ExpiresAt.Equal(epoch.ExpiresAt) || got.ExpiresAt.IsZero() {
		t.Errorf("epoch: got %v", got.ExpiresAt)
	}
}

func TestCodec_SmallerThanJSON(t *testing.T) {
	keep := time.Now()
	rec := otp.Record{CodeHash: make([]byte, 32), ExpiresAt: keep, RequestID: "6145482bf9ac11563e90149e",
		Sends: []time.Time{keep}, Carrier: "carrier-a", KeepUntil: keep}
	msg := otp.Message{RequestID: "6145482bf9ac11563e90149e", ClientID: "64c1115454eb66846d026abf", Number: "919876543210",
		Display: "+91-98******10", Carrier: "carrier-a", SubmittedAt: keep,
		Parts: []otp.Part{{MessageID: "3fa2b9c4", State: otp.StateDelivered, Error: "000", DoneAt: keep}}}
	for _, v := range []any{rec, msg} {
		bin, _ := marshalValue(v)
		js, _ := json.Marshal(v)
		t.Logf("%T: %d bytes binary, %d JSON", v, len(bin), len(js))
		if len(bin) >= len(js)*2/3 {
			t.Errorf("%T: %d bytes binary, not much below %d JSON", v, len(bin), len(js))
		}
	}
}

func TestCodec_CorruptValuesFail(t *testing.T) {
	var msg otp.Message
	fillAll(t, reflect.ValueOf(&msg).Elem(), 5)
	b, _ := marshalValue(&msg)
	// Every truncation is an error, never a panic nor a silent short value.
	for n := 1; n < len(b); n++ {
		var m otp.Message
		if err := unmarshalValue(b[:n], &m); !errors.Is(err, errCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err %v, want errCorrupt", n, len(b), err)
		}
	}
	if err := unmarshalValue(append(b, 0), &msg); !errors.Is(err, errCorrupt) {
		t.Errorf("trailing byte: err %v, want errCorrupt", err)
	}
	// A huge length is refused before anything is allocated.
	var rec otp.Record
	if err := unmarshalValue([]byte{codecV1, 0xff, 0xff, 0xff, 0xff, 0x0f}, &rec); !errors.Is(err, errCorrupt) {
		t.Errorf("huge length: err %v, want errCorrupt", err)
	}
}

// TestCodec_ReadsJSONValues: a data directory written by a version that
// stored JSON is read, receipts match its index, and rewrites are binary.
func TestCodec_ReadsJSONValues(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := otp.Record{CodeHash: []byte("hash"), ExpiresAt: now.Add(time.Hour), RequestID: "r1", Attempts: 2,
		Sends: []time.Time{now}, Carrier: "c1", KeepUntil: now.Add(2 * time.Hour)}
	msg := otp.Message{RequestID: "r1", ClientID: "cl", Number: "919876543210", Display: "+91-98******10",
		Carrier: "c1", SubmittedAt: now, Parts: []otp.Part{{MessageID: "2a", State: otp.StateAccepted}}}
	err = db.bdb.Update(func(txn *badger.Txn) error { // as the JSON versions wrote them
		for k, v := range map[string]any{prefixOTP + "cl/919876543210": rec, prefixMessage + "r1": msg,
			prefixExact + "c1/2A": indexEntry{RequestID: "r1"}} {
			js, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(k), js); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetOTP(ctx, "cl/919876543210")
	if err != nil {
		t.Fatalf("GetOTP of a JSON record: %v", err)
	}
	if string(got.CodeHash) != "hash" || got.Attempts != 2 || !got.KeepUntil.Equal(rec.KeepUntil) || len(got.Sends) != 1 {
		t.Errorf("JSON record read as %+v", got)
	}
	m, matched, changed, err := db.ApplyReceipt(ctx, otp.Receipt{Carrier: "c1", MessageID: "2a", State: otp.StateDelivered, Error: "000", DoneAt: now})
	if err != nil || !matched || !changed || m.Parts[0].State != otp.StateDelivered || m.Number != msg.Number {
		t.Fatalf("receipt on a JSON message: %+v matched %v changed %v err %v", m, matched, changed, err)
	}
	err = db.bdb.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixMessage + "r1"))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if v[0] != codecV1 {
				t.Errorf("rewritten message is %q, want binary", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}
