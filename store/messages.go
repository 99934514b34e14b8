package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/otpgate/otpgate/otp"
)

// Messages and receipts: a message per send-otp request under m/<request
// id>, its carrier ids indexed under x/, receipts that came before their
// message kept under p/, and a marker under v/<request id> once its code
// verified (Message merges it; messages saved before markers existed may
// carry Verified themselves).

// SaveSend implements otp.Store. In one transaction it loads the record
// under key (a new record with only Key set and found false when there is
// no live one), lets fn update it and writes it (deleting it when its
// KeepUntil is zero or past), applies to msg's parts any receipt that
// arrived before, and writes msg with its id index for MessageTTL. It
// returns msg as stored.
func (db *DB) SaveSend(ctx context.Context, key string, msg otp.Message, fn func(rec *otp.Record, found bool)) (otp.Message, error) {
	if msg.RequestID == "" {
		return otp.Message{}, errors.New("store: save send: empty request id")
	}
	var (
		stored  otp.Message
		applied []string // pending keys applied (and deleted) by the last run
	)
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		rec, found, err := db.getRecord(txn, key)
		if err != nil {
			return err
		}
		if !found {
			rec = otp.Record{}
		}
		rec.Key = key
		if fn != nil {
			fn(&rec, found)
		}
		rec.Key = key
		if err := db.putRecord(txn, rec); err != nil {
			return err
		}
		m := msg
		m.Parts = append([]otp.Part(nil), msg.Parts...)
		for i := range m.Parts {
			if err := db.applyPending(txn, m.Carrier, &m.Parts[i], &applied); err != nil {
				return err
			}
		}
		prev, _, _ := msg.Summary()
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		expires := unixCeil(db.now().Add(db.messageTTL))
		if err := setValue(txn, prefixMessage+m.RequestID, m, expires); err != nil {
			return err
		}
		stored = m
		return indexMessage(txn, m, expires)
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: save send: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return stored, nil
}

// indexEntry locates a message part.
type indexEntry struct {
	RequestID string `json:"r"`
	Part      int    `json:"i"`
}

// indexMessage writes the x/ entries of m's parts, under their ids'
// canonical forms. An id's alternate forms are not indexed: ApplyReceipt
// looks a receipt up under its own alternate forms instead, one more read
// for the rare receipt that needs it against one more entry written and
// compacted for every send.
func indexMessage(txn *badger.Txn, m otp.Message, expires uint64) error {
	for i, p := range m.Parts {
		canonical := otp.CanonicalID(p.MessageID)
		if canonical == "" {
			continue
		}
		// A carrier that reuses an id (its counter wrapped) sends the next
		// receipt for the newest message: the exact index points there.
		ie := indexEntry{RequestID: m.RequestID, Part: i}
		if err := setValue(txn, prefixExact+m.Carrier+"/"+canonical, ie, expires); err != nil {
			return err
		}
	}
	return nil
}

// pendingReceipt is a receipt kept until its message is saved.
type pendingReceipt struct {
	Carrier   string    `json:"c,omitempty"`
	MessageID string    `json:"m"`
	State     otp.State `json:"s"`
	Error     string    `json:"e,omitempty"`
	DoneAt    time.Time `json:"t,omitzero"`
	Exact     bool      `json:"x,omitempty"` // otp.Receipt.Exact: only its exact message takes it
}

// applyPending applies to p the receipts waiting under its id's canonical
// and alternate forms, deletes them and appends their keys to applied (for
// the filter to forget once the transaction has committed). A receipt
// known to carry an exact id (otp.Receipt.Exact) is taken under the
// canonical form only: under an alternate form it is another message's,
// whose SaveSend is coming.
func (db *DB) applyPending(txn *badger.Txn, carrier string, p *otp.Part, applied *[]string) error {
	forms, n := otp.IDFormList(p.MessageID)
	for i, id := range forms[:n] {
		k := prefixPending + carrier + "/" + id
		if !db.pending.mayHave(k) {
			continue // the common case: no receipt came before this message
		}
		var pr pendingReceipt
		ok, err := getValue(txn, k, &pr)
		if err != nil {
			return err
		}
		if !ok {
			db.pending.forget(k)
			continue
		}
		if i > 0 && pr.Exact {
			continue
		}
		p.Apply(otp.Receipt{Carrier: carrier, MessageID: pr.MessageID, State: pr.State, Error: pr.Error, DoneAt: pr.DoneAt})
		if err := txn.Delete([]byte(k)); err != nil {
			return err
		}
		*applied = append(*applied, k)
	}
	return nil
}

