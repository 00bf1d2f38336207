package store

import (
	"bytes"
	"context"
	"io"
	"time"
)

// This file is the old 25-method Store interface and the shims that keep it
// working over the contracts while relay/*.go still uses it. It goes when
// the relay moves to Queue, Admin, KV and SpaceChecker.

// Store is the old single interface to the relay's durable state, kept
// while the relay moves to the contracts (Queue, Admin, KV, SpaceChecker).
// (*Bolt).Legacy returns one.
//
// Deprecated: use the contracts; Store goes when the relay no longer uses it.
//
// Every method takes a context; a context that is done before a write is
// queued makes the method return ctx.Err() without writing. A write that was
// already handed to the commit pipeline is waited for, so a nil error always
// means durable and a non-nil error means "not known to be committed".
//
// Implementations are safe for concurrent use. Errors wrap ErrNotFound,
// ErrDiskFull, ErrClosed or ErrInvalid where those apply.
type Store interface {
	// Accept stores raw (the whole RFC 5322 message) and env durably and
	// returns the new message's queue id. It returns only after the body
	// and the record are on stable storage, so the SMTP layer may answer
	// 250 on a nil error. Every recipient starts Queued and due at once.
	// The store does not keep raw; the caller may reuse it.
	Accept(ctx context.Context, env Envelope, raw []byte) (id string, err error)

	// AcceptReader is Accept for a body read from r until io.EOF, so a
	// large DATA need not be held in memory.
	AcceptReader(ctx context.Context, env Envelope, r io.Reader) (id string, err error)

	// Get returns the message id with the state of every recipient.
	Get(ctx context.Context, id string) (*Message, error)

	// List returns messages in queue-id (arrival) order, filtered by opts.
	List(ctx context.Context, opts ListOptions) ([]*Message, error)

	// Body opens the stored body of message id. The caller must Close it.
	Body(ctx context.Context, id string) (Body, error)

	// Claim takes up to limit recipients whose next attempt is at or before
	// now and whose status is Queued or Deferred, marks them Delivering,
	// increments their attempt count, sets LastAttempt and a NextAttempt
	// for the case the outcome is never recorded, all committed before it
	// returns: the attempt is on record before it is made. Recipients of
	// one message are grouped in one Job, oldest due first. A claim is
	// ended by MarkDelivered, MarkDeferred, MarkFailed or Drop; claims
	// still open when the process stops become Queued again when the store
	// opens, due at that NextAttempt. Because the count includes attempts
	// cut short by a crash, the worker enforces its maximum on
	// Rcpt.Attempts (MarkFailed and bounce instead of trying) and so stops
	// a message that crashes the relay from looping.
	Claim(ctx context.Context, now time.Time, limit int) ([]Job, error)

	// RecordAttempt stores what an attempt uses on the wire (route,
	// transaction id, message id, size) before the attempt is made, so a
	// retry re-sends with the same identifiers and a reply (MM4 .RES,
	// delivery report) can be matched with Lookup.
	RecordAttempt(ctx context.Context, ref RcptRef, a Attempt) error

	// MarkDelivered ends a claim: the peer accepted the message for the
	// recipient and gave peerID (may be empty) as its message id.
	MarkDelivered(ctx context.Context, ref RcptRef, peerID string) error

	// MarkDeferred ends a claim with a temporary failure: the recipient
	// becomes Deferred and due again at next.
	MarkDeferred(ctx context.Context, ref RcptRef, next time.Time, reason string) error

	// MarkFailed ends a claim with a permanent failure (the caller
	// bounces). The recipient becomes Failed.
	MarkFailed(ctx context.Context, ref RcptRef, reason string) error

	// Requeue makes a Delivered recipient Deferred again, due at next, with
	// reason: a peer that took the message but never confirmed it (no MM4
	// .RES) gets it again, with the same identifiers. Any other state is
	// ErrInvalid.
	Requeue(ctx context.Context, ref RcptRef, next time.Time, reason string) error

	// RecordReport stores a later report on a delivered recipient (an MM4
	// delivery report status such as "Retrieved" or "Expired").
	RecordReport(ctx context.Context, ref RcptRef, status string) error

	// NextDue returns the earliest next-attempt time of any waiting
	// recipient, so a worker can sleep until then; ok is false if none waits.
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)

	// Retry makes every Queued, Deferred or Failed recipient of message id
	// due now (Failed ones become Queued again).
	Retry(ctx context.Context, id string) error

	// Drop gives up on every recipient of message id that is not yet
	// final: they become Dropped. The message stays listed until Purge.
	Drop(ctx context.Context, id string) error

	// Lookup finds the recipients that used value as the given kind of
	// identifier (transaction id, message id, peer message id).
	Lookup(ctx context.Context, kind RefKind, value string) ([]RcptRef, error)

	// ClaimOnce records key in the dedup set for ttl. It reports first ==
	// true if key was not present (or had expired), false if it was: the
	// caller then skips the work. Use it for (sender, Message-ID, number)
	// so one email arriving in several SMTP transactions goes once.
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error)

	// PutKV stores v, marshalled as JSON, under key in table.
	PutKV(ctx context.Context, table Table, key string, v any) error
	// PutKVIfAbsent stores v under key only if key is not in table, and
	// reports whether it did: allocating a unique reply token is a loop of
	// PutKVIfAbsent with fresh random keys.
	PutKVIfAbsent(ctx context.Context, table Table, key string, v any) (stored bool, err error)
	// GetKV unmarshals the JSON value under key in table into v.
	// It returns an error wrapping ErrNotFound if there is none.
	GetKV(ctx context.Context, table Table, key string, v any) error
	// DeleteKV removes key from table; a missing key is not an error.
	DeleteKV(ctx context.Context, table Table, key string) error
	// ScanKV returns the entries of table whose key starts with prefix, in
	// key order, at most limit (0: all).
	ScanKV(ctx context.Context, table Table, prefix string, limit int) ([]Entry, error)

	// Purge removes finished messages (every recipient Delivered, Failed
	// or Dropped) and their bodies once older than opts.Messages, expired
	// dedup keys, and delivery records older than opts.Records.
	Purge(ctx context.Context, now time.Time, opts PurgeOptions) (PurgeStats, error)

	// CheckSpace returns an error wrapping ErrDiskFull if storing size more
	// bytes would leave less than the configured reserve. The SMTP layer
	// calls it at MAIL with the SIZE parameter.
	CheckSpace(ctx context.Context, size int64) error

	// Close stops the commit pipeline and closes files. Pending writes
	// finish first.
	Close() error
}

