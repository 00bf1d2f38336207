package pdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// dehex turns "8c 80 98" into bytes.
func dehex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatalf("dehex(%q): %v", s, err)
	}
	return b
}

func TestUintvar(t *testing.T) {
	tests := []struct {
		v   uint64
		hex string
	}{
		{0, "00"}, {127, "7f"}, {128, "81 00"}, {300, "82 2c"}, {16383, "ff 7f"},
		{16384, "81 80 00"}, {0xFFFFFFFF, "8f ff ff ff 7f"},
	}
	for _, tt := range tests {
		want := dehex(t, tt.hex)
		if got := appendUintvar(nil, tt.v); !bytes.Equal(got, want) {
			t.Errorf("appendUintvar(%d) = % x, want % x", tt.v, got, want)
		}
		if n := uintvarLen(tt.v); n != len(want) {
			t.Errorf("uintvarLen(%d) = %d, want %d", tt.v, n, len(want))
		}
		r := &reader{b: want, strict: true}
		got, err := r.uintvar()
		if err != nil || got != tt.v || r.off != len(want) {
			t.Errorf("uintvar(% x) = %d, %v (off %d), want %d", want, got, err, r.off, tt.v)
		}
	}
	// Android writes 127 as 80 7f: lenient reads it, strict refuses it.
	if v, err := (&reader{b: dehex(t, "80 7f")}).uintvar(); err != nil || v != 127 {
		t.Errorf("lenient uintvar(80 7f) = %d, %v; want 127", v, err)
	}
	if _, err := (&reader{b: dehex(t, "80 7f"), strict: true}).uintvar(); !errors.Is(err, errNonMinimal) {
		t.Errorf("strict uintvar(80 7f) error = %v, want errNonMinimal", err)
	}
	for _, bad := range []string{"", "80", "ff ff", "81 80 80 80 80 00", "9f ff ff ff 7f"} {
		if _, err := (&reader{b: dehex(t, bad)}).uintvar(); err == nil {
			t.Errorf("uintvar(%q) succeeded, want error", bad)
		}
	}
}

func TestValueLength(t *testing.T) {
	for _, tt := range []struct {
		n   int
		hex string
	}{{0, "00"}, {30, "1e"}, {31, "1f 1f"}, {200, "1f 81 48"}} {
		want := dehex(t, tt.hex)
		if got := appendValueLength(nil, tt.n); !bytes.Equal(got, want) {
			t.Errorf("appendValueLength(%d) = % x, want % x", tt.n, got, want)
		}
		if valueLengthLen(tt.n) != len(want) {
			t.Errorf("valueLengthLen(%d) = %d, want %d", tt.n, valueLengthLen(tt.n), len(want))
		}
		in := append(want, make([]byte, tt.n)...)
		r := &reader{b: in, strict: true}
		if got, err := r.valueLength(); err != nil || got != tt.n {
			t.Errorf("valueLength(% x) = %d, %v, want %d", want, got, err, tt.n)
		}
		// The same length with one octet missing from the value is refused.
		if tt.n > 0 {
			if _, err := (&reader{b: in[:len(in)-1]}).valueLength(); !errors.Is(err, errShort) {
				t.Errorf("valueLength of short value: %v, want errShort", err)
			}
		}
	}
	if _, err := (&reader{b: []byte{0x20}}).valueLength(); !errors.Is(err, errBadLength) {
		t.Errorf("valueLength(20) = %v, want errBadLength", err)
	}
	// 1f 1e would fit in a Short-length: strict says so.
	in := append([]byte{0x1f, 0x1e}, make([]byte, 30)...)
	if _, err := (&reader{b: in, strict: true}).valueLength(); !errors.Is(err, errNonMinimal) {
		t.Errorf("strict valueLength(1f 1e) = %v, want errNonMinimal", err)
	}
}

