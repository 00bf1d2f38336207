package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// The store is a few small contracts rather than one large interface, so
// that each part of the relay depends on what it uses and a second backend
// (PostgreSQL, for several relay instances) implements each on its own:
//
//   - Queue: accepted messages and their per-recipient delivery state,
//     claimed as leases and updated a group at a time.
//   - Admin: what an operator does to the queue (list, retry, drop, purge).
//   - KV: small key/value tables with claim-once (reply tokens,
//     conversations, opt-outs, IMAP poll state, dedup keys).
//   - SpaceChecker: an optional capability, free disk space.
//
// Backend bundles one opened store's parts; storetest holds the
// conformance suite every backend passes.

// Queue is the durable message queue.
//
// Every method takes a context; a context that is done before a write is
// queued makes the method return ctx.Err() without writing. A nil error
// from a write means durable; a non-nil error means "not known to be
// committed". Implementations are safe for concurrent use by several
// processes when the backend says so (bbolt: one process).
type Queue interface {
	// Accept stores the body read from r until io.EOF and env durably and
	// returns the new message's queue id. It returns only after the body
	// and the record are on stable storage, so the SMTP layer may answer
	// 250 on a nil error. Every recipient starts Queued and due at once.
	// A backend that keeps a free-space reserve refuses a body that would
	// eat into it, whatever size the client announced, with an error
	// wrapping ErrDiskFull.
	Accept(ctx context.Context, env Envelope, r io.Reader) (id string, err error)

	// Claim takes recipients that are due at req.Now, oldest first:
	// Queued or Deferred ones whose next attempt has come, and Delivering
	// ones whose lease has expired (their owner died). It takes messages
	// whole: with one recipient of a message it takes every recipient of
	// that message due at req.Now, whenever each became due, so that one
	// group MMS is never split between claims (see ClaimRequest.Limit).
	// Each becomes Delivering, owned by req.Owner until
	// req.Now+req.Lease (NextAttempt holds the lease's end), with its
	// attempt count incremented, all committed before Claim returns: the
	// attempt is on record before it is made. The recipients of one
	// message form one Job, in index order.
	Claim(ctx context.Context, req ClaimRequest) ([]Job, error)

	// Record applies updates in one commit. An update that names a Lease
	// applies only while that lease still holds the recipient (Delivering,
	// same owner, same attempt); otherwise it is refused with an error
	// wrapping ErrLeaseLost and the others still apply. An update the
	// recipient's state does not allow (or whose IfAwaiting does not hold)
	// is refused likewise with ErrInvalid, one naming no recipient with
	// ErrNotFound. The error joins one *UpdateError per refused update; a
	// storage failure applies nothing.
	Record(ctx context.Context, updates ...Update) error

	// Get returns the message id with the state of every recipient.
	Get(ctx context.Context, id string) (*Message, error)

	// Body opens the stored body of message id. The caller must Close it.
	// Workers use ReadBody, which reads it once, whole.
	Body(ctx context.Context, id string) (Body, error)

	// Lookup finds the recipients that used value as the given kind of
	// identifier (transaction id, message id, peer message id).
	Lookup(ctx context.Context, kind RefKind, value string) ([]RcptRef, error)

	// NextDue returns the earliest time at which Claim would find work:
	// the next attempt of a waiting recipient or the end of a lease; ok
	// is false if there is none.
	NextDue(ctx context.Context) (t time.Time, ok bool, err error)

	// Awaiting returns, oldest first and at most limit (0: all), the
	// delivered recipients still awaiting an answer (an MM4_forward.RES)
	// whose AnswerBy is at or before before. It reads an index, not every
	// message.
	Awaiting(ctx context.Context, before time.Time, limit int) ([]RcptRef, error)

	// Counts returns how many recipients are in each state. It reads
	// counters kept with the data, not every message.
	Counts(ctx context.Context) (map[Status]int, error)
}

// Admin is what an operator does to the queue.
type Admin interface {
	// List returns messages in queue-id (arrival) order, filtered by opts.
	List(ctx context.Context, opts ListOptions) ([]*Message, error)

	// Retry makes every Queued, Deferred or Failed recipient of message id
	// due now (Failed ones become Queued again).
	Retry(ctx context.Context, id string) error

	// Drop gives up on every recipient of message id that is not yet
	// final: they become Dropped. The message stays listed until Purge.
	Drop(ctx context.Context, id string) error

	// Purge removes finished messages (every recipient Delivered, Failed
	// or Dropped) and their bodies once older than opts.Messages, expired
	// ClaimOnce keys, and delivery records older than opts.Records.
	Purge(ctx context.Context, now time.Time, opts PurgeOptions) (PurgeStats, error)
}

