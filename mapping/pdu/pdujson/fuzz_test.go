package pdujson

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// FuzzView: whatever the lenient decoder takes, the view of it marshals to
// valid JSON without panicking. Seeded with the codec's own fuzz seeds and
// the shared corpus PDUs, read where they lie.
func FuzzView(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "FuzzDecode", "*"))
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			if v, err := unquoteSeed(b); err == nil {
				f.Add(v)
			}
		}
	}
	filepath.WalkDir(testcorpus.Dir(f, "pdu"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
				f.Add(b)
			}
		}
		return nil
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := pdu.Decode(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(View(m))
		if err != nil {
			t.Fatalf("Marshal(View) = %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("View marshalled to invalid JSON: %q", out)
		}
	})
}

// unquoteSeed reads the one []byte value of a file in Go's fuzz corpus
// format ("go test fuzz v1", then `[]byte("...")`).
func unquoteSeed(b []byte) ([]byte, error) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a one-value fuzz seed")
	}
	v := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
	s, err := strconv.Unquote(v)
	return []byte(s), err
}