func TestLongInteger(t *testing.T) {
	for _, tt := range []struct {
		v   uint64
		hex string
	}{{0, "01 00"}, {255, "01 ff"}, {86400, "03 01 51 80"}, {0x65000000, "04 65 00 00 00"},
		{1<<64 - 1, "08 ff ff ff ff ff ff ff ff"}} {
		want := dehex(t, tt.hex)
		if got := appendLongInteger(nil, tt.v); !bytes.Equal(got, want) {
			t.Errorf("appendLongInteger(%d) = % x, want % x", tt.v, got, want)
		}
		if longIntegerLen(tt.v) != len(want) {
			t.Errorf("longIntegerLen(%d) = %d", tt.v, longIntegerLen(tt.v))
		}
		if got, err := (&reader{b: want, strict: true}).longInteger(); err != nil || got != tt.v {
			t.Errorf("longInteger(% x) = %d, %v", want, got, err)
		}
	}
	for _, tt := range []struct {
		hex    string
		strict bool
		want   error
	}{
		{"00", true, errNonMinimal}, {"02 00 01", true, errNonMinimal}, {"09 01 02 03 04 05 06 07 08 09", false, errLongInteger},
		{"04 01 02", false, errShort}, {"1f", false, errBadInteger},
	} {
		if _, err := (&reader{b: dehex(t, tt.hex), strict: tt.strict}).longInteger(); !errors.Is(err, tt.want) {
			t.Errorf("longInteger(%s, strict=%v) error = %v, want %v", tt.hex, tt.strict, err, tt.want)
		}
	}
	if got := appendInteger(nil, 106); !bytes.Equal(got, []byte{0xEA}) {
		t.Errorf("appendInteger(106) = % x, want ea", got)
	}
	if got := appendInteger(nil, 1000); !bytes.Equal(got, dehex(t, "02 03 e8")) {
		t.Errorf("appendInteger(1000) = % x, want 02 03 e8", got)
	}
}

func TestTextString(t *testing.T) {
	for _, tt := range []struct {
		s   string
		hex string
	}{{"", "00"}, {"Hi", "48 69 00"}, {"é", "7f c3 a9 00"}} {
		e := &enc{}
		e.text("t", tt.s)
		want := dehex(t, tt.hex)
		if !bytes.Equal(e.b, want) || e.err != nil {
			t.Errorf("text(%q) = % x, %v; want % x", tt.s, e.b, e.err, want)
		}
		if textLen(tt.s) != len(want) {
			t.Errorf("textLen(%q) = %d, want %d", tt.s, textLen(tt.s), len(want))
		}
		got, err := (&reader{b: want, strict: true}).text()
		if err != nil || got != tt.s {
			t.Errorf("read text(% x) = %q, %v; want %q", want, got, err, tt.s)
		}
	}
	e := &enc{}
	e.text("Subject", "a\x00b")
	if !errors.Is(e.err, errNUL) {
		t.Errorf("text with NUL: err = %v, want errNUL", e.err)
	}
	if _, err := (&reader{b: []byte("abc")}).text(); !errors.Is(err, errNoNUL) {
		t.Errorf("text without NUL: %v, want errNoNUL", err)
	}
	// A high first octet without the quote: lenient reads it, strict refuses.
	if s, err := (&reader{b: dehex(t, "c3 a9 00")}).text(); err != nil || s != "é" {
		t.Errorf("lenient unquoted high text = %q, %v", s, err)
	}
	if _, err := (&reader{b: dehex(t, "c3 a9 00"), strict: true}).text(); !errors.Is(err, errHighText) {
		t.Errorf("strict unquoted high text: %v, want errHighText", err)
	}
}

