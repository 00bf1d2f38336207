package mimesplit

import (
	"bytes"
	"testing"
)

// FuzzSplit feeds arbitrary bytes to every splitter: none may panic, and
// every piece they return must lie inside the input (they return
// subslices, never copies).
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"A: 1\r\nB: 2\r\n\r\nbody\r\n",
		"pre\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n--b--\r\nepilogue",
		"--b\none\n--b",
		"--b",
		"\n\r\n--b\r\n--b--",
		"A: 1\n\n",
	} {
		f.Add([]byte(s), "b")
	}
	f.Fuzz(func(t *testing.T, in []byte, boundary string) {
		inside := func(what string, p []byte) {
			if len(p) == 0 {
				return
			}
			start := bytes.Index(in, p)
			if start < 0 {
				t.Fatalf("%s returned %q, which is not in the input", what, p)
			}
		}
		if i, n := HeaderEnd(in); i >= 0 && (i+n > len(in) || n < 1 || n > 2) {
			t.Fatalf("HeaderEnd = %d, %d for %d bytes", i, n, len(in))
		}
		h, b := Entity(in)
		inside("Entity header", h)
		inside("Entity body", b)
		if len(h)+len(b) > len(in) {
			t.Fatalf("Entity returned %d+%d bytes of %d", len(h), len(b), len(in))
		}
		if boundary == "" {
			return
		}
		parts, _ := Multipart(in, boundary)
		for _, p := range parts {
			inside("Multipart part", p)
		}
		LooksLikeHeader(in)
	})
}
