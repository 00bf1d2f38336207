package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

var _ Store = (*Bolt)(nil)

// Accept implements Store.Accept.
func (s *Bolt) Accept(ctx context.Context, env Envelope, raw []byte) (string, error) {
	if err := s.checkSpace(int64(len(raw))); err != nil {
		return "", fmt.Errorf("store: accept: %w", err)
	}
	if len(raw) <= s.opts.InlineMax {
		return s.accept(ctx, env, raw, nil)
	}
	return s.accept(ctx, env, nil, bytes.NewReader(raw))
}

// AcceptReader implements Store.AcceptReader.
func (s *Bolt) AcceptReader(ctx context.Context, env Envelope, r io.Reader) (string, error) {
	if err := s.checkSpace(0); err != nil {
		return "", fmt.Errorf("store: accept: %w", err)
	}
	if s.opts.InlineMax < 0 {
		return s.accept(ctx, env, nil, r)
	}
	head, err := io.ReadAll(io.LimitReader(r, int64(s.opts.InlineMax)+1))
	if err != nil {
		return "", fmt.Errorf("store: accept: read body: %w", err)
	}
	if len(head) <= s.opts.InlineMax {
		return s.accept(ctx, env, head, nil)
	}
	return s.accept(ctx, env, nil, io.MultiReader(bytes.NewReader(head), r))
}

// accept stores a message whose body is either inline (r == nil: the body
// goes into the database in the same transaction as the record) or read from
// r into a spool file. A spool file is written to a temporary name, fsynced
// and renamed to spool/<id> before the record is committed, and the spool
// directory is fsynced by the same group commit, so the record is the commit
// marker: a file without one is an orphan that Open removes.
func (s *Bolt) accept(ctx context.Context, env Envelope, inline []byte, r io.Reader) (string, error) {
	if len(env.Recipients) == 0 {
		return "", fmt.Errorf("store: accept: %w: no recipients", ErrInvalid)
	}
	if len(env.Recipients) > 0xffff {
		return "", fmt.Errorf("store: accept: %w: %d recipients", ErrInvalid, len(env.Recipients))
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	now := s.opts.Now()
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = now
	}
	id := s.ids.next(now)
	h := sha256.New()
	var size int64
	spooled := r != nil
	if spooled {
		n, err := writeFileSync(s.spoolDir, id, io.TeeReader(r, h))
		if err != nil {
			return "", wrapErr("accept: write body", err)
		}
		size = n
	} else {
		h.Write(inline)
		size = int64(len(inline))
	}
	m := &Message{ID: id, Envelope: env, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Created: now}
	mjs, err := json.Marshal(m)
	var val []byte // inline body stored after a 0 byte, so never empty
	if !spooled {
		val = append(append(make([]byte, 0, 1+len(inline)), 0), inline...)
	}
	if err == nil {
		err = s.update(ctx, spooled, func(tx *bolt.Tx) error {
			if err := tx.Bucket(bMsg).Put([]byte(id), mjs); err != nil {
				return err
			}
			if !spooled {
				if err := tx.Bucket(bBody).Put([]byte(id), val); err != nil {
					return err
				}
			}
			for i, rc := range env.Recipients {
				r := Rcpt{Index: i, Addr: rc.Addr, Status: Queued, NextAttempt: now, Updated: now}
				if err := putRcpt(tx, id, nil, &r); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		if spooled {
			// Not committed: the file is an orphan now, remove it (Open would).
			os.Remove(filepath.Join(s.spoolDir, id))
		}
		return "", fmt.Errorf("store: accept %s: %w", id, err)
	}
	s.log.Debug("store: accepted", slog.String("queue_id", id), slog.Int64("size", size),
		slog.Int("rcpts", len(env.Recipients)), slog.Bool("spooled", spooled))
	return id, nil
}

// Get implements Store.Get.
func (s *Bolt) Get(ctx context.Context, id string) (*Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var m *Message
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = loadMessage(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return m, nil
}

// List implements Store.List.
func (s *Bolt) List(ctx context.Context, opts ListOptions) ([]*Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = 1000
	}
	var out []*Message
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bMsg).Cursor()
		var k []byte
		if opts.After != "" {
			k, _ = c.Seek([]byte(opts.After))
			if string(k) == opts.After {
				k, _ = c.Next()
			}
		} else {
			k, _ = c.First()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			m, err := loadMessage(tx, string(k))
			if err != nil {
				return err
			}
			if opts.Kind != "" && m.Envelope.Kind != opts.Kind {
				continue
			}
			if opts.Status != 0 && !hasStatus(m, opts.Status) {
				continue
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}

func hasStatus(m *Message, st Status) bool {
	for _, r := range m.Rcpts {
		if r.Status == st {
			return true
		}
	}
	return false
}

type bodyFile struct {
	*os.File
	size int64
}

func (b bodyFile) Size() int64 { return b.size }

type bodyBytes struct{ *bytes.Reader }

func (bodyBytes) Close() error { return nil }

// Body implements Store.Body. A spooled body is an open file; Purge may
// unlink it meanwhile, which does not disturb an open reader. An inline body
// is a copy in memory.
func (s *Bolt) Body(ctx context.Context, id string) (Body, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, fmt.Errorf("store: body %q: %w", id, ErrNotFound)
	}
	var size int64
	var inline []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bMsg).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		size = m.Size
		if b := tx.Bucket(bBody).Get([]byte(id)); len(b) > 0 {
			inline = bytes.Clone(b[1:]) // after the 0 byte; never nil
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: body %s: %w", id, err)
	}
	if inline != nil {
		return bodyBytes{bytes.NewReader(inline)}, nil
	}
	f, err := os.Open(filepath.Join(s.spoolDir, id))
	if err != nil {
		return nil, wrapErr("body "+id, err)
	}
	return bodyFile{f, size}, nil
}

// Claim implements Store.Claim.
func (s *Bolt) Claim(ctx context.Context, now time.Time, limit int) ([]Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	var jobs []Job
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		jobs = jobs[:0] // fn may run again: start afresh
		max := dueKey(now, "", 0)[:8]
		var refs []RcptRef
		c := tx.Bucket(bDue).Cursor()
		for k, _ := c.First(); k != nil && len(refs) < limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], max) > 0 {
				break
			}
			refs = append(refs, RcptRef{string(k[8 : 8+idLen]), int(binary.BigEndian.Uint16(k[8+idLen:]))})
		}
		byID := map[string]int{}
		var jobIDs []string
		for _, ref := range refs {
			err := updateRcpt(tx, ref, func(r *Rcpt) error {
				if !r.Status.Waiting() {
					return fmt.Errorf("%w: due index names %s in state %s", ErrInvalid, ref, r.Status)
				}
				r.Status = Delivering
				r.Attempts++
				r.LastAttempt = now
				r.NextAttempt = now.Add(s.opts.Backoff(r.Attempts))
				r.Updated = now
				return nil
			})
			if err != nil {
				return err
			}
			j, ok := byID[ref.ID]
			if !ok {
				j = len(jobs)
				byID[ref.ID] = j
				jobs = append(jobs, Job{})
				jobIDs = append(jobIDs, ref.ID)
			}
			jobs[j].Rcpts = append(jobs[j].Rcpts, ref.Index)
		}
		for i := range jobs {
			m, err := loadMessage(tx, jobIDs[i])
			if err != nil {
				return err
			}
			jobs[i].Message = m
			sort.Ints(jobs[i].Rcpts)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	return jobs, nil
}