// ApplyReceipt implements otp.ReceiptStore. The receipt's id is looked up
// by its canonical form (otp.IDForms) among the exact ids of r.Carrier's
// messages, then by each of its alternate forms, in IDForms's order (a
// part found that way that already has a final state is not taken as the
// match); a receipt marked Exact only by its canonical form. A receipt
// that matches nothing is kept for PendingReceiptTTL so that SaveSend
// applies it; a receipt with an empty id matches nothing and is not kept.
func (db *DB) ApplyReceipt(ctx context.Context, r otp.Receipt) (msg otp.Message, matched, changed bool, err error) {
	forms, n := otp.IDFormList(r.MessageID)
	if n == 0 {
		return otp.Message{}, false, false, nil
	}
	if r.Exact {
		n = 1 // its own message is being saved: no guess
	}
	err = db.update(ctx, func(txn *badger.Txn) error {
		msg, matched, changed = otp.Message{}, false, false
		for i, id := range forms[:n] {
			alternate := i > 0
			var ie indexEntry
			ok, err := getValue(txn, prefixExact+r.Carrier+"/"+id, &ie)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			mk := prefixMessage + ie.RequestID
			var m otp.Message
			item, err := txn.Get([]byte(mk))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error { return unmarshalValue(v, &m) }); err != nil {
				return fmt.Errorf("message %q: %w", ie.RequestID, err)
			}
			if ie.Part < 0 || ie.Part >= len(m.Parts) {
				continue
			}
			if m.Carrier != r.Carrier {
				// A receipt of an attempt that a retry through another
				// carrier replaced (its index entries stay): that attempt
				// is in Earlier with its final state, and the current one
				// is not this carrier's to change.
				msg, matched = m, true
				return nil
			}
			// A match through an alternate form is only a guess: the
			// receipt may belong to a message whose exact id it is and
			// whose SaveSend has not committed yet. Once the guessed part
			// has its final state, a receipt through the alternate form is
			// that other message's (whatever its state: two DELIVRD
			// receipts look alike): keep it pending for its SaveSend.
			if p := m.Parts[ie.Part]; alternate && p.State.Final() {
				continue
			}
			msg, matched = m, true
			prev, _, _ := msg.Summary()
			if changed = msg.Parts[ie.Part].Apply(r); changed {
				if err := db.enqueueCallback(txn, prev, msg); err != nil {
					return err
				}
				return setValue(txn, mk, msg, item.ExpiresAt())
			}
			return nil
		}
		return db.keepPending(txn, r, forms[0])
	})
	if err != nil {
		return otp.Message{}, false, false, fmt.Errorf("store: apply receipt: %w", err)
	}
	return msg, matched, changed, nil
}

// keepPending stores r until its message is saved. A final state already
// waiting is never replaced, as on a message: the first final receipt
// decides (an Exact r only marks it Exact). When the carrier then holds
// more than pendingMax receipts, the oldest are deleted.
func (db *DB) keepPending(txn *badger.Txn, r otp.Receipt, canonical string) error {
	k := prefixPending + r.Carrier + "/" + canonical
	var old pendingReceipt
	oldExpires, ok, err := getValueExpiry(txn, k, &old)
	if err != nil {
		return err
	}
	if ok && (old.State.Final() || old.State == r.State) {
		if !r.Exact || old.Exact {
			return nil
		}
		// The same id again, now known to be exact: from here on only the
		// message of that exact id takes what waits.
		old.Exact = true
		return setValue(txn, k, old, oldExpires)
	}
	pr := pendingReceipt{Carrier: r.Carrier, MessageID: r.MessageID, State: r.State, Error: r.Error, DoneAt: r.DoneAt, Exact: r.Exact}
	expires := db.now().Add(db.pendingTTL)
	for _, ek := range db.pending.add(r.Carrier, k, expires, db.pendingMax) {
		// Forgotten by the filter whether or not this transaction commits:
		// the receipt is dropped either way (badger expires it), and
		// counted once.
		if err := txn.Delete([]byte(ek)); err != nil {
			return err
		}
		db.onDropped(r.Carrier)
	}
	return setValue(txn, k, pr, unixCeil(expires))
}