// legacyOwner is the owner of claims made through the old Claim. Like the
// old claims, they do not expire while the process lives (they are not in
// the due index, see indexedDue), and NextAttempt holds now +
// Options.Backoff(attempts), when OpenBolt makes them due after a crash.
const legacyOwner = "legacy"

// Legacy returns s as the old Store interface.
//
// Deprecated: use s itself through the contracts.
func (s *Bolt) Legacy() Store { return legacyStore{s} }

// legacyStore is a *Bolt with the old methods; those named like a contract
// method (Accept, Claim) shadow the new ones.
type legacyStore struct{ *Bolt }

var _ Store = legacyStore{}

func (l legacyStore) Accept(ctx context.Context, env Envelope, raw []byte) (string, error) {
	return l.Bolt.Accept(ctx, env, bytes.NewReader(raw))
}

func (l legacyStore) AcceptReader(ctx context.Context, env Envelope, r io.Reader) (string, error) {
	return l.Bolt.Accept(ctx, env, r)
}

func (l legacyStore) Claim(ctx context.Context, now time.Time, limit int) ([]Job, error) {
	if limit <= 0 {
		return nil, nil
	}
	return l.claim(ctx, ClaimRequest{Owner: legacyOwner, Now: now, Limit: limit}, l.opts.Backoff)
}

func (l legacyStore) RecordAttempt(ctx context.Context, ref RcptRef, a Attempt) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpAttempt, Attempt: a})
}

func (l legacyStore) MarkDelivered(ctx context.Context, ref RcptRef, peerID string) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpDelivered, PeerID: peerID})
}

func (l legacyStore) MarkDeferred(ctx context.Context, ref RcptRef, next time.Time, reason string) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpDeferred, Next: next, Reason: reason})
}

func (l legacyStore) MarkFailed(ctx context.Context, ref RcptRef, reason string) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpFailed, Reason: reason})
}

func (l legacyStore) Requeue(ctx context.Context, ref RcptRef, next time.Time, reason string) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpRequeue, Next: next, Reason: reason})
}

func (l legacyStore) RecordReport(ctx context.Context, ref RcptRef, status string) error {
	return l.Record(ctx, Update{Ref: ref, Op: OpReport, Report: status})
}
