package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Delivery records reach records.jsonl in two steps. The transaction that
// makes a recipient final also puts its Record in the recq bucket, so the
// record is exactly as durable as the state change. After the commit the
// recorder appends queued records to records.jsonl, fsyncs the file and only
// then deletes them from recq. A crash between append and delete repeats
// lines on the next Open; none is lost.

const recFlushMax = 1000

// recorder appends queued records whenever a commit queued some, until
// Close, when it flushes a last time.
func (s *Bolt) recorder() {
	defer close(s.recDone)
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("store: recorder panic", slog.Any("panic", p))
		}
	}()
	for {
		select {
		case <-s.recKick:
		case <-s.recQuit:
			if err := s.flushRecords(); err != nil {
				s.log.Error("store: flush delivery records", slog.Any("err", err))
			}
			return
		}
		if err := s.flushRecords(); err != nil {
			// The records stay queued; the next kick or Open retries.
			s.log.Error("store: flush delivery records", slog.Any("err", err))
		}
	}
}

// flushRecords moves every queued record to records.jsonl. It needs the
// committer running and is called only from Open and the recorder.
func (s *Bolt) flushRecords() error {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	for {
		var keys [][]byte
		var buf bytes.Buffer
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bRecQ).Cursor()
			for k, v := c.First(); k != nil && len(keys) < recFlushMax; k, v = c.Next() {
				keys = append(keys, bytes.Clone(k))
				buf.Write(v)
				buf.WriteByte('\n')
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: read record queue: %w", err)
		}
		if len(keys) == 0 {
			return nil
		}
		if _, err := s.recFile.Write(buf.Bytes()); err != nil {
			return wrapErr("append records", err)
		}
		if err := s.recFile.Sync(); err != nil {
			return wrapErr("sync records", err)
		}
		op := &writeOp{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			b := tx.Bucket(bRecQ)
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}}
		s.ops <- op // the committer runs until the recorder has stopped
		if err := <-op.done; err != nil {
			return fmt.Errorf("store: dequeue records: %w", err)
		}
		if len(keys) < recFlushMax {
			return nil
		}
	}
}

// openRecords opens records.jsonl for appending. If the last line is
// partial (a crash during an append), it ends it with a newline so the next
// record starts on a line of its own; readers skip lines that do not parse.
func openRecords(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 {
		var last [1]byte
		if _, err = f.ReadAt(last[:], fi.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Purge implements Admin.Purge. Records are removed by rewriting
// records.jsonl (temporary file, fsync, rename); lines that do not parse
// are dropped with them.
func (s *Bolt) Purge(ctx context.Context, now time.Time, opts PurgeOptions) (PurgeStats, error) {
	var st PurgeStats
	if opts.Messages > 0 {
		n, err := s.purgeMessages(ctx, now.Add(-opts.Messages))
		st.Messages = n
		if err != nil {
			return st, err
		}
	}
	var expired int
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		expired = 0
		b := tx.Bucket(bOnce)
		var keys [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) <= now.UnixNano() {
				keys = append(keys, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		expired = len(keys)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("store: purge keys: %w", err)
	}
	st.Keys = expired
	if opts.Records > 0 {
		n, err := s.purgeRecords(now.Add(-opts.Records))
		st.Records = n
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// purgeMessages deletes finished messages last updated before cutoff: first
// the records (commit), then the body files, so a crash in between leaves
// only orphan files, which Open removes.
func (s *Bolt) purgeMessages(ctx context.Context, cutoff time.Time) (int, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bMsg).ForEach(func(k, _ []byte) error {
			m, err := loadMessage(tx, string(k))
			if err != nil {
				return err
			}
			if !m.Done() {
				return nil
			}
			last := m.Created
			for _, r := range m.Rcpts {
				if r.Updated.After(last) {
					last = r.Updated
				}
			}
			if last.Before(cutoff) {
				ids = append(ids, m.ID)
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	err = s.update(ctx, false, func(tx *bolt.Tx) error {
		var refs [][]byte
		err := tx.Bucket(bRef).ForEach(func(k, _ []byte) error {
			if len(k) >= idLen+2 && set[string(k[len(k)-idLen-2:len(k)-2])] {
				refs = append(refs, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, err := loadMessage(tx, id)
			if err != nil {
				return err
			}
			for i := range m.Rcpts {
				if err := deleteRcpt(tx, id, &m.Rcpts[i]); err != nil {
					return err
				}
			}
			if err := tx.Bucket(bBody).Delete([]byte(id)); err != nil {
				return err
			}
			if err := tx.Bucket(bMsg).Delete([]byte(id)); err != nil {
				return err
			}
		}
		for _, k := range refs {
			if err := tx.Bucket(bRef).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purge messages: %w", err)
	}
	for _, id := range ids {
		if err := os.Remove(filepath.Join(s.spoolDir, id)); err != nil && !os.IsNotExist(err) {
			s.log.Warn("store: purge: remove body", slog.String("queue_id", id), slog.Any("err", err))
		}
	}
	if err := syncDir(s.spoolDir); err != nil {
		s.log.Warn("store: purge: sync spool", slog.Any("err", err))
	}
	return len(ids), nil
}

// purgeRecords rewrites records.jsonl without the records before cutoff.
func (s *Bolt) purgeRecords(cutoff time.Time) (int, error) {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	path := filepath.Join(s.dir, recordsName)
	in, err := os.Open(path)
	if err != nil {
		return 0, wrapErr("purge records", err)
	}
	defer in.Close()
	var keep bytes.Buffer
	removed := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var r struct{ Time time.Time }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Time.Before(cutoff) {
			removed++
			continue
		}
		keep.Write(sc.Bytes())
		keep.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return 0, wrapErr("purge records: read", err)
	}
	if removed == 0 {
		return 0, nil
	}
	if _, err := writeFileSync(s.dir, recordsName, &keep); err != nil {
		return 0, wrapErr("purge records: write", err)
	}
	if err := syncDir(s.dir); err != nil {
		return 0, wrapErr("purge records: sync", err)
	}
	f, err := openRecords(path)
	if err != nil {
		return 0, wrapErr("purge records: reopen", err)
	}
	s.recFile.Close()
	s.recFile = f
	return removed, nil
}
