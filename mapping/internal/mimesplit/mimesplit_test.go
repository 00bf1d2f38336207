package mimesplit

import (
	"reflect"
	"testing"
)

func TestEntity(t *testing.T) {
	for _, c := range []struct{ in, h, b string }{
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", "body\r\n"},
		{"A: 1\n\nbody", "A: 1\n", "body"},
		{"\r\nbody only", "", "body only"},
		{"A: header only", "A: header only", ""},
		{"no header at all", "", "no header at all"},
	} {
		h, b := Entity([]byte(c.in))
		if string(h) != c.h || string(b) != c.b {
			t.Errorf("Entity(%q) = %q, %q; want %q, %q", c.in, h, b, c.h, c.b)
		}
	}
}

func TestMultipart(t *testing.T) {
	for _, c := range []struct {
		in     string
		parts  []string
		closed bool
	}{
		{"pre\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n--b--\r\nepilogue", []string{"A: 1\r\n\r\none", "\r\ntwo"}, true},
		{"--b\none\n--b\ntwo\n", []string{"one", "two\n"}, false},
		{"--b\none\n--b", []string{"one"}, false},
		{"--b\none\n--b\n", []string{"one", ""}, false},
		{"no boundary here", nil, false},
	} {
		parts, closed := Multipart([]byte(c.in), "b")
		var got []string
		for _, p := range parts {
			got = append(got, string(p))
		}
		if !reflect.DeepEqual(got, c.parts) || closed != c.closed {
			t.Errorf("Multipart(%q) = %q, %v; want %q, %v", c.in, got, closed, c.parts, c.closed)
		}
	}
}

// TestMultipartBoundaryAtEnd: a body that ends with a boundary line and
// no line break has a boundary but no part: an empty list, not nil (nil
// means no boundary line at all).
func TestMultipartBoundaryAtEnd(t *testing.T) {
	for _, body := range []string{"preamble\r\n--b", "preamble\n--b", "--b"} {
		parts, closed := Multipart([]byte(body), "b")
		if parts == nil || len(parts) != 0 || closed {
			t.Errorf("Multipart(%q) = %q, %v; want no parts (not nil), not closed", body, parts, closed)
		}
	}
	if parts, _ := Multipart([]byte("no boundary here\r\n"), "b"); parts != nil {
		t.Errorf("Multipart without a boundary line = %q, want nil", parts)
	}
}