// Message implements otp.ReceiptStore: it returns the message of requestID,
// or otp.ErrRequestNotFound.
func (db *DB) Message(ctx context.Context, requestID string) (otp.Message, error) {
	var m otp.Message
	var ok bool
	err := db.view(func(txn *badger.Txn) error {
		var err error
		ok, err = getValue(txn, prefixMessage+requestID, &m)
		if err != nil || !ok || m.Verified {
			return err
		}
		_, err = txn.Get([]byte(prefixVerified + requestID))
		switch {
		case err == nil:
			m.Verified = true
		case errors.Is(err, badger.ErrKeyNotFound):
			err = nil
		}
		return err
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: message: %w", err)
	}
	if !ok {
		return otp.Message{}, fmt.Errorf("store: message: %w", otp.ErrRequestNotFound)
	}
	return m, nil
}

// RecordLateAck implements otp.ReceiptStore: it gives the part a.Part of
// the message of a.RequestID the carrier's message id, indexes it (so that
// its receipt matches) and applies a receipt that came before. A message
// that went out through another carrier (the late ack is of a copy sent
// before a failover), or whose part already has an id, is left unchanged.
// It returns the message as stored and whether its delivery state changed,
// or otp.ErrRequestNotFound while the message is not saved yet.
func (db *DB) RecordLateAck(ctx context.Context, a otp.Ack) (otp.Message, bool, error) {
	if a.Part < 0 || a.Part >= a.Parts || a.Parts > 255 || a.MessageID == "" {
		return otp.Message{}, false, fmt.Errorf("store: late ack: bad part %d/%d", a.Part, a.Parts)
	}
	var (
		stored  otp.Message
		changed bool
		applied []string // pending keys applied (and deleted) by the last run
	)
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		k := prefixMessage + a.RequestID
		m, expires, err := getMessage(txn, k)
		if err != nil {
			return err
		}
		stored, changed = m, false
		if m.Carrier == "" && len(m.Parts) == 0 {
			m.Carrier = a.Carrier
			m.Parts = make([]otp.Part, a.Parts)
			for i := range m.Parts {
				m.Parts[i].State = otp.StateAccepted
			}
		}
		if m.Carrier != a.Carrier || len(m.Parts) != a.Parts || m.Parts[a.Part].MessageID != "" {
			return nil
		}
		m.Parts[a.Part].MessageID = a.MessageID
		prev, _, _ := m.Summary()
		if err := db.applyPending(txn, m.Carrier, &m.Parts[a.Part], &applied); err != nil {
			return err
		}
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		if err := setValue(txn, k, m, expires); err != nil {
			return err
		}
		one := m
		one.Parts = make([]otp.Part, len(m.Parts))
		one.Parts[a.Part] = m.Parts[a.Part]
		now, _, _ := m.Summary()
		stored, changed = m, now != prev
		return indexMessage(txn, one, expires)
	})
	if err != nil {
		return otp.Message{}, false, fmt.Errorf("store: late ack: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return stored, changed, nil
}

// RecordRetry implements otp.ReceiptStore.
func (db *DB) RecordRetry(ctx context.Context, requestID string, a otp.Attempt) (otp.Message, error) {
	var (
		stored  otp.Message
		applied []string // pending keys applied (and deleted) by the last run
	)
	err := db.update(ctx, func(txn *badger.Txn) error {
		applied = applied[:0]
		k := prefixMessage + requestID
		m, expires, err := getMessage(txn, k)
		if err != nil {
			return err
		}
		m.Earlier = append(m.Earlier, otp.Attempt{Carrier: m.Carrier, Parts: m.Parts, SubmittedAt: m.SubmittedAt})
		m.Carrier, m.SubmittedAt = a.Carrier, a.SubmittedAt
		m.Parts = append([]otp.Part(nil), a.Parts...)
		prev, _, _ := m.Summary()
		for i := range m.Parts {
			if err := db.applyPending(txn, m.Carrier, &m.Parts[i], &applied); err != nil {
				return err
			}
		}
		if err := db.enqueueCallback(txn, prev, m); err != nil {
			return err
		}
		if err := setValue(txn, k, m, expires); err != nil {
			return err
		}
		stored = m
		return indexMessage(txn, m, expires)
	})
	if err != nil {
		return otp.Message{}, fmt.Errorf("store: record retry: %w", err)
	}
	for _, k := range applied { // committed: gone from disk
		db.pending.forget(k)
	}
	return stored, nil
}

// getMessage reads the message under key k (prefixMessage and its request
// id) and its expiry, or returns otp.ErrRequestNotFound.
func getMessage(txn *badger.Txn, k string) (m otp.Message, expires uint64, err error) {
	item, err := txn.Get([]byte(k))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return m, 0, otp.ErrRequestNotFound
	}
	if err != nil {
		return m, 0, err
	}
	if err := item.Value(func(v []byte) error { return unmarshalValue(v, &m) }); err != nil {
		return m, 0, fmt.Errorf("message %q: %w", maskKey(k), err)
	}
	return m, item.ExpiresAt(), nil
}

// MarkVerified implements otp.ReceiptStore. It writes a marker under
// v/<request id> that Message merges in, and does not read the message: a
// read-modify-write of m/ made the single writer read a table block for
// every verify, since by then the message has usually left the memtables.
// The marker lives MessageTTL from now, at least as long as the message it
// marks. An unknown request id gets a marker all the same, which nothing
// reads: Message of it stays ErrRequestNotFound.
func (db *DB) MarkVerified(ctx context.Context, requestID string) error {
	if requestID == "" {
		return fmt.Errorf("store: mark verified: %w", otp.ErrRequestNotFound)
	}
	expires := unixCeil(db.now().Add(db.messageTTL))
	err := db.update(ctx, func(txn *badger.Txn) error {
		e := badger.NewEntry([]byte(prefixVerified+requestID), nil)
		e.ExpiresAt = expires
		return txn.SetEntry(e)
	})
	if err != nil {
		return fmt.Errorf("store: mark verified: %w", err)
	}
	return nil
}
