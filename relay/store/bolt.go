package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt is the embedded backend: a bbolt database for records and indexes
// and a spool directory of body files, under one directory. It implements
// Queue, Admin, KV and SpaceChecker. See the package doc
// for the layout and the commit protocol.
type Bolt struct {
	dir      string
	spoolDir string
	db       *bolt.DB
	opts     Options
	log      *slog.Logger
	ids      idGen

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *writeOp
	done   chan struct{} // closed when the committer exits

	recMu   sync.Mutex // serialises records.jsonl writers
	recFile *os.File
	recKick chan struct{}
	recQuit chan struct{}
	recDone chan struct{}

	commits, grouped atomic.Int64 // statistics for tests and benchmarks

	// boltBatch makes writes use bbolt's DB.Batch instead of the
	// committer; only the benchmark sets it, to compare the two.
	boltBatch bool
	// freeSpace, when set, replaces statfs in FreeSpace; only tests set
	// it, to fake a file system near its reserve.
	freeSpace func() (int64, error)
}

// Options configures OpenBolt. The zero value is usable.
type Options struct {
	// Logger receives warnings (orphans removed, records not flushed).
	// Nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. A test seam.
	Now func() time.Time
	// MaxBatch caps how many writes share one commit (one fsync). 0 means
	// 256; 1 disables group commit.
	MaxBatch int
	// MinFree is the free space, in bytes, that Accept and CheckSpace keep
	// in reserve. 0 means 64 MiB; negative means none.
	MinFree int64
	// InlineMax is the largest body, in bytes, kept inside the database
	// (committed with its record, sharing the group commit's fsync). Larger
	// bodies go to a spool file. 0 means 64 KiB; negative spools every body.
	InlineMax int
	// Backoff says how long after a claim a recipient is due again if the
	// attempt's outcome is never recorded because the process died during
	// it: OpenBolt makes such a recipient due at LastAttempt +
	// Backoff(Attempts), or at the end of its lease if that is sooner.
	// Attempts counts the interrupted claim, so it starts at 1. Delaying
	// the retry of an interrupted attempt keeps a message that crashes the
	// relay from crashing it again at once. nil means DefaultBackoff.
	Backoff func(attempts int) time.Duration
	// LockTimeout is how long Open waits for another process to release
	// the database; 0 means 2 s.
	LockTimeout time.Duration
}

const (
	dbName      = "store.db"
	spoolName   = "spool"
	recordsName = "records.jsonl"
	tmpPrefix   = ".tmp-"
)

// Bucket names.
var (
	bMsg  = []byte("msg")  // id → Message JSON (without Rcpts)
	bBody = []byte("body") // id → 0 ‖ body of at most InlineMax bytes (larger: spool/<id>)
	bRcpt = []byte("rcpt") // id ‖ uint16 index → Rcpt JSON
	bDue  = []byte("due")  // int64 next-attempt ns ‖ id ‖ uint16 index → nil
	bRef  = []byte("ref")  // kind prefix ‖ value ‖ 0 ‖ id ‖ uint16 index → nil
	bOnce = []byte("once") // dedup key → int64 expiry ns
	bKV   = []byte("kv")   // table name → nested bucket key → JSON
	bRecQ = []byte("recq") // uint64 sequence → Record JSON, not yet in records.jsonl
	bMeta = []byte("meta") // "version" → schema version
	// bAnswer indexes Delivered recipients awaiting an answer:
	// int64 AnswerBy ns ‖ id ‖ uint16 index → nil.
	bAnswer = []byte("answer")
	// bCount counts recipients per state: status byte → int64.
	bCount = []byte("count")
	bucket = [][]byte{bMsg, bBody, bRcpt, bDue, bRef, bOnce, bKV, bRecQ, bMeta, bAnswer, bCount}
)

// schemaVersion 2 added the answer index and the status counters, and keeps
// Delivering recipients in the due index by the end of their lease.
const schemaVersion = "2"

