package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// storeDir is where the embedded store of cfg lives.
func storeDir(cfg *config.Config) string {
	return filepath.Join(cfg.Server.DataDir, "store")
}

// storeExists reports whether cfg's embedded store has been created, so
// that a command inspecting it does not create an empty one.
func storeExists(cfg *config.Config) bool {
	_, err := os.Stat(storeDir(cfg))
	return err == nil
}

// openStore opens the store cfg describes; every command that opens the
// store comes through here. log may be nil.
func openStore(cfg *config.Config, log *slog.Logger) (*store.Backend, error) {
	return store.Open(store.Config{
		Dir:     storeDir(cfg),
		MinFree: cfg.SMTP.MinFreeDiskBytes,
		Logger:  log,
	})
}
