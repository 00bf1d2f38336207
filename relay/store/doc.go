// Package store is the relay's durable state: accepted messages and their
// per-recipient delivery state (the queue), a dedup set, delivery records for
// billing, and small key/value tables for the reply path (conversations,
// reply tokens, opt-outs, IMAP poll state).
//
// # Contracts
//
//   - Queue: Accept a body from an io.Reader; Claim due recipients as leases
//     (ClaimRequest: owner, time, lease, limit), a message's due recipients
//     always together; Record a group of updates (OpAttempt, OpDelivered,
//     OpDeferred, OpFailed, OpReport, OpAnswered, OpRequeue; IfAwaiting
//     makes the last two conditional) in one commit; Get, Body (ReadBody
//     reads one once), Lookup by wire identifier, NextDue, Awaiting and
//     Counts.
//   - Admin: List, Retry, Drop, Purge.
//   - KV: tables of JSON values, PutKVIfAbsent and ClaimOnce.
//   - SpaceChecker: optional free-space check.
//
// The package storetest holds the conformance suite every backend runs.
//
// The relay uses small contracts (contracts.go): Queue, Admin, KV and the
// optional SpaceChecker, bundled by Backend; Open is the one place a store
// is opened. Bolt is the embedded implementation. A PostgreSQL one for
// several relay instances can follow behind the same contracts: queue ids
// carry 32 random bits so that instances do not collide, and Claim is a
// natural SELECT … FOR UPDATE SKIP LOCKED.
//
// # Guarantees
//
// Accept returns only after the body and the envelope are on stable
// storage, so the SMTP layer answers 250 on a nil error and a crash at any
// moment loses no accepted message. Delivery is at least once: Claim
// commits the attempt (status Delivering, owner, attempt count, time and
// the end of the lease) before the worker makes it. Record refuses an
// update whose lease no longer holds (ErrLeaseLost), so a worker that
// outlived its lease cannot overwrite the outcome of the owner that took
// the recipient over. OpAttempt keeps the Transaction-ID and Message-ID an
// attempt used, so a repeat carries the same identifiers and the peer can
// recognise it.
//
// # Leases and recovery
//
// A Delivering recipient whose lease has ended is claimable again by any
// owner: that is how a backend shared by several processes (PostgreSQL)
// recovers the work of a dead instance, by letting its leases expire. Bolt
// is used by one process at a time (bbolt holds an exclusive file lock), so
// when OpenBolt runs no owner of an open claim is alive: it makes every
// Delivering recipient Queued again at once, due at the end of its lease or
// at LastAttempt + Options.Backoff(Attempts) (15 s after a first attempt),
// whichever comes first. A restarted relay thus resumes quickly and may
// repeat an attempt whose outcome was not recorded, while a message that
// crashes the relay cannot make it crash again at once.
//
// # Why bbolt
//
// go.etcd.io/bbolt is pure Go (no cgo, so cross-compiling and -race stay
// simple, and it compiles in seconds where modernc.org/sqlite takes minutes
// under -race), keeps everything in one file, makes every committed write
// transaction durable with fdatasync (NoSync stays false), and offers ordered
// keys with cursors, which is all a queue index needs. Its one writer at a
// time is no limit here because writes are grouped (below).
//
// # Group commit
//
// Every write goes through one committer goroutine. It takes all the writes
// waiting (up to Options.MaxBatch) and runs them in a single bbolt
// transaction: one commit, one set of fsyncs, for the whole group. A write
// that finds the committer idle is committed at once; writes arriving during
// a commit form the next group. Unlike bbolt's DB.Batch there is no timer,
// so a lone SMTP session does not wait MaxBatchDelay (10 ms) for company. If
// one write of a group fails, the transaction is rolled back, that write
// gets its error and the rest are committed without it (write functions may
// therefore run more than once and must set their results afresh).
// BENCHMARKS.md (repository root) has the numbers.
//
// # Bodies: inline up to 64 KiB, spool files above
//
// A body of at most Options.InlineMax bytes (64 KiB by default, which covers
// most text and small-picture mail) is stored in the database in the same
// transaction as its record, so it shares the group commit's fsync and needs
// no file of its own: this more than doubles accepts per second compared
// with a file per body.
//
// A larger body, up to the SMTP size limit (50 MB and more), goes to a file
// in spool/: written under a temporary name (".tmp-…"), fsynced, renamed
// to spool/<id>, and then the record is committed, with the spool directory
// fsynced by the committer before the transaction of the group that carries
// it. The record is the commit marker: Open removes temporary files and
// spool files that no record names. Large bodies stay out of bbolt because
// a 50 MB value would be copied into the write transaction and written while
// every other writer waits, and because bbolt never gives space back to the
// file system (freed pages are only reused), so a burst of large messages
// would leave a large file for good; with files, Purge simply unlinks (a
// reader that has the file open keeps reading it). Workers read a body once,
// whole, through ReadBody: a spooled body from its file into one buffer of
// the size on record, an inline one as the copy that Body made in its read
// transaction, handed over without another.
//
// # Layout
//
// The directory given to Open holds store.db (bbolt), spool/ (large bodies)
// and records.jsonl (delivery records). Buckets in store.db: msg (id →
// envelope and body facts as JSON), body (id → inline body), rcpt (id ‖
// index → recipient state as JSON), due (next attempt ‖ id ‖ index, for
// Claim: waiting recipients by next attempt, Delivering ones by lease end),
// ref (transaction id, message id or peer id → recipient, for Lookup),
// answer (AnswerBy ‖ id ‖ index of Delivered recipients awaiting an
// answer, for Awaiting), count (recipients per state, for Counts), once
// (dedup keys with expiry), kv (one nested bucket per Table), recq
// (delivery records not yet in records.jsonl) and meta (schema version).
//
// putRcpt is the one place a recipient's state is written; it keeps the
// due, answer and ref indexes and the counters in the same transaction, so
// Awaiting and Counts read an index instead of every message. Opening a
// version 1 database builds the answer index and the counters from the
// recipients and moves it to version 2.
//
// # Delivery records
//
// The transaction that makes a recipient final (Delivered, Failed, Dropped)
// also queues its Record in recq. After the commit a recorder goroutine
// appends the queued records to records.jsonl, fsyncs it, then deletes them
// from recq. A crash between those steps repeats lines; none is lost.
//
// # Disk full
//
// Errors caused by ENOSPC or EDQUOT wrap ErrDiskFull, as does Accept when
// storing the body would leave less free space than Options.MinFree. Accept
// checks the body's actual size, not a size announced by the client: up
// front when the reader tells its length, otherwise once it is known, after
// reading an inline body or while spooling a large one (which stops as soon
// as it outgrows the room above the reserve), and again once a spool file is
// written; a refused body leaves neither record nor file. The SMTP layer
// answers 452 4.3.1 for those (errors.Is(err, ErrDiskFull)), and calls
// CheckSpace with the SIZE parameter at MAIL to refuse early.
package store
