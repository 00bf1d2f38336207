package relay

import "testing"

// TestHeaderTee: the tee keeps the header block, whatever the line ends
// and however the body arrives in pieces, and no more than max bytes.
func TestHeaderTee(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		max            int
	}{
		{"crlf", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n\r\n", 1 << 10},
		{"lf", "A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n\n", 1 << 10},
		{"mixed", "A: 1\nB: 2\n\r\nbody\r\n", "A: 1\nB: 2\n\r\n", 1 << 10},
		{"no body", "A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n", 1 << 10},
		{"over max", "A: 1234567890\r\n\r\nbody", "A: 12345", 8},
	} {
		for _, step := range []int{1, 2, 3, 7, 1 << 10} {
			h := &headerTee{max: c.max}
			for in := c.in; in != ""; {
				n := min(step, len(in))
				if k, err := h.Write([]byte(in[:n])); k != n || err != nil {
					t.Fatalf("%s: Write = %d, %v", c.name, k, err)
				}
				in = in[n:]
			}
			if got := h.buf.String(); got != c.want {
				t.Errorf("%s, pieces of %d: kept %q, want %q", c.name, step, got, c.want)
			}
		}
	}
}
