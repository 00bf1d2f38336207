package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Compile-time checks that Bolt implements the contracts.
var (
	_ Queue        = (*Bolt)(nil)
	_ Admin        = (*Bolt)(nil)
	_ KV           = (*Bolt)(nil)
	_ SpaceChecker = (*Bolt)(nil)
)

// lener is a reader that knows how many bytes remain (*bytes.Reader,
// *bytes.Buffer, *strings.Reader).
type lener interface{ Len() int }

// Accept implements Queue.Accept. A body of at most Options.InlineMax
// bytes is read straight into the value stored in the database (one copy);
// a larger one is streamed into a spool file. The free-space reserve
// (Options.MinFree) is checked against the body's actual size: up front
// when r tells its length (*bytes.Reader, say), and in any case once the
// size is known, before the commit: after reading an inline body, and while
// spooling a large one, which stops as soon as the body would eat into the
// reserve.
func (s *Bolt) Accept(ctx context.Context, env Envelope, r io.Reader) (string, error) {
	known := -1
	if l, ok := r.(lener); ok {
		known = l.Len()
	}
	room, err := s.room()
	if err != nil {
		return "", fmt.Errorf("store: accept: %w", err)
	}
	if size := int64(max(known, 0)); size > room {
		return "", fmt.Errorf("store: accept: %w", s.noRoom(room, size))
	}
	if s.opts.InlineMax < 0 || known > s.opts.InlineMax {
		return s.accept(ctx, env, nil, r, room)
	}
	// val is the stored value: a 0 byte, then the body.
	var val []byte
	if known >= 0 {
		val = make([]byte, 1+known, 2+known)
		if _, err := io.ReadFull(r, val[1:]); err != nil {
			return "", fmt.Errorf("store: accept: read body: %w", err)
		}
	} else {
		val = make([]byte, 1, 1+min(s.opts.InlineMax+1, 32<<10))
	}
	val, err = readUpTo(val, r, s.opts.InlineMax+2)
	if err != nil {
		return "", fmt.Errorf("store: accept: read body: %w", err)
	}
	if len(val) <= s.opts.InlineMax+1 {
		return s.accept(ctx, env, val, nil, room)
	}
	return s.accept(ctx, env, nil, io.MultiReader(bytes.NewReader(val[1:]), r), room)
}

// readUpTo appends from r to buf until io.EOF or until buf holds limit
// bytes.
func readUpTo(buf []byte, r io.Reader, limit int) ([]byte, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// accept stores a message whose body is either inline (r == nil: val, a 0
// byte followed by the body, goes into the database in the same transaction
// as the record) or read from r into a spool file. A spool file is written
// to a temporary name, fsynced and renamed to spool/<id> before the record
// is committed, and the spool directory is fsynced by the same group
// commit, so the record is the commit marker: a file without one is an
// orphan that Open removes. room is how many bytes the body may take
// before free space falls under the reserve (see Bolt.room); a larger body
// is refused with ErrDiskFull and nothing is kept.
func (s *Bolt) accept(ctx context.Context, env Envelope, val []byte, r io.Reader, room int64) (string, error) {
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
		n, err := writeFileSync(s.spoolDir, id, io.TeeReader(&roomReader{s: s, r: r, room: room}, h))
		if err != nil {
			return "", wrapErr("accept: write body", err)
		}
		size = n
		// The file now takes its space: check the reserve again with what
		// is actually free, which other accepts may have used meanwhile.
		if err := s.checkSpace(0); err != nil {
			os.Remove(filepath.Join(s.spoolDir, id))
			return "", fmt.Errorf("store: accept %s: %w", id, err)
		}
	} else {
		size = int64(len(val) - 1)
		if size > room {
			return "", fmt.Errorf("store: accept: %w", s.noRoom(room, size))
		}
		h.Write(val[1:])
	}
	m := &Message{ID: id, Envelope: env, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Created: now}
	mjs, err := json.Marshal(m)
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

// Get implements Queue.Get.
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

// List implements Admin.List.
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

// bodyBytes is an inline body: a copy made for this Body, which Bytes
// hands over without another (see ReadBody).
type bodyBytes struct {
	*bytes.Reader
	b []byte
}

func (bodyBytes) Close() error { return nil }

// Bytes returns the whole body; the caller owns it.
func (b bodyBytes) Bytes() []byte { return b.b }

// Body implements Queue.Body. A spooled body is an open file; Purge may
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
		return bodyBytes{bytes.NewReader(inline), inline}, nil
	}
	f, err := os.Open(filepath.Join(s.spoolDir, id))
	if err != nil {
		return nil, wrapErr("body "+id, err)
	}
	return bodyFile{f, size}, nil
}

