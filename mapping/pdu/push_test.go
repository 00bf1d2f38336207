package pdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func dehexPush(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("dehex(%q): %v", s, err)
	}
	return b
}

// nuntiumPush is ubports/nuntium's m-notification.ind_success: a WSP Push
// whose Content-Type is the text form, with X-Wap-Application-Id and a
// further header, around an m-notification-ind.
const nuntiumPush = `
01 06 26 61 70 70 6c 69 63 61 74 69 6f 6e 2f 76 6e 64 2e 77 61 70 2e 6d 6d 73 2d 6d 65 73 73 61
67 65 00 af 84 b4 86 c3 95
8c 82 98 6d 30 34 42 4b 6b 73 69 6d 30 35 40 6d 6d 73 2e 70 65 72 73 6f 6e 61 6c 2e 63 6f 6d 2e
61 72 00 8d 90 89 19 80 2b 35 34 33 35 31 35 39 32 34 39 30 36 2f 54 59 50 45 3d 50 4c 4d 4e 00
8a 80 8e 02 74 00 88 05 81 03 02 a2 ff 83 68 74 74 70 3a 2f 2f 6c 6f 63 61 6c 68 6f 73 74 3a 39
31 39 31 2f 6d 6d 73 00`

func TestUnwrapPush(t *testing.T) {
	b := dehexPush(t, nuntiumPush)
	ct, body, err := UnwrapPush(b)
	if err != nil {
		t.Fatalf("UnwrapPush = %v", err)
	}
	if ct.Type != "application/vnd.wap.mms-message" {
		t.Errorf("UnwrapPush content type = %q, want application/vnd.wap.mms-message", ct.Type)
	}
	if want := b[2+1+0x26:]; !bytes.Equal(body, want) {
		t.Errorf("UnwrapPush body = % x, want % x", body, want)
	}
	m, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode(unwrapped) = %v", err)
	}
	if m.Type != TypeNotificationInd || m.TransactionID != "m04BKksim05@mms.personal.com.ar" {
		t.Errorf("Decode(unwrapped) = %v %q, want m-notification-ind m04BKksim05@mms.personal.com.ar", m.Type, m.TransactionID)
	}
	if m.MessageSize != 29696 || m.ContentLocation != "http://localhost:9191/mms" {
		t.Errorf("Decode(unwrapped) size, location = %d %q, want 29696 http://localhost:9191/mms", m.MessageSize, m.ContentLocation)
	}
}

func TestUnwrapPushWellKnownType(t *testing.T) {
	// ConfirmedPush, Content-Type 0xBE (application/vnd.wap.mms-message),
	// X-Wap-Application-Id 0x84 (x-wap-application:mms.ua), empty body.
	b := dehexPush(t, "2a 07 03 be af 84")
	ct, body, err := UnwrapPush(b)
	if err != nil {
		t.Fatalf("UnwrapPush = %v", err)
	}
	if ct.Type != "application/vnd.wap.mms-message" || len(body) != 0 {
		t.Errorf("UnwrapPush = %q, % x; want application/vnd.wap.mms-message, empty", ct.Type, body)
	}
}

func TestUnwrapPushErrors(t *testing.T) {
	full := dehexPush(t, nuntiumPush)
	for _, tc := range []struct {
		name   string
		in     []byte
		offset int
	}{
		{"empty", nil, 1},
		{"one octet", []byte{0x01}, 1},
		{"not push", dehexPush(t, "8c 82 98 00"), 1},
		{"no HeadersLen", dehexPush(t, "01 06"), 2},
		{"HeadersLen overflow", dehexPush(t, "01 06 ff ff ff ff ff 00"), 2},
		{"HeadersLen past end", dehexPush(t, "01 06 7f be"), 2},
		{"headers cut", full[:20], 2},
		{"bad Content-Type", dehexPush(t, "01 06 02 1f 00"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := UnwrapPush(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("UnwrapPush(% x) = %v, want *DecodeError", tc.in, err)
			}
			if de.Offset != tc.offset {
				t.Errorf("UnwrapPush(% x) offset = %d (%v), want %d", tc.in, de.Offset, err, tc.offset)
			}
		})
	}
}

func TestIsPush(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false}, {"01", false}, {"01 06", true}, {"00 07", true}, {"8c 80", false}, {"54 68", false},
	} {
		if got := IsPush(dehexPush(t, tc.in)); got != tc.want {
			t.Errorf("IsPush(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzUnwrapPush(f *testing.F) {
	f.Add(dehexPush(f, nuntiumPush))
	f.Add(dehexPush(f, "2a 07 03 be af 84"))
	f.Add([]byte{0x01, 0x06, 0x8f, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, body, err := UnwrapPush(b)
		if err != nil {
			return
		}
		if len(body) > len(b) || (len(body) > 0 && &body[len(body)-1] != &b[len(b)-1]) {
			t.Fatalf("UnwrapPush(% x) body is not a suffix of the input", b)
		}
	})
}
