// Package testcorpus finds the shared third-party test corpus
// (../shared/corpus beside the repository) for tests. The files are read
// where they lie; they are never copied into the repository.
package testcorpus

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// Dir returns the corpus directory sub (e.g. "pdu") below shared/corpus.
// MMSRELAY_SHARED overrides the location of shared/. When the corpus is
// absent the test is skipped with a message saying so.
func Dir(tb testing.TB, sub string) string {
	tb.Helper()
	d := filepath.Join(SharedDir(), "corpus", sub)
	if _, err := os.Stat(d); err != nil {
		tb.Skipf("test corpus not found at %s (set MMSRELAY_SHARED): %v", d, err)
	}
	return d
}

// SharedDir returns the shared/ directory beside the repository root.
func SharedDir() string {
	if d := os.Getenv("MMSRELAY_SHARED"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return "shared"
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared")
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(wd, "..", "shared")
		}
		d = parent
	}
}

// Files returns the regular files below the corpus directory sub, sorted,
// skipping the test when the corpus is absent.
func Files(tb testing.TB, sub string) []string {
	tb.Helper()
	root := Dir(tb, sub)
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("walking %s: %v", root, err)
	}
	sort.Strings(out)
	return out
}
