package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDiskFullReal fills a small tmpfs (needs root, as on the project's
// machines and CI; skipped elsewhere) and checks that a real ENOSPC, from a
// spool file or from a bbolt commit, comes out as ErrDiskFull, leaves nothing
// behind, and that the store still works and keeps what it acknowledged.
func TestDiskFullReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	ctx := context.Background()
	s, err := OpenBolt(dir, Options{MinFree: -1}) // no reserve: hit the real ENOSPC
	tcheck(t, err, "Open")
	defer func() { s.Close() }()

	// A spooled body larger than the file system.
	big := bytes.Repeat([]byte("x"), 8<<20)
	if _, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader(big)); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Accept(8 MiB on 4 MiB) = %v, want ErrDiskFull", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, spoolName)); len(ents) != 0 {
		t.Fatalf("spool after ENOSPC = %v, want empty", ents)
	}
	id, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("small")))
	tcheck(t, err, "Accept after ENOSPC")

	// Inline bodies until a bbolt commit fails.
	acked := []string{id}
	body := bytes.Repeat([]byte("y"), 60<<10)
	for i := 0; ; i++ {
		if i > 200 {
			t.Fatal("no ENOSPC after 12 MB on a 4 MiB file system")
		}
		id, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader(body))
		if err != nil {
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("Accept #%d on a full file system = %v, want ErrDiskFull", i, err)
			}
			t.Logf("ENOSPC after %d inline accepts: %v", i, err)
			break
		}
		acked = append(acked, id)
	}
	tcheck(t, s.Close(), "Close")
	s, err = OpenBolt(dir, Options{MinFree: -1})
	tcheck(t, err, "reopen on a full file system")
	for _, id := range acked {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("acknowledged %s after ENOSPC and reopen: %v", id, err)
		}
	}
}