// Claim implements Queue.Claim. The due index holds waiting recipients by
// next attempt and Delivering ones by the end of their lease, so one cursor
// finds both, oldest first. For each message it reaches, Claim takes every
// recipient of that message due at req.Now, read from the message's own
// recipients (the rcpt bucket), not from neighbours in the due index: after
// a retry with jittered backoff, the recipients of one message are due at
// slightly different times and need not sit side by side there.
func (s *Bolt) Claim(ctx context.Context, req ClaimRequest) ([]Job, error) {
	if req.Limit <= 0 {
		return nil, nil
	}
	if req.Owner == "" || req.Lease <= 0 {
		return nil, fmt.Errorf("store: claim: %w: owner %q, lease %v", ErrInvalid, req.Owner, req.Lease)
	}
	now := req.Now
	var jobs []Job
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		jobs = jobs[:0] // fn may run again: start afresh
		max := dueKey(now, "", 0)[:8]
		// Collect first, then write: bbolt cursors must not be mutated
		// while iterating.
		type claimed struct {
			id    string
			rcpts []Rcpt // the due recipients, as read
		}
		var msgs []claimed
		taken := map[string]bool{}
		n := 0
		c := tx.Bucket(bDue).Cursor()
		for k, _ := c.First(); k != nil && n < req.Limit; k, _ = c.Next() {
			if bytes.Compare(k[:8], max) > 0 {
				break
			}
			ref := RcptRef{string(k[8 : 8+idLen]), int(binary.BigEndian.Uint16(k[8+idLen:]))}
			if taken[ref.ID] {
				continue // taken with its message
			}
			taken[ref.ID] = true
			due, err := dueRcpts(tx, ref.ID, now)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(due, func(r Rcpt) bool { return r.Index == ref.Index }) {
				return fmt.Errorf("%w: due index names %s, which is not due", ErrInvalid, ref)
			}
			msgs = append(msgs, claimed{ref.ID, due})
			n += len(due)
		}
		for _, m := range msgs {
			var idx []int
			for _, old := range m.rcpts {
				r := old
				r.Status = Delivering
				r.Owner = req.Owner
				r.RequeueAt, r.RequeueReason = time.Time{}, ""
				r.Attempts++
				r.LastAttempt = now
				r.NextAttempt = now.Add(req.Lease)
				r.Updated = now
				if err := putRcpt(tx, m.id, &old, &r); err != nil {
					return err
				}
				idx = append(idx, r.Index)
			}
			msg, err := loadMessage(tx, m.id)
			if err != nil {
				return err
			}
			jobs = append(jobs, Job{Message: msg, Rcpts: idx}) // in index order, as read
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim: %w", err)
	}
	return jobs, nil
}

// dueRcpts returns the recipients of message id that are due at now, in
// index order: waiting ones whose next attempt has come and Delivering
// ones whose lease has ended.
func dueRcpts(tx *bolt.Tx, id string, now time.Time) ([]Rcpt, error) {
	all, err := readRcpts(tx, id)
	if err != nil {
		return nil, err
	}
	due := all[:0]
	for _, r := range all {
		if indexedDue(&r) && !r.NextAttempt.After(now) {
			due = append(due, r)
		}
	}
	return due, nil
}

// NextDue implements Queue.NextDue.
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

// Record implements Queue.Record: every update runs in one write
// transaction of the group committer. A refused update (lease lost, wrong
// state, no such recipient) changes nothing and the others still apply; any
// other error fails the whole call.
func (s *Bolt) Record(ctx context.Context, updates ...Update) error {
	if len(updates) == 0 {
		return ctx.Err()
	}
	now := s.opts.Now()
	var refused []error
	op := &writeOp{done: make(chan error, 1), records: true}
	op.fn = func(tx *bolt.Tx) error {
		refused = refused[:0] // fn may run again: start afresh
		msgs := msgCache{}
		for _, u := range updates {
			err := applyUpdate(tx, msgs, u, now)
			if err == nil {
				continue
			}
			if !refusal(err) {
				return fmt.Errorf("%s %s: %w", u.Op, u.Ref, err)
			}
			refused = append(refused, &UpdateError{Update: u, Err: err})
		}
		return nil
	}
	if err := s.updateOp(ctx, op); err != nil {
		return fmt.Errorf("store: record: %w", err)
	}
	return errors.Join(refused...)
}

// refusal reports whether err refuses one update rather than failing the
// transaction.
func refusal(err error) bool {
	return errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound)
}

