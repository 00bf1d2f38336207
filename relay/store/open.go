package store

import (
	"fmt"
	"log/slog"
)

// Config says which store to open. It is what the relay's configuration
// gives; Open turns it into a Backend.
type Config struct {
	// Backend names the implementation: "" or "bolt" is the embedded
	// bbolt store, the only one so far.
	Backend string
	// Dir is the embedded store's directory.
	Dir string
	// MinFree is the free space, in bytes, kept in reserve (see
	// Options.MinFree).
	MinFree int64
	// Logger receives the store's warnings; nil discards them.
	Logger *slog.Logger
}

// Open opens the store cfg names. It is the one place a store is opened,
// so that a second backend is a case here and a configuration setting.
func Open(cfg Config) (*Backend, error) {
	switch cfg.Backend {
	case "", "bolt":
		if cfg.Dir == "" {
			return nil, fmt.Errorf("store: open: %w: no directory", ErrInvalid)
		}
		b, err := OpenBolt(cfg.Dir, Options{Logger: cfg.Logger, MinFree: cfg.MinFree})
		if err != nil {
			return nil, err
		}
		return b.Backend(), nil
	}
	return nil, fmt.Errorf("store: open: %w: unknown backend %q", ErrInvalid, cfg.Backend)
}

// Backend returns s as a Backend bundle; its Close closes s.
func (s *Bolt) Backend() *Backend {
	return &Backend{Queue: s, Admin: s, KV: s, Space: s, Close: s.Close}
}