// NextDue implements Store.NextDue.
func (s *Bolt) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, false, err
	}
	var k []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		first, _ := tx.Bucket(bDue).Cursor().First()
		k = bytes.Clone(first)
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("store: next due: %w", err)
	}
	if len(k) < 8 {
		return time.Time{}, false, nil
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))), true, nil
}

// RecordAttempt implements Store.RecordAttempt.
func (s *Bolt) RecordAttempt(ctx context.Context, ref RcptRef, a Attempt) error {
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		return updateRcpt(tx, ref, func(r *Rcpt) error {
			if r.Status != Delivering {
				return fmt.Errorf("%w: recipient is %s, not claimed", ErrInvalid, r.Status)
			}
			r.Attempt = a
			r.Updated = s.opts.Now()
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: record attempt %s: %w", ref, err)
	}
	return nil
}

// MarkDelivered implements Store.MarkDelivered.
func (s *Bolt) MarkDelivered(ctx context.Context, ref RcptRef, peerID string) error {
	return s.finish(ctx, "mark delivered", ref, func(r *Rcpt) error {
		if r.Status != Delivering {
			return fmt.Errorf("%w: recipient is %s, not claimed", ErrInvalid, r.Status)
		}
		r.Status = Delivered
		r.PeerID = peerID
		r.LastError = ""
		return nil
	})
}

// MarkDeferred implements Store.MarkDeferred.
func (s *Bolt) MarkDeferred(ctx context.Context, ref RcptRef, next time.Time, reason string) error {
	return s.deferFrom(ctx, "mark deferred", ref, Delivering, next, reason)
}

// deferFrom makes a recipient in state from Deferred, due at next.
func (s *Bolt) deferFrom(ctx context.Context, what string, ref RcptRef, from Status, next time.Time, reason string) error {
	return s.finish(ctx, what, ref, func(r *Rcpt) error {
		if r.Status != from {
			return fmt.Errorf("%w: recipient is %s, not %s", ErrInvalid, r.Status, from)
		}
		r.Status = Deferred
		r.NextAttempt = next
		r.LastError = reason
		return nil
	})
}

// MarkFailed implements Store.MarkFailed. Besides ending a claim, it may
// fail a waiting recipient (for example one that expired in the queue).
func (s *Bolt) MarkFailed(ctx context.Context, ref RcptRef, reason string) error {
	return s.finish(ctx, "mark failed", ref, func(r *Rcpt) error {
		if r.Status.Final() {
			return fmt.Errorf("%w: recipient is already %s", ErrInvalid, r.Status)
		}
		r.Status = Failed
		r.LastError = reason
		return nil
	})
}

// Requeue implements Store.Requeue.
func (s *Bolt) Requeue(ctx context.Context, ref RcptRef, next time.Time, reason string) error {
	return s.deferFrom(ctx, "requeue", ref, Delivered, next, reason)
}

// RecordReport implements Store.RecordReport.
func (s *Bolt) RecordReport(ctx context.Context, ref RcptRef, status string) error {
	return s.finish(ctx, "record report", ref, func(r *Rcpt) error {
		r.Report = status
		return nil
	})
}

// finish applies fn to one recipient and, if that makes it final, queues a
// delivery record in the same transaction.
func (s *Bolt) finish(ctx context.Context, what string, ref RcptRef, fn func(*Rcpt) error) error {
	now := s.opts.Now()
	op := &writeOp{done: make(chan error, 1), records: true}
	op.fn = func(tx *bolt.Tx) error {
		var final *Rcpt
		err := updateRcpt(tx, ref, func(r *Rcpt) error {
			was := r.Status
			if err := fn(r); err != nil {
				return err
			}
			r.Updated = now
			if r.Status.Final() && r.Status != was {
				c := *r
				final = &c
			}
			return nil
		})
		if err != nil || final == nil {
			return err
		}
		return queueRecord(tx, ref.ID, final, now)
	}
	if err := s.updateOp(ctx, op); err != nil {
		return fmt.Errorf("store: %s %s: %w", what, ref, err)
	}
	return nil
}

// Retry implements Store.Retry.
func (s *Bolt) Retry(ctx context.Context, id string) error {
	now := s.opts.Now()
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		return forEachRcpt(tx, id, func(r *Rcpt) error {
			if r.Status.Waiting() || r.Status == Failed {
				r.Status = Queued
				r.NextAttempt = now
				r.Updated = now
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("store: retry %s: %w", id, err)
	}
	return nil
}

// Drop implements Store.Drop. A recipient being delivered is dropped too; the
// worker's later Mark call then fails with ErrInvalid.
func (s *Bolt) Drop(ctx context.Context, id string) error {
	now := s.opts.Now()
	op := &writeOp{done: make(chan error, 1), records: true}
	op.fn = func(tx *bolt.Tx) error {
		var dropped []Rcpt
		err := forEachRcpt(tx, id, func(r *Rcpt) error {
			if !r.Status.Final() {
				r.Status = Dropped
				r.Updated = now
				dropped = append(dropped, *r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range dropped {
			if err := queueRecord(tx, id, &dropped[i], now); err != nil {
				return err
			}
		}
		return nil
	}
	if err := s.updateOp(ctx, op); err != nil {
		return fmt.Errorf("store: drop %s: %w", id, err)
	}
	return nil
}

// Lookup implements Store.Lookup.
func (s *Bolt) Lookup(ctx context.Context, kind RefKind, value string) ([]RcptRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if kind.prefix() == "" || value == "" {
		return nil, fmt.Errorf("store: lookup: %w: kind %v value %q", ErrInvalid, kind, value)
	}
	prefix := append([]byte(kind.prefix()+value), 0)
	var refs []RcptRef
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bRef).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			if len(rest) != idLen+2 {
				continue
			}
			refs = append(refs, RcptRef{string(rest[:idLen]), int(binary.BigEndian.Uint16(rest[idLen:]))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: lookup %v %q: %w", kind, value, err)
	}
	return refs, nil
}

// ---- bbolt helpers; all run inside a transaction ----

func rcptKey(id string, idx int) []byte {
	k := make([]byte, idLen+2)
	copy(k, id)
	binary.BigEndian.PutUint16(k[idLen:], uint16(idx))
	return k
}

// dueKey orders by next attempt time; times before 1970 sort as 1970.
func dueKey(t time.Time, id string, idx int) []byte {
	k := make([]byte, 8+idLen+2)
	ns := t.UnixNano()
	if ns < 0 || t.IsZero() {
		ns = 0
	}
	binary.BigEndian.PutUint64(k, uint64(ns))
	copy(k[8:], id)
	binary.BigEndian.PutUint16(k[8+idLen:], uint16(idx))
	return k
}

func refKey(kind RefKind, value, id string, idx int) []byte {
	k := make([]byte, 0, 2+len(value)+1+idLen+2)
	k = append(k, kind.prefix()...)
	k = append(k, value...)
	k = append(k, 0)
	k = append(k, id...)
	return binary.BigEndian.AppendUint16(k, uint16(idx))
}

// putRcpt stores r for message id and keeps the due and ref indexes in step
// with the change from old (nil for a new recipient).
func putRcpt(tx *bolt.Tx, id string, old, r *Rcpt) error {
	due := tx.Bucket(bDue)
	if old != nil && old.Status.Waiting() {
		if err := due.Delete(dueKey(old.NextAttempt, id, old.Index)); err != nil {
			return err
		}
	}
	if r.Status.Waiting() {
		if err := due.Put(dueKey(r.NextAttempt, id, r.Index), nil); err != nil {
			return err
		}
	}
	ref := tx.Bucket(bRef)
	for _, x := range []struct {
		kind     RefKind
		val, was string
	}{
		{RefTransactionID, r.TransactionID, oldField(old, func(o *Rcpt) string { return o.TransactionID })},
		{RefMessageID, r.MessageID, oldField(old, func(o *Rcpt) string { return o.MessageID })},
		{RefPeerID, r.PeerID, oldField(old, func(o *Rcpt) string { return o.PeerID })},
	} {
		// Earlier identifiers stay indexed: a late answer to an earlier
		// attempt still finds the recipient.
		if x.val != "" && x.val != x.was {
			if err := ref.Put(refKey(x.kind, x.val, id, r.Index), nil); err != nil {
				return err
			}
		}
	}
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bRcpt).Put(rcptKey(id, r.Index), v)
}

func oldField(o *Rcpt, f func(*Rcpt) string) string {
	if o == nil {
		return ""
	}
	return f(o)
}

// updateRcpt loads one recipient, applies fn and stores it.
func updateRcpt(tx *bolt.Tx, ref RcptRef, fn func(*Rcpt) error) error {
	if len(ref.ID) != idLen || ref.Index < 0 || ref.Index > 0xffff {
		return ErrNotFound
	}
	v := tx.Bucket(bRcpt).Get(rcptKey(ref.ID, ref.Index))
	if v == nil {
		return ErrNotFound
	}
	var old Rcpt
	if err := json.Unmarshal(v, &old); err != nil {
		return err
	}
	r := old
	if err := fn(&r); err != nil {
		return err
	}
	return putRcpt(tx, ref.ID, &old, &r)
}

// forEachRcpt applies fn to every recipient of message id and stores them.
func forEachRcpt(tx *bolt.Tx, id string, fn func(*Rcpt) error) error {
	m, err := loadMessage(tx, id)
	if err != nil {
		return err
	}
	for i := range m.Rcpts {
		old := m.Rcpts[i]
		r := old
		if err := fn(&r); err != nil {
			return err
		}
		if err := putRcpt(tx, id, &old, &r); err != nil {
			return err
		}
	}
	return nil
}

func loadMessage(tx *bolt.Tx, id string) (*Message, error) {
	v := tx.Bucket(bMsg).Get([]byte(id))
	if v == nil || len(id) != idLen {
		return nil, ErrNotFound
	}
	m := new(Message)
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("decode message %s: %w", id, err)
	}
	c := tx.Bucket(bRcpt).Cursor()
	prefix := []byte(id)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r Rcpt
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode recipient %x: %w", k, err)
		}
		m.Rcpts = append(m.Rcpts, r)
	}
	return m, nil
}

// queueRecord adds a delivery record for r to the records queue; the
// recorder appends it to records.jsonl after the commit.
func queueRecord(tx *bolt.Tx, id string, r *Rcpt, now time.Time) error {
	v := tx.Bucket(bMsg).Get([]byte(id))
	if v == nil {
		return ErrNotFound
	}
	var m Message
	if err := json.Unmarshal(v, &m); err != nil {
		return err
	}
	size := r.Size
	if size == 0 {
		size = m.Size
	}
	rec := Record{
		Time: now, QueueID: id, Rcpt: r.Index, Kind: m.Envelope.Kind,
		From: m.Envelope.From, To: r.Addr, Route: r.Route, Size: size,
		Status: r.Status, PeerID: r.PeerID, Attempts: r.Attempts, Error: r.LastError,
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b := tx.Bucket(bRecQ)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), js)
}
