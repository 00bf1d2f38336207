package store

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestSchemaUpgrade opens a database as version 1 left it (no answer
// index, no counters) and checks that Open builds both from the
// recipients, and requeues a claim left open.
func TestSchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenBolt(dir, Options{MinFree: -1})
	tcheck(t, err, "OpenBolt")
	id, err := s.Accept(ctx, testEnv("+1", "+2", "+3"), bytes.NewReader([]byte("body")))
	tcheck(t, err, "Accept")
	now := time.Now().Add(time.Second)
	jobs, err := s.Claim(ctx, ClaimRequest{Owner: "A", Now: now, Lease: time.Minute, Limit: 2})
	tcheck(t, err, "Claim")
	by := now.Add(time.Hour)
	tcheck(t, s.Record(ctx, Update{Ref: RcptRef{id, 0}, Op: OpDelivered, Lease: jobs[0].Lease(0), AnswerBy: by}), "Record")
	tcheck(t, s.Close(), "Close")

	db, err := bolt.Open(filepath.Join(dir, dbName), 0o640, nil)
	tcheck(t, err, "bolt.Open")
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bAnswer, bCount} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put([]byte("version"), []byte("1"))
	})
	tcheck(t, err, "downgrade")
	tcheck(t, db.Close(), "bolt Close")

	s, err = OpenBolt(dir, Options{MinFree: -1})
	tcheck(t, err, "OpenBolt after downgrade")
	defer s.Close()
	c, err := s.Counts(ctx)
	tcheck(t, err, "Counts")
	if len(c) != 2 || c[Delivered] != 1 || c[Queued] != 2 {
		t.Fatalf("Counts after upgrade = %v, want 1 delivered, 2 queued (one requeued claim)", c)
	}
	refs, err := s.Awaiting(ctx, by, 0)
	tcheck(t, err, "Awaiting")
	if len(refs) != 1 || refs[0] != (RcptRef{id, 0}) {
		t.Fatalf("Awaiting after upgrade = %v", refs)
	}
}