// OpenBolt opens (creating if needed) the embedded store in directory path:
// path/store.db, path/spool/ and path/records.jsonl. Recovery happens here:
// body files without a committed record are removed, recipients that were
// being delivered when the previous process stopped become Queued again
// (due at the end of their lease or after Options.Backoff, whichever is
// first), and delivery records not yet appended to records.jsonl are
// appended. Only one process may have the store open; OpenBolt fails after
// opts.LockTimeout otherwise. Most callers use Open.
func OpenBolt(path string, opts Options) (*Bolt, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.InlineMax == 0 {
		opts.InlineMax = 64 << 10
	}
	if opts.MinFree == 0 {
		opts.MinFree = 64 << 20
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Bolt{
		dir:      path,
		spoolDir: filepath.Join(path, spoolName),
		opts:     opts,
		log:      log,
		ops:      make(chan *writeOp, 4*opts.MaxBatch),
		done:     make(chan struct{}),
		recKick:  make(chan struct{}, 1),
		recQuit:  make(chan struct{}),
		recDone:  make(chan struct{}),
	}
	if err := os.MkdirAll(s.spoolDir, 0o750); err != nil {
		return nil, wrapErr("open: create spool", err)
	}
	db, err := bolt.Open(filepath.Join(path, dbName), 0o640, &bolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bolt.FreelistMapType,
		// A write that grows the file past the mapping must remap, which
		// waits for every open read transaction (a long List, say). Map
		// generously up front (address space only, the file still grows
		// as needed) so that this is rare.
		InitialMmapSize: 256 << 20,
	})
	if err != nil {
		return nil, wrapErr("open database", err)
	}
	s.db = db
	fail := func(err error) (*Bolt, error) {
		db.Close()
		if s.recFile != nil {
			s.recFile.Close()
		}
		return nil, err
	}
	if err := s.db.Update(s.initBuckets); err != nil {
		return fail(wrapErr("open: init", err))
	}
	if err := s.recover(); err != nil {
		return fail(err)
	}
	s.recFile, err = openRecords(filepath.Join(path, recordsName))
	if err != nil {
		return fail(wrapErr("open records", err))
	}
	// Make the entries of store.db, spool/ and records.jsonl durable, in
	// case this Open created them.
	if err := syncDir(path); err != nil {
		return fail(wrapErr("open: sync directory", err))
	}
	go s.committer()
	if err := s.flushRecords(); err != nil {
		// The records stay queued in the database; a full disk must not
		// keep the relay from starting.
		s.log.Error("store: flush delivery records", slog.Any("err", err))
	}
	go s.recorder()
	return s, nil
}

// DefaultBackoff is the default Options.Backoff: 15 s after the first claim,
// doubling with each attempt up to 1 h, with ±10 % jitter.
func DefaultBackoff(attempts int) time.Duration {
	d := 15 * time.Second
	for i := 1; i < attempts && d < time.Hour; i++ {
		d *= 2
	}
	d = min(d, time.Hour)
	return d - d/10 + rand.N(d/5+1)
}

func (s *Bolt) initBuckets(tx *bolt.Tx) error {
	for _, name := range bucket {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bMeta)
	switch v := meta.Get([]byte("version")); {
	case v == nil:
		return meta.Put([]byte("version"), []byte(schemaVersion))
	case string(v) == "1":
		// Version 1 had neither the answer index nor the counters: build
		// them from the recipients. Delivering recipients are not indexed
		// by lease yet; recover, which runs next, requeues them all.
		if err := rebuildIndexes(tx); err != nil {
			return fmt.Errorf("upgrade schema 1 to %s: %w", schemaVersion, err)
		}
		s.log.Info("store: upgraded schema", slog.String("from", "1"), slog.String("to", schemaVersion))
		return meta.Put([]byte("version"), []byte(schemaVersion))
	case string(v) != schemaVersion:
		return fmt.Errorf("schema version %q, want %q", v, schemaVersion)
	}
	return nil
}

