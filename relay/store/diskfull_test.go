package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
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

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestAcceptReserveStreamed checks the free-space reserve against bodies
// whose length Accept learns only by reading them (an SMTP DATA stream
// without SIZE), inline and spooled, with the free-space function faked:
// a body larger than the room above the reserve is refused with
// ErrDiskFull and leaves no record and no spool file behind.
func TestAcceptReserveStreamed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const reserve = 1000
	s, err := OpenBolt(dir, Options{MinFree: reserve, InlineMax: 100})
	tcheck(t, err, "Open")
	defer s.Close()
	var free atomic.Int64
	var statfsCalls atomic.Int64
	s.freeSpace = func() (int64, error) { statfsCalls.Add(1); return free.Load(), nil }
	// A reader that does not tell its length.
	stream := func(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }
	wantFull := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, ErrDiskFull) {
			t.Fatalf("%s = %v, want ErrDiskFull", what, err)
		}
	}
	var accepted []string
	accept := func(r io.Reader, what string) string {
		t.Helper()
		id, err := s.Accept(ctx, testEnv("+1"), r)
		tcheck(t, err, what)
		accepted = append(accepted, id)
		return id
	}

	// Inline bodies, 50 bytes of room.
	free.Store(reserve + 50)
	_, err = s.Accept(ctx, testEnv("+1"), stream(make([]byte, 80)))
	wantFull(err, "Accept(streamed inline 80 bytes, room 50)")
	_, err = s.Accept(ctx, testEnv("+1"), bytes.NewReader(make([]byte, 80)))
	wantFull(err, "Accept(inline 80 bytes of known length, room 50)")
	accept(stream(make([]byte, 50)), "Accept(streamed inline 50 bytes, room 50)")

	// Spooled bodies, 500 bytes of room: a large stream stops early.
	free.Store(reserve + 500)
	big := &countingReader{r: io.LimitReader(newPattern(3), 10<<20)}
	_, err = s.Accept(ctx, testEnv("+1"), big)
	wantFull(err, "Accept(streamed 10 MB, room 500)")
	if big.n > 1<<20 {
		t.Fatalf("Accept read %d bytes of a body that could not fit in 500", big.n)
	}
	_, err = s.Accept(ctx, testEnv("+1"), stream(make([]byte, 501)))
	wantFull(err, "Accept(streamed 501 bytes, room 500)")
	spooled := accept(stream(make([]byte, 500)), "Accept(streamed spooled 500 bytes, room 500)")

	// The file fits but, once written, free space is under the reserve
	// (another accept took it meanwhile): refused before the commit.
	statfsCalls.Store(0)
	s.freeSpace = func() (int64, error) {
		if statfsCalls.Add(1) == 1 {
			return reserve + 500, nil
		}
		return reserve - 1, nil
	}
	_, err = s.Accept(ctx, testEnv("+1"), stream(make([]byte, 300)))
	wantFull(err, "Accept(spooled 300 bytes, under the reserve once written)")
	if n := statfsCalls.Load(); n != 2 {
		t.Fatalf("free space read %d times for a spooled accept, want 2 (before and after the file)", n)
	}

	// Nothing of the refused accepts is left: no record, no spool file.
	ents, err := os.ReadDir(filepath.Join(dir, spoolName))
	tcheck(t, err, "read spool")
	if len(ents) != 1 || ents[0].Name() != spooled {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("spool = %v, want only %s", names, spooled)
	}
	ms, err := s.List(ctx, ListOptions{})
	tcheck(t, err, "List")
	if got := ids(ms); fmt.Sprint(got) != fmt.Sprint(accepted) {
		t.Fatalf("List = %v, want the accepted %v", got, accepted)
	}
}