func TestEncodedString(t *testing.T) {
	for _, tt := range []struct {
		s   EncodedString
		hex string
	}{
		{EncodedString{Text: "Hi"}, "48 69 00"},
		{EncodedString{Charset: CharsetUTF8, Text: "Hi"}, "04 ea 48 69 00"},
		{EncodedString{Charset: CharsetUTF8, Text: "é"}, "05 ea 7f c3 a9 00"},
		{EncodedString{Charset: CharsetUCS2, Text: "\x00A"}, "06 02 03 e8 00 41 00"},
		{EncodedString{Charset: CharsetUTF8, Text: strings.Repeat("x", 40)}, "1f 2a ea " + strings.Repeat("78 ", 40) + "00"},
	} {
		e := &enc{}
		e.encodedString("s", tt.s)
		want := dehex(t, tt.hex)
		if !bytes.Equal(e.b, want) {
			t.Errorf("encodedString(%+v) = % x, want % x", tt.s, e.b, want)
		}
		if encodedStringLen(tt.s) != len(want) {
			t.Errorf("encodedStringLen(%+v) = %d, want %d", tt.s, encodedStringLen(tt.s), len(want))
		}
		r := &reader{b: want, strict: true}
		got, err := r.encodedString()
		if err != nil || got != tt.s || r.off != len(want) {
			t.Errorf("read encodedString(% x) = %+v, %v", want, got, err)
		}
	}
	// Long form whose text lacks its NUL: lenient takes the rest of the value.
	got, err := (&reader{b: dehex(t, "03 ea 48 69")}).encodedString()
	if err != nil || got.Text != "Hi" {
		t.Errorf("lenient encodedString without NUL = %+v, %v", got, err)
	}
}

func TestCharsetDecode(t *testing.T) {
	for _, tt := range []struct {
		c    Charset
		in   []byte
		want string
	}{
		{CharsetUTF8, []byte("Grüße"), "Grüße"},
		{CharsetUTF8, []byte{'a', 0xff}, "a\uFFFD"},
		{0, []byte("Grüße"), "Grüße"},
		{0, []byte{'G', 'r', 0xfc, 0xdf, 'e'}, "Grüße"},
		{CharsetASCII, []byte{0xe9}, "é"},
		{CharsetLatin1, []byte{0xe9}, "é"},
		{CharsetUCS2, []byte{0x00, 'H', 0x00, 'i'}, "Hi"},
		{CharsetUTF16, []byte{0xff, 0xfe, 'H', 0x00, 'i', 0x00}, "Hi"},
		{CharsetUTF16LE, []byte{'H', 0x00}, "H"},
		{Charset(17), []byte{0x82, 0xa0}, "あ"},     // shift_jis
		{Charset(2252), []byte{0x80}, "€"},         // windows-1252
		{Charset(2084), []byte{0xc1}, "а"},         // koi8-r
		{Charset(99999), []byte("plain"), "plain"}, // unknown: as none
	} {
		if got := tt.c.Decode(tt.in); got != tt.want {
			t.Errorf("Charset(%d).Decode(% x) = %q, want %q", tt.c, tt.in, got, tt.want)
		}
	}
	for name, want := range map[string]Charset{"UTF-8": CharsetUTF8, "utf8": CharsetUTF8, "us-ascii": CharsetASCII,
		"Big5": 2026, "*": CharsetAny, "1000": CharsetUCS2, "": 0} {
		if c, ok := CharsetByName(name); !ok || c != want {
			t.Errorf("CharsetByName(%q) = %d, %v; want %d", name, c, ok, want)
		}
	}
	if _, ok := CharsetByName("x-klingon"); ok {
		t.Error("CharsetByName(x-klingon) succeeded")
	}
}

func TestWithLength(t *testing.T) {
	for _, n := range []int{0, 30, 31, 127, 128, 20000} {
		e := &enc{b: []byte{0xAA}}
		e.withLength(func() { e.b = append(e.b, bytes.Repeat([]byte{7}, n)...) })
		want := append([]byte{0xAA}, appendValueLength(nil, n)...)
		want = append(want, bytes.Repeat([]byte{7}, n)...)
		if !bytes.Equal(e.b, want) {
			t.Errorf("withLength(%d): got %d octets, want %d", n, len(e.b), len(want))
		}
	}
}
