package store

import (
	"context"
	"fmt"
	"io"
)

// byteser is a Body that already holds its bytes in memory (the inline
// body of Bolt); ReadBody returns them without copying.
type byteser interface{ Bytes() []byte }

// ReadBody returns the whole body of message id, read once: an in-memory
// body's bytes as they are, a spooled one into a buffer of its known size.
// It returns an error wrapping ErrInvalid if the body is larger than max
// (max <= 0: no limit). The caller owns the result.
func ReadBody(ctx context.Context, q Queue, id string, max int64) ([]byte, error) {
	b, err := q.Body(ctx, id)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	size := b.Size()
	if max > 0 && size > max {
		return nil, fmt.Errorf("store: read body %s: %w: %d bytes, limit %d", id, ErrInvalid, size, max)
	}
	if bb, ok := b.(byteser); ok {
		return bb.Bytes(), nil
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(b, buf); err != nil {
		return nil, fmt.Errorf("store: read body %s: %w", id, err)
	}
	return buf, nil
}