// applyUpdate applies u to its recipient and, if that makes the recipient
// final, queues its delivery record, all in tx; msgs caches the messages
// read for those records. A refusal returns before anything is written.
func applyUpdate(tx *bolt.Tx, msgs msgCache, u Update, now time.Time) error {
	var final *Rcpt
	err := updateRcpt(tx, u.Ref, func(r *Rcpt) error {
		was := r.Status
		if u.Lease.Owner != "" && (r.Status != Delivering || r.Owner != u.Lease.Owner || r.Attempts != u.Lease.Attempt) {
			return fmt.Errorf("%w: recipient is %s, owner %q, attempt %d", ErrLeaseLost, r.Status, r.Owner, r.Attempts)
		}
		if err := applyOp(r, u, now); err != nil {
			return err
		}
		r.Updated = now
		if r.Status != Delivering {
			r.Owner = ""
		}
		if r.Status.Final() && r.Status != was {
			c := *r
			final = &c
		}
		return nil
	})
	if err != nil || final == nil {
		return err
	}
	return queueRecord(tx, msgs, u.Ref.ID, final, now)
}

// applyOp is the state transition of one update.
func applyOp(r *Rcpt, u Update, now time.Time) error {
	claimed := func() error {
		if r.Status != Delivering {
			return fmt.Errorf("%w: recipient is %s, not claimed", ErrInvalid, r.Status)
		}
		return nil
	}
	if u.IfAwaiting {
		if u.Op != OpRequeue && u.Op != OpAnswered {
			return fmt.Errorf("%w: IfAwaiting with %v", ErrInvalid, u.Op)
		}
		if r.AnswerBy.IsZero() {
			return fmt.Errorf("%w: recipient is %s and awaits no answer", ErrInvalid, r.Status)
		}
	}
	switch u.Op {
	case OpAttempt:
		if err := claimed(); err != nil {
			return err
		}
		r.Attempt = u.Attempt
	case OpDelivered:
		if err := claimed(); err != nil {
			return err
		}
		r.Status = Delivered
		r.PeerID = u.PeerID
		r.LastError = ""
		r.AnswerBy = time.Time{}
		answered := r.AnsweredAttempt == r.Attempts
		if !u.AnswerBy.IsZero() && !answered {
			r.AnswerBy = u.AnswerBy
		}
		if !r.RequeueAt.IsZero() {
			// The peer's answer, which came during this attempt, asked
			// for another one (OpRequeue while Delivering).
			r.Status = Deferred
			r.NextAttempt = r.RequeueAt
			r.LastError = r.RequeueReason
			r.RequeueAt, r.RequeueReason = time.Time{}, ""
		}
	case OpDeferred:
		if err := claimed(); err != nil {
			return err
		}
		r.Status = Deferred
		r.NextAttempt = u.Next
		r.LastError = u.Reason
		r.Budget = max(u.Budget, 0)
		r.RequeueAt, r.RequeueReason = time.Time{}, ""
	case OpFailed:
		if r.Status.Final() {
			return fmt.Errorf("%w: recipient is already %s", ErrInvalid, r.Status)
		}
		r.Status = Failed
		r.LastError = u.Reason
		r.RequeueAt, r.RequeueReason = time.Time{}, ""
	case OpReport:
		r.Report = u.Report
	case OpAnswered:
		r.Report = u.Report
		r.AnswerBy = time.Time{}
		r.AnsweredAttempt = r.Attempts
	case OpRequeue:
		if r.Status == Delivering && !u.IfAwaiting {
			// The answer came before the worker recorded the delivery:
			// its OpDelivered makes the recipient Deferred instead.
			r.RequeueAt, r.RequeueReason = u.Next, u.Reason
			return nil
		}
		if r.Status != Delivered {
			return fmt.Errorf("%w: recipient is %s, not %s", ErrInvalid, r.Status, Delivered)
		}
		r.Status = Deferred
		r.NextAttempt = u.Next
		r.LastError = u.Reason
		r.AnswerBy = time.Time{}
	default:
		return fmt.Errorf("%w: unknown %v", ErrInvalid, u.Op)
	}
	return nil
}

