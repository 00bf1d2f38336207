package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"syscall"
)

// wrapErr adds context to err and marks out-of-space errors (ENOSPC, EDQUOT)
// with ErrDiskFull, keeping the original error in the chain too.
func wrapErr(what string, err error) error {
	if isDiskFull(err) && !errors.Is(err, ErrDiskFull) {
		return fmt.Errorf("store: %s: %w: %w", what, ErrDiskFull, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// annotate is wrapErr for errors that a public method wraps again.
func annotate(what string, err error) error {
	if isDiskFull(err) && !errors.Is(err, ErrDiskFull) {
		return fmt.Errorf("%s: %w: %w", what, ErrDiskFull, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// FreeSpace returns the bytes available to this process on the file system
// holding the store (statfs f_bavail × f_bsize).
func (s *Bolt) FreeSpace() (int64, error) {
	if s.freeSpace != nil {
		return s.freeSpace()
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return 0, fmt.Errorf("store: statfs %s: %w", s.dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// CheckSpace implements SpaceChecker.CheckSpace.
func (s *Bolt) CheckSpace(ctx context.Context, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkSpace(size); err != nil {
		return fmt.Errorf("store: check space: %w", err)
	}
	return nil
}

func (s *Bolt) checkSpace(size int64) error {
	room, err := s.room()
	if err != nil {
		return err
	}
	if size > room {
		return s.noRoom(room, size)
	}
	return nil
}

// room returns how many bytes may be stored before free space falls under
// Options.MinFree (negative if it already has): math.MaxInt64 when there
// is no reserve.
func (s *Bolt) room() (int64, error) {
	if s.opts.MinFree < 0 {
		return math.MaxInt64, nil
	}
	free, err := s.FreeSpace()
	if err != nil {
		return 0, err
	}
	return free - s.opts.MinFree, nil
}

// noRoom is the error for size bytes that do not fit in room.
func (s *Bolt) noRoom(room, size int64) error {
	return fmt.Errorf("%w: %d bytes free, need %d plus a reserve of %d",
		ErrDiskFull, room+s.opts.MinFree, size, s.opts.MinFree)
}

// roomReader reads from r and fails with an error wrapping ErrDiskFull once
// more than room bytes have been read: a body streamed without a known
// length stops as soon as it would eat into the reserve.
type roomReader struct {
	s    *Bolt
	r    io.Reader
	room int64
	n    int64
}

func (rr *roomReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.n += int64(n)
	if rr.n > rr.room {
		return n, rr.s.noRoom(rr.room, rr.n)
	}
	return n, err
}
