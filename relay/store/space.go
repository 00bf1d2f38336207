package store

import (
	"context"
	"errors"
	"fmt"
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
	if s.opts.MinFree < 0 {
		return nil
	}
	free, err := s.FreeSpace()
	if err != nil {
		return err
	}
	if free-size < s.opts.MinFree {
		return fmt.Errorf("%w: %d bytes free, need %d plus a reserve of %d", ErrDiskFull, free, size, s.opts.MinFree)
	}
	return nil
}
