package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ClaimOnce implements KV.ClaimOnce. Expired keys are overwritten here
// and removed by Purge.
func (s *Bolt) ClaimOnce(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("store: claim once: %w: empty key", ErrInvalid)
	}
	now := s.opts.Now()
	var first bool
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		b := tx.Bucket(bOnce)
		if v := b.Get([]byte(key)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixNano() {
			first = false
			return nil
		}
		first = true
		return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(now.Add(ttl).UnixNano())))
	})
	if err != nil {
		return false, fmt.Errorf("store: claim once: %w", err)
	}
	return first, nil
}

func checkTable(t Table) error {
	if t == "" {
		return fmt.Errorf("%w: empty table name", ErrInvalid)
	}
	return nil
}

// PutKV implements KV.PutKV.
func (s *Bolt) PutKV(ctx context.Context, table Table, key string, v any) error {
	_, err := s.putKV(ctx, "put", table, key, v, false)
	return err
}

// PutKVIfAbsent implements KV.PutKVIfAbsent.
func (s *Bolt) PutKVIfAbsent(ctx context.Context, table Table, key string, v any) (bool, error) {
	return s.putKV(ctx, "put if absent", table, key, v, true)
}

func (s *Bolt) putKV(ctx context.Context, what string, table Table, key string, v any, ifAbsent bool) (bool, error) {
	if err := checkTable(table); err != nil {
		return false, fmt.Errorf("store: %s: %w", what, err)
	}
	if key == "" {
		return false, fmt.Errorf("store: %s %s: %w: empty key", what, table, ErrInvalid)
	}
	js, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("store: %s %s/%s: %w", what, table, key, err)
	}
	var stored bool
	err = s.update(ctx, false, func(tx *bolt.Tx) error {
		stored = false
		b, err := tx.Bucket(bKV).CreateBucketIfNotExists([]byte(table))
		if err != nil {
			return err
		}
		if ifAbsent && b.Get([]byte(key)) != nil {
			return nil
		}
		stored = true
		return b.Put([]byte(key), js)
	})
	if err != nil {
		return false, fmt.Errorf("store: %s %s/%s: %w", what, table, key, err)
	}
	return stored, nil
}

// GetKV implements KV.GetKV.
func (s *Bolt) GetKV(ctx context.Context, table Table, key string, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var js []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bKV).Bucket([]byte(table))
		if b == nil {
			return ErrNotFound
		}
		val := b.Get([]byte(key))
		if val == nil {
			return ErrNotFound
		}
		js = bytes.Clone(val) // val is only valid inside the transaction
		return nil
	})
	if err == nil {
		err = json.Unmarshal(js, v)
	}
	if err != nil {
		return fmt.Errorf("store: get %s/%s: %w", table, key, err)
	}
	return nil
}

// DeleteKV implements KV.DeleteKV.
func (s *Bolt) DeleteKV(ctx context.Context, table Table, key string) error {
	err := s.update(ctx, false, func(tx *bolt.Tx) error {
		b := tx.Bucket(bKV).Bucket([]byte(table))
		if b == nil {
			return nil
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", table, key, err)
	}
	return nil
}

// ScanKV implements KV.ScanKV.
func (s *Bolt) ScanKV(ctx context.Context, table Table, prefix string, limit int) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Entry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bKV).Bucket([]byte(table))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			out = append(out, Entry{Key: string(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scan %s: %w", table, err)
	}
	return out, nil
}