// KV is small key/value tables of JSON values, and a set of keys that can
// be claimed once.
type KV interface {
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
	// ClaimOnce records key for ttl. It reports first == true if key was
	// not present (or had expired), false if it was: the caller then skips
	// the work. Among concurrent callers exactly one gets true.
	ClaimOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// SpaceChecker is the optional capability of a backend that can tell free
// disk space.
type SpaceChecker interface {
	// CheckSpace returns an error wrapping ErrDiskFull if storing size more
	// bytes would leave less than the configured reserve. The SMTP layer
	// calls it at MAIL with the SIZE parameter.
	CheckSpace(ctx context.Context, size int64) error
}

// ErrLeaseLost means an update named a claim that no longer holds the
// recipient: its lease expired and another owner took it, or it was ended.
var ErrLeaseLost = errors.New("lease lost")

// Kind says which way a message goes, and so which processor takes it.
type Kind string

// Message kinds.
const (
	KindMMS        Kind = "mms"        // email → MMS
	KindEmail      Kind = "email"      // an email the relay sends: a reply, a bounce, an MM4 answer
	KindReply      Kind = "reply"      // a handset's reply, to become an email
	KindPostmaster Kind = "postmaster" // mail for postmaster@ and abuse@, forwarded
)

// ClaimRequest says who claims how much work, for how long.
type ClaimRequest struct {
	// Owner names the claiming process (host and process id, or any
	// string unique among live instances).
	Owner string
	// Now is the claim time: recipients due at or before it are taken.
	Now time.Time
	// Lease is how long the claim holds before another owner may take the
	// recipient again; it must cover conversion and delivery.
	Lease time.Duration
	// Limit is the number of recipients Claim aims to take. It counts
	// recipients, but a message is never split: once Limit is reached no
	// further message is started, and the message that reaches it comes
	// with all its due recipients, so a claim may return more than Limit.
	// A Limit of 1 takes one message.
	Limit int
}

// Lease identifies one claim of one recipient: who holds it and which
// attempt it is.
type Lease struct {
	Owner   string
	Attempt int
}

// Op is what an Update does.
type Op uint8

// Update operations.
const (
	// OpAttempt records what the attempt uses on the wire (Update.Attempt)
	// before it is made; the claim goes on. A retry re-sends with the same
	// identifiers and an answer can be matched with Lookup.
	OpAttempt Op = iota + 1
	// OpDelivered ends a claim: the peer took the message (Update.PeerID).
	// A non-zero AnswerBy says an answer is awaited by then, unless one
	// came during the attempt (OpAnswered before OpDelivered).
	OpDelivered
	// OpDeferred ends a claim with a temporary failure: due again at
	// Update.Next; Update.Budget, when positive, is the size the next
	// attempt must fit (the peer refused the size).
	OpDeferred
	// OpFailed ends a claim with a permanent failure (the caller bounces).
	OpFailed
	// OpReport records a later report (Update.Report) on a recipient in
	// any state: an MM4 delivery report such as "Retrieved".
	OpReport
	// OpAnswered records the awaited answer (Update.Report): the
	// recipient no longer awaits one. With Update.IfAwaiting it applies
	// only while one is awaited (the watcher giving up on an answer).
	OpAnswered
	// OpRequeue makes a Delivered recipient Deferred again, due at
	// Update.Next: a peer that took the message but never confirmed it,
	// or answered with a temporary failure, gets it again with the same
	// identifiers. On a recipient still Delivering (the answer came
	// before the worker recorded the delivery) it is kept for that
	// attempt: its OpDelivered then makes the recipient Deferred, due at
	// Next. With Update.IfAwaiting it applies only while an answer is
	// awaited.
	OpRequeue
)

var opNames = [...]string{OpAttempt: "attempt", OpDelivered: "delivered", OpDeferred: "deferred",
	OpFailed: "failed", OpReport: "report", OpAnswered: "answered", OpRequeue: "requeue"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Update is one change to one recipient, applied by Queue.Record.
type Update struct {
	Ref RcptRef
	Op  Op
	// Lease, when its Owner is set, is the claim the update belongs to:
	// OpAttempt, OpDelivered, OpDeferred and OpFailed from a worker name
	// it. An update without one (a report, an operator) checks no lease.
	Lease Lease
	// IfAwaiting, with OpRequeue or OpAnswered: apply only while the
	// recipient still awaits an answer (AnswerBy set); otherwise the
	// update is refused with an *UpdateError wrapping ErrInvalid. The
	// answer watcher sets it, so that an answer recorded after it listed
	// Awaiting (OpAnswered, which clears AnswerBy) is not undone by a
	// requeue that sends a confirmed message again. With another op the
	// update is refused (ErrInvalid).
	IfAwaiting bool

	Attempt  Attempt   // OpAttempt
	PeerID   string    // OpDelivered
	AnswerBy time.Time // OpDelivered: zero when no answer is awaited
	Next     time.Time // OpDeferred, OpRequeue
	Budget   int64     // OpDeferred
	Reason   string    // OpDeferred, OpFailed, OpRequeue
	Report   string    // OpReport, OpAnswered
}

// UpdateError is one update that Record refused.
type UpdateError struct {
	Update Update
	Err    error
}

func (e *UpdateError) Error() string {
	return fmt.Sprintf("store: %s %s: %v", e.Update.Op, e.Update.Ref, e.Err)
}

func (e *UpdateError) Unwrap() error { return e.Err }

// Backend is one opened store: its parts as the small contracts, and a way
// to close it. Open makes one.
type Backend struct {
	Queue Queue
	Admin Admin
	KV    KV
	// Space is nil when the backend cannot tell free space.
	Space SpaceChecker
	// Close stops the backend; pending writes finish first.
	Close func() error
}
