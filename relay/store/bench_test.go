package store

import (
	"bytes"
	"context"
	"testing"
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