// rebuildIndexes rebuilds the answer index and the status counters from
// the recipients.
func rebuildIndexes(tx *bolt.Tx) error {
	for _, name := range [][]byte{bAnswer, bCount} {
		if err := tx.DeleteBucket(name); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	counts := map[Status]int64{}
	ans := tx.Bucket(bAnswer)
	err := tx.Bucket(bRcpt).ForEach(func(k, v []byte) error {
		var r Rcpt
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("rcpt %x: %w", k, err)
		}
		counts[r.Status]++
		if !r.AnswerBy.IsZero() {
			return ans.Put(dueKey(r.AnswerBy, string(k[:idLen]), r.Index), nil)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for st, n := range counts {
		if err := addCount(tx, st, n); err != nil {
			return err
		}
	}
	return nil
}

// recover runs once in OpenBolt, before any other access: it removes spool
// files that no record names (an accept that did not commit) and temporary
// files, and turns every Delivering recipient back into a Queued one. bbolt
// holds an exclusive file lock, so no owner of a claim is alive: the
// recipient is due at the end of its lease or LastAttempt +
// Options.Backoff(Attempts), whichever comes first.
func (s *Bolt) recover() error {
	ents, err := os.ReadDir(s.spoolDir)
	if err != nil {
		return wrapErr("open: read spool", err)
	}
	files := make(map[string]bool, len(ents))
	for _, e := range ents {
		files[e.Name()] = true
	}
	now := s.opts.Now()
	var requeued, missing int
	err = s.db.Update(func(tx *bolt.Tx) error {
		inline := tx.Bucket(bBody)
		err := tx.Bucket(bMsg).ForEach(func(k, _ []byte) error {
			if files[string(k)] {
				delete(files, string(k))
			} else if len(inline.Get(k)) == 0 {
				missing++
				s.log.Error("store: body file missing", slog.String("queue_id", string(k)))
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Collect first: bbolt cursors must not be mutated while iterating.
		var stuck [][]byte
		err = tx.Bucket(bRcpt).ForEach(func(k, v []byte) error {
			var r Rcpt
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("rcpt %x: %w", k, err)
			}
			if r.Status == Delivering {
				stuck = append(stuck, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stuck {
			id, idx := string(k[:idLen]), int(binary.BigEndian.Uint16(k[idLen:]))
			if err := updateRcpt(tx, RcptRef{id, idx}, func(r *Rcpt) error {
				// The owner is dead (the file lock says no other process
				// has the store open): due when its lease ends or, sooner,
				// after the backoff for an interrupted attempt.
				due := r.NextAttempt
				if !r.LastAttempt.IsZero() {
					if b := r.LastAttempt.Add(s.opts.Backoff(r.Attempts)); due.IsZero() || b.Before(due) {
						due = b
					}
				}
				if due.IsZero() {
					due = now
				}
				r.Status = Queued
				r.Owner = ""
				r.NextAttempt = due
				r.Updated = now
				return nil
			}); err != nil {
				return err
			}
			requeued++
		}
		return nil
	})
	if err != nil {
		return wrapErr("open: recover", err)
	}
	removed := 0
	for name := range files {
		if !strings.HasPrefix(name, tmpPrefix) && !validID(name) {
			s.log.Warn("store: unknown file in spool", slog.String("file", name))
			continue
		}
		if err := os.Remove(filepath.Join(s.spoolDir, name)); err != nil {
			return wrapErr("open: remove orphan", err)
		}
		removed++
	}
	if removed > 0 || requeued > 0 || missing > 0 {
		s.log.Info("store: recovered", slog.Int("orphans_removed", removed),
			slog.Int("requeued", requeued), slog.Int("bodies_missing", missing))
	}
	return nil
}

// writeOp is one write waiting for the committer. fn may run more than once
// (when another op in its group fails, the group is retried without it), so
// it must set its results afresh on every run.
type writeOp struct {
	fn        func(*bolt.Tx) error
	syncSpool bool // a body file was renamed into the spool: fsync the directory first
	records   bool // fn queued delivery records
	done      chan error
}

// update runs fn in a write transaction through the group committer and
// returns once it is committed and synced (or failed).
func (s *Bolt) update(ctx context.Context, syncSpool bool, fn func(*bolt.Tx) error) error {
	return s.updateOp(ctx, &writeOp{fn: fn, syncSpool: syncSpool, done: make(chan error, 1)})
}

func (s *Bolt) updateOp(ctx context.Context, op *writeOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if s.boltBatch {
		defer s.mu.RUnlock()
		if op.syncSpool {
			if err := syncDir(s.spoolDir); err != nil {
				return annotate("sync spool", err)
			}
		}
		if err := s.db.Batch(op.fn); err != nil {
			return annotate("commit", err)
		}
		return nil
	}
	select {
	case s.ops <- op:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	// Once queued, wait for the outcome whatever ctx says: the caller must
	// know whether the write is durable.
	err := <-op.done
	if err == nil && op.records {
		select {
		case s.recKick <- struct{}{}:
		default:
		}
	}
	return err
}

// committer is the group commit loop. It takes every write waiting (up to
// MaxBatch) and commits them in one bbolt transaction, so concurrent writers
// share one directory fsync and one database fsync. There is no timer: a
// write that finds the committer idle is committed at once, and writes that
// arrive during a commit form the next group.
func (s *Bolt) committer() {
	defer close(s.done)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	last := 0 // size of the previous group
	for op := range s.ops {
		batch = s.drain(append(batch[:0], op))
		if len(batch) < last && len(batch) < s.opts.MaxBatch {
			// Writers of the previous group are likely still on their
			// way back with their next write: let them run once.
			runtime.Gosched()
			batch = s.drain(batch)
		}
		last = len(batch)
		s.safeCommit(batch)
	}
}

// safeCommit is commit that survives a panic (a bbolt bug, say): every
// write of the group that has no answer yet gets an error, and the
// committer goes on.
func (s *Bolt) safeCommit(batch []*writeOp) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("store: panic in commit: %v", p)
			s.log.Error("store: panic in commit", slog.Any("panic", p))
			for _, op := range batch {
				select {
				case op.done <- err: // done has room for one answer
				default:
				}
			}
		}
	}()
	s.commit(batch)
}

// drain appends the writes already waiting, up to MaxBatch.
func (s *Bolt) drain(batch []*writeOp) []*writeOp {
	for len(batch) < s.opts.MaxBatch {
		select {
		case op, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// commit commits one group of writes and tells each its outcome. It reuses
// batch's backing array.
func (s *Bolt) commit(batch []*writeOp) {
	for _, op := range batch {
		if !op.syncSpool {
			continue
		}
		// One directory fsync makes every rename of the group durable
		// before any of their records commits.
		if err := syncDir(s.spoolDir); err != nil {
			err = annotate("sync spool", err)
			rest := batch[:0]
			for _, op := range batch {
				if op.syncSpool {
					op.done <- err
				} else {
					rest = append(rest, op)
				}
			}
			batch = rest
		}
		break
	}
	if len(batch) == 0 {
		return
	}
	s.commits.Add(1)
	s.grouped.Add(int64(len(batch)))
	for len(batch) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, op := range batch {
				if err := safeCall(op.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			// Tell the failing op and retry the rest without it.
			batch[failed].done <- err
			batch = append(batch[:failed], batch[failed+1:]...)
			continue
		}
		if err != nil {
			err = annotate("commit", err)
		}
		for _, op := range batch {
			op.done <- err
		}
		return
	}
}

// safeCall runs fn, turning a panic into an error so one bad write cannot
// kill the committer.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: panic in write: %v", p)
		}
	}()
	return fn(tx)
}

func (s *Bolt) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Close stops accepting writes, lets queued ones commit, flushes delivery
// records and closes the database. It is safe to call more than once.
func (s *Bolt) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	close(s.recQuit)
	select {
	case <-s.recDone:
	case <-time.After(10 * time.Second):
		// The recorder is stuck in I/O and may still write through the
		// committer: leave both running rather than risk a panic.
		return errors.New("store: close: delivery records flush timed out")
	}
	var errs []error
	close(s.ops) // no sender left: public senders check closed, the recorder stopped
	<-s.done
	if err := s.recFile.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: close records: %w", err))
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: close database: %w", err))
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so that renames and unlinks in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileSync writes the whole of r to a new file in dir via a temporary
// name, fsyncs it and renames it to name. The caller syncs dir. It returns
// the number of bytes written.
func writeFileSync(dir, name string, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// CommitStats returns how many database commits were made and how many
// writes they carried since Open; writes/commits is the group commit factor.
func (s *Bolt) CommitStats() (commits, writes int64) {
	return s.commits.Load(), s.grouped.Load()
}
