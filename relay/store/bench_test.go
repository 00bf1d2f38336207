package store

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAccept measures durable accepts of 20 KB bodies, kept inline in
// the database (the default for bodies up to 64 KiB) or in spool files (as
// bodies over InlineMax are): one at a time (every accept pays its own
// fsyncs), from 32 goroutines with group commit, and from 32 goroutines with
// group commit off (MaxBatch 1).
func BenchmarkAccept(b *testing.B) {
	body := make([]byte, 20<<10)
	newPattern(1).Read(body)
	env := testEnv("+15550000001")
	ctx := context.Background()
	run := func(b *testing.B, opts Options, parallel bool) {
		s, err := OpenBolt(b.TempDir(), opts)
		if err != nil {
			b.Fatal(err)
		}
		s.boltBatch = opts.MaxBatch < 0
		defer s.Close()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		if parallel {
			b.SetParallelism(16) // 16 × GOMAXPROCS goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Accept(ctx, env, bytes.NewReader(body)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		} else {
			for b.Loop() {
				if _, err := s.Accept(ctx, env, bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
		if commits, writes := s.CommitStats(); commits > 0 {
			b.ReportMetric(float64(writes)/float64(commits), "writes/commit")
		}
	}
	spool := Options{InlineMax: -1}
	nogroup := Options{InlineMax: -1, MaxBatch: 1}
	b.Run("inline/serial", func(b *testing.B) { run(b, Options{}, false) })
	b.Run("inline/parallel", func(b *testing.B) { run(b, Options{}, true) })
	b.Run("inline/parallel-nogroup", func(b *testing.B) { run(b, Options{MaxBatch: 1}, true) })
	boltBatch := Options{MaxBatch: -1} // bbolt's DB.Batch (10 ms window) instead of our committer
	b.Run("inline/serial-boltbatch", func(b *testing.B) { run(b, boltBatch, false) })
	b.Run("inline/parallel-boltbatch", func(b *testing.B) { run(b, boltBatch, true) })
	b.Run("spool/serial", func(b *testing.B) { run(b, spool, false) })
	b.Run("spool/parallel", func(b *testing.B) { run(b, spool, true) })
	b.Run("spool/parallel-nogroup", func(b *testing.B) { run(b, nogroup, true) })
}

// prefill accepts n messages of rcpts recipients each, from 32 goroutines
// so that group commit keeps it quick.
func prefill(b *testing.B, s *Bolt, n, rcpts int) {
	b.Helper()
	var nums []string
	for i := range rcpts {
		nums = append(nums, fmt.Sprintf("+1555000%04d", i))
	}
	env := testEnv(nums...)
	body := []byte("Subject: bench\r\n\r\nhello\r\n")
	var wg sync.WaitGroup
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := s.Accept(context.Background(), env, bytes.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkClaim measures claims of 10 recipients (one message) at a time,
// serially, from a queue of b.N such messages.
func BenchmarkClaim(b *testing.B) {
	s, err := OpenBolt(b.TempDir(), Options{MinFree: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	prefill(b, s, b.N, 10)
	ctx := context.Background()
	req := ClaimRequest{Owner: "bench", Now: time.Now().Add(time.Second), Lease: time.Minute, Limit: 10}
	b.ResetTimer()
	for range b.N {
		jobs, err := s.Claim(ctx, req)
		if err != nil || len(jobs) != 1 || len(jobs[0].Rcpts) != 10 {
			b.Fatalf("Claim = %d jobs, %v", len(jobs), err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "rcpts/s")
}

// BenchmarkRecord measures recording the outcome of the 10 claimed
// recipients of one message: one Record of the group (one commit) against
// ten Record calls of one update each.
func BenchmarkRecord(b *testing.B) {
	run := func(b *testing.B, group bool) {
		s, err := OpenBolt(b.TempDir(), Options{MinFree: -1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		prefill(b, s, b.N, 10)
		ctx := context.Background()
		jobs, err := s.Claim(ctx, ClaimRequest{Owner: "bench", Now: time.Now().Add(time.Second), Lease: time.Hour, Limit: 10 * b.N})
		if err != nil || len(jobs) != b.N {
			b.Fatalf("Claim = %d jobs, %v", len(jobs), err)
		}
		b.ResetTimer()
		for i := range b.N {
			j := jobs[i]
			ups := make([]Update, 0, len(j.Rcpts))
			for _, idx := range j.Rcpts {
				ups = append(ups, Update{Ref: RcptRef{j.Message.ID, idx}, Op: OpDelivered, Lease: j.Lease(idx), PeerID: "p"})
			}
			if group {
				err = s.Record(ctx, ups...)
			} else {
				for _, u := range ups {
					if err = s.Record(ctx, u); err != nil {
						break
					}
				}
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(10*b.N)/b.Elapsed().Seconds(), "rcpts/s")
	}
	b.Run("group10", func(b *testing.B) { run(b, true) })
	b.Run("single10", func(b *testing.B) { run(b, false) })
}