// Awaiting implements Queue.Awaiting from the answer index.
func (s *Bolt) Awaiting(ctx context.Context, before time.Time, limit int) ([]RcptRef, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	max := dueKey(before, "", 0)[:8]
	var refs []RcptRef
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAnswer).Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(refs) < limit); k, _ = c.Next() {
			if bytes.Compare(k[:8], max) > 0 {
				break
			}
			refs = append(refs, RcptRef{string(k[8 : 8+idLen]), int(binary.BigEndian.Uint16(k[8+idLen:]))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: awaiting: %w", err)
	}
	return refs, nil
}

// Counts implements Queue.Counts from the counters bucket.
func (s *Bolt) Counts(ctx context.Context) (map[Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[Status]int)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bCount).ForEach(func(k, v []byte) error {
			if len(k) != 1 || len(v) != 8 {
				return fmt.Errorf("bad counter %x", k)
			}
			if n := int64(binary.BigEndian.Uint64(v)); n != 0 {
				out[Status(k[0])] = int(n)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: counts: %w", err)
	}
	return out, nil
}

// Retry implements Admin.Retry.
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

// Drop implements Admin.Drop. A recipient being delivered is dropped too;
// the worker's later update is then refused.
func (s *Bolt) Drop(ctx context.Context, id string) error {
	now := s.opts.Now()
	op := &writeOp{done: make(chan error, 1), records: true}
	op.fn = func(tx *bolt.Tx) error {
		var dropped []Rcpt
		err := forEachRcpt(tx, id, func(r *Rcpt) error {
			if !r.Status.Final() {
				r.Status = Dropped
				r.Owner = ""
				r.Updated = now
				dropped = append(dropped, *r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		msgs := msgCache{}
		for i := range dropped {
			if err := queueRecord(tx, msgs, id, &dropped[i], now); err != nil {
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

// Lookup implements Queue.Lookup.
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

// indexedDue reports whether r is in the due index: waiting recipients by
// next attempt, Delivering ones by the end of their lease.
func indexedDue(r *Rcpt) bool {
	return r.Status.Waiting() || r.Status == Delivering
}

// putRcpt stores r for message id and keeps the due, answer and ref indexes
// and the status counters in step with the change from old (nil for a new
// recipient). It is the one place a recipient's state is written.
func putRcpt(tx *bolt.Tx, id string, old, r *Rcpt) error {
	due := tx.Bucket(bDue)
	if old != nil && indexedDue(old) {
		if err := due.Delete(dueKey(old.NextAttempt, id, old.Index)); err != nil {
			return err
		}
	}
	if indexedDue(r) {
		if err := due.Put(dueKey(r.NextAttempt, id, r.Index), nil); err != nil {
			return err
		}
	}
	ans := tx.Bucket(bAnswer)
	if old != nil && !old.AnswerBy.IsZero() {
		if err := ans.Delete(dueKey(old.AnswerBy, id, old.Index)); err != nil {
			return err
		}
	}
	if !r.AnswerBy.IsZero() {
		if err := ans.Put(dueKey(r.AnswerBy, id, r.Index), nil); err != nil {
			return err
		}
	}
	if old == nil || old.Status != r.Status {
		if old != nil {
			if err := addCount(tx, old.Status, -1); err != nil {
				return err
			}
		}
		if err := addCount(tx, r.Status, 1); err != nil {
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

// deleteRcpt removes recipient r of message id with its due and answer
// index entries and its count. Ref index entries are the caller's.
func deleteRcpt(tx *bolt.Tx, id string, r *Rcpt) error {
	if indexedDue(r) {
		if err := tx.Bucket(bDue).Delete(dueKey(r.NextAttempt, id, r.Index)); err != nil {
			return err
		}
	}
	if !r.AnswerBy.IsZero() {
		if err := tx.Bucket(bAnswer).Delete(dueKey(r.AnswerBy, id, r.Index)); err != nil {
			return err
		}
	}
	if err := addCount(tx, r.Status, -1); err != nil {
		return err
	}
	return tx.Bucket(bRcpt).Delete(rcptKey(id, r.Index))
}

// addCount adds d to the counter of status st.
func addCount(tx *bolt.Tx, st Status, d int64) error {
	b := tx.Bucket(bCount)
	k := []byte{byte(st)}
	var n int64
	if v := b.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(n+d)))
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
	rcpts, err := readRcpts(tx, id)
	if err != nil {
		return nil, err
	}
	m.Rcpts = rcpts
	return m, nil
}

// readRcpts reads the recipients of message id, in index order.
func readRcpts(tx *bolt.Tx, id string) ([]Rcpt, error) {
	var rcpts []Rcpt
	c := tx.Bucket(bRcpt).Cursor()
	prefix := []byte(id)
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r Rcpt
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decode recipient %x: %w", k, err)
		}
		rcpts = append(rcpts, r)
	}
	return rcpts, nil
}

// msgCache holds the messages (their msg record, without recipients) that
// one write function has decoded, so that several recipients of a message
// that become final in one transaction read and unmarshal it once. A write
// function makes its own on each run; Record and Drop do not change msg
// records, so the cached ones stay true for the run.
type msgCache map[string]*Message

// get returns message id's record, from the cache or from tx.
func (c msgCache) get(tx *bolt.Tx, id string) (*Message, error) {
	if m, ok := c[id]; ok {
		return m, nil
	}
	v := tx.Bucket(bMsg).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	m := new(Message)
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("decode message %s: %w", id, err)
	}
	c[id] = m
	return m, nil
}

// queueRecord adds a delivery record for r to the records queue; the
// recorder appends it to records.jsonl after the commit. The message is
// read through msgs.
func queueRecord(tx *bolt.Tx, msgs msgCache, id string, r *Rcpt, now time.Time) error {
	m, err := msgs.get(tx, id)
	if err != nil {
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
