package pdu

// Fuzz targets for the codec. Seeds: every file of the shared third-party
// corpus (read where it lies, at run time) and the hand-made PDUs in
// testdata/fuzz/<Target>/ (Go's corpus file format), where minimized
// crashers are kept too.
//
//	go test -run XXX -fuzz 'FuzzDecode$' -fuzztime 10m ./mapping/pdu/
//	go test -run XXX -fuzz FuzzDecodeStrict -fuzztime 3m ./mapping/pdu/
//	go test -run XXX -fuzz FuzzRoundTrip -fuzztime 3m ./mapping/pdu/

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

// fuzzCorpusPDUs returns the contents of every file below shared/corpus/pdu,
// or nothing when the corpus is absent (the fuzz targets then run on their
// testdata seeds alone).
func fuzzCorpusPDUs(tb testing.TB) map[string][]byte {
	tb.Helper()
	root := filepath.Join(testcorpus.SharedDir(), "corpus", "pdu")
	if _, err := os.Stat(root); err != nil {
		tb.Logf("shared PDU corpus not found at %s: fuzzing on testdata seeds only", root)
		return nil
	}
	out := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = b
		return nil
	})
	if err != nil {
		tb.Fatalf("reading corpus %s: %v", root, err)
	}
	return out
}

func addCorpusSeeds(f *testing.F) {
	for _, b := range fuzzCorpusPDUs(f) {
		f.Add(b)
	}
}

// within reports whether s lies inside the memory of b (zero-copy check).
func within(s, b []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// footprint estimates the bytes a decoded message holds that are not
// aliases of the input: strings, slice headers, parameter lists. It is the
// quantity the package doc bounds ("no input makes the decoder allocate
// more than a small multiple of its own size").
func footprint(m *Message) int {
	es := func(e EncodedString) int { return len(e.Text) }
	params := func(ps []Param) int {
		n := 0
		for _, p := range ps {
			n += int(unsafe.Sizeof(p)) + len(p.Name) + len(p.Value)
		}
		return n
	}
	n := int(unsafe.Sizeof(*m))
	n += len(m.TransactionID) + len(m.MessageID) + len(m.ContentLocation) + len(m.MessageClass)
	n += len(m.ReplyChargingID) + len(m.ApplicID) + len(m.ReplyApplicID) + len(m.AuxApplicInfo)
	n += len(m.ReplaceID) + len(m.CancelID)
	n += es(m.Subject) + es(m.ResponseText) + es(m.RetrieveText) + es(m.StoreStatusText) + es(m.StatusText)
	n += es(m.RecommendedRetrievalModeText)
	if m.From != nil {
		n += 32 + es(m.From.Address)
	}
	for _, l := range [][]EncodedString{m.To, m.Cc, m.Bcc} {
		for _, a := range l {
			n += int(unsafe.Sizeof(a)) + es(a)
		}
	}
	for _, v := range m.PreviouslySentBy {
		n += int(unsafe.Sizeof(v)) + es(v.Address)
	}
	n += len(m.PreviouslySentDate) * int(unsafe.Sizeof(PreviouslySentDate{}))
	for _, v := range m.MMFlags {
		n += int(unsafe.Sizeof(v)) + es(v.Flag)
	}
	n += len(m.Attributes) + 16*(len(m.MboxTotals)+len(m.MboxQuotas))
	for _, v := range m.ElementDescriptors {
		n += int(unsafe.Sizeof(v)) + len(v.Reference) + params(v.Params)
	}
	for _, h := range m.Unknown {
		n += int(unsafe.Sizeof(h)) + len(h.Name)
	}
	n += len(m.Order)
	n += len(m.ContentType.Type) + params(m.ContentType.Params)
	for i := range m.Parts {
		p := &m.Parts[i]
		n += int(unsafe.Sizeof(*p)) + len(p.ContentType.Type) + params(p.ContentType.Params)
		n += len(p.ContentID) + len(p.ContentLocation) + len(p.order)
		for _, h := range p.Headers {
			n += int(unsafe.Sizeof(h)) + len(h.Name)
		}
	}
	return n
}

// checkDecodeBounds asserts what the package doc promises of a decoded
// message: bodies and raw values alias the input (nothing large is copied),
// the part count is bounded by MaxParts and by the input (3 octets per
// entry at least), and what the message holds besides the aliases is a
// small multiple of the input.
func checkDecodeBounds(t *testing.T, data []byte, m *Message) {
	t.Helper()
	if len(m.Parts) > 1000 || len(m.Parts) > len(data)/3+1 {
		t.Fatalf("Decode: %d parts from %d octets", len(m.Parts), len(data))
	}
	total := len(m.Body)
	if !within(m.Body, data) {
		t.Fatalf("Decode: Body does not alias the input")
	}
	for i := range m.Parts {
		b := m.Parts[i].Body
		if !within(b, data) {
			t.Fatalf("Decode: part %d body does not alias the input", i+1)
		}
		total += len(b)
		for _, h := range m.Parts[i].Headers {
			if !within(h.Value, data) {
				t.Fatalf("Decode: part %d header value does not alias the input", i+1)
			}
		}
	}
	if total > len(data) {
		t.Fatalf("Decode: bodies total %d octets from a %d-octet input", total, len(data))
	}
	for _, h := range m.Unknown {
		if !within(h.Value, data) {
			t.Fatalf("Decode: unknown header value does not alias the input")
		}
	}
	// A well-known content type code of one octet can become a 24-octet
	// name ("application/x-wsp-0x0053") and a typed parameter a Param of
	// ~40 octets plus its name: 64 per input octet is the honest bound.
	if fp := footprint(m); fp > 64*len(data)+4096 {
		t.Fatalf("Decode: message holds ~%d octets for a %d-octet input", fp, len(data))
	}
}

// FuzzDecode: lenient Decode never panics; what it accepts respects the
// aliasing and size bounds; Append of it either fails or re-decodes to a
// DeepEqual message.
func FuzzDecode(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode: non-nil message with error %v", err)
			}
			var de *DecodeError
			if !asDecodeError(err, &de) {
				t.Fatalf("Decode error %T %v, want *DecodeError", err, err)
			}
			return
		}
		checkDecodeBounds(t, data, m)
		out, err := m.Append(nil)
		if err != nil {
			return // e.g. a decoded charset name that has no encoding
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Append(Decode(x))) = %v\nx   = %x\nout = %x", err, data, out)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("Decode(Append(m)) != m\nx     = %x\nout   = %x\nm     = %+v\nm2    = %+v", data, out, m, m2)
		}
	})
}

// sameMessage reports whether a and b are DeepEqual once empty slices and
// nil slices are taken as the same (the decoder leaves Parts empty, not nil,
// for a multipart body of zero entries, and nil for no body at all; both
// encode alike). It clears empty slices of a and b in place.
func sameMessage(a, b *Message) bool {
	nilEmpty(reflect.ValueOf(a))
	nilEmpty(reflect.ValueOf(b))
	return reflect.DeepEqual(a, b)
}

func nilEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			nilEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				nilEmpty(f)
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			if !v.IsNil() && v.CanSet() {
				v.Set(reflect.Zero(v.Type()))
			}
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct || v.Type().Elem().Kind() == reflect.Pointer {
			for i := 0; i < v.Len(); i++ {
				nilEmpty(v.Index(i))
			}
		}
	}
}

func asDecodeError(err error, de **DecodeError) bool {
	e, ok := err.(*DecodeError)
	if ok {
		*de = e
	}
	return ok
}

// FuzzDecodeStrict: strict Decode never panics; whatever it accepts,
// lenient Decode accepts with the same result, and Append writes back the
// very same octets.
func FuzzDecodeStrict(f *testing.F) {
	addCorpusSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := Decoder{Strict: true}.Decode(data)
		if err != nil {
			return
		}
		checkDecodeBounds(t, data, ms)
		ml, err := Decode(data)
		if err != nil {
			t.Fatalf("strict accepts, lenient Decode = %v\nx = %x", err, data)
		}
		if !sameMessage(ms, ml) {
			t.Fatalf("strict and lenient decode differ\nx       = %x\nstrict  = %+v\nlenient = %+v", data, ms, ml)
		}
		out, err := ms.Append(nil)
		if err != nil {
			t.Fatalf("Append(strict Decode(x)) = %v\nx = %x", err, data)
		}
		// Byte-identical, except that media types and parameter names,
		// which the model holds in lower case, come back in lower case
		// (strict mode accepts "Image/JPEG": MIME types are
		// case-insensitive).
		if !bytes.Equal(out, data) && !onlyLowered(data, out) {
			t.Fatalf("Append(strict Decode(x)) != x\nx   = %x\nout = %x", data, out)
		}
		if !bytes.Equal(out, data) {
			m2, err := Decoder{Strict: true}.Decode(out)
			if err != nil || !sameMessage(ms, m2) {
				t.Fatalf("strict Decode(Append(strict Decode(x))) = %v, differs\nx   = %x\nout = %x", err, data, out)
			}
		}
	})
}

// TestStrictCorpus records, for the real PDUs, what FuzzDecodeStrict's
// property rests on: each file strict mode accepts re-encodes byte for byte.
func TestStrictCorpus(t *testing.T) {
	files := fuzzCorpusPDUs(t)
	if files == nil {
		t.Skip("shared PDU corpus absent")
	}
	accepted := 0
	for name, data := range files {
		ms, err := Decoder{Strict: true}.Decode(data)
		if err != nil {
			continue
		}
		accepted++
		out, err := ms.Append(nil)
		if err != nil || !bytes.Equal(out, data) {
			t.Errorf("%s: Append(strict Decode(x)) = %x, %v; want the input back", name, out, err)
		}
	}
	t.Logf("strict mode accepts %d of %d corpus files", accepted, len(files))
}

// FuzzRoundTrip builds a Message from fuzzed fields, encodes it and decodes
// it again: Append either reports an error or the decoded message equals
// the built one after the normalisations the codec documents.
func FuzzRoundTrip(f *testing.F) {
	f.Add(byte(0x84), "T1", byte(0x92), "Grüße 👋", uint32(106), "+15551234567/TYPE=PLMN", "a@example.com", false,
		"personal", byte(0x81), uint32(1700000000), uint32(86400), true,
		"image/jpeg", "<img1>", "photo.jpg", "name", "photo.jpg", []byte("\xff\xd8\xff\xd9"), "application/smil", []byte("<smil/>"))
	f.Add(byte(0x80), "", byte(0x90), "x", uint32(0), "", "", true,
		"Personal", byte(0x80), uint32(0), uint32(0), false,
		"text/plain", "", "", "charset", "UTF8", []byte("hello"), "", []byte(nil))
	f.Add(byte(0x86), "id\x7f", byte(0x93), "\x7fdel", uint32(4), "\x05ctl", "\u00e9", false,
		"auto", byte(0x82), uint32(1<<31), uint32(1), false,
		"Text/HTML", "\"q", "\xc3\xa9.txt", "Start", "<a b>", []byte{}, "multipart/mixed", []byte{0})
	f.Fuzz(func(t *testing.T, typ byte, tid string, version byte, subject string, subjCS uint32,
		to, from string, insert bool, class string, prio byte, date, expiry uint32, relative bool,
		ptype, cid, loc, pname, pvalue string, body []byte, ptype2 string, body2 []byte) {
		m := &Message{
			Type:          MessageType(typ | 0x80),
			TransactionID: tid,
			Version:       Version(version | 0x80),
			Subject:       EncodedString{Charset: Charset(subjCS), Text: subject},
			MessageClass:  class,
			Priority:      Priority(prio | 0x80),
		}
		if date != 0 {
			m.Date = time.Unix(int64(date), 0).UTC()
		}
		if to != "" {
			m.To = []EncodedString{Str(to), {Charset: CharsetUTF8, Text: to}}
			m.Cc = []EncodedString{{Text: to}}
		}
		if insert {
			m.From = &From{Insert: true}
		} else if from != "" {
			m.From = &From{Address: Str(from)}
		}
		if expiry != 0 {
			m.Expiry = &TimeValue{Relative: relative, Seconds: uint64(expiry)}
			m.DeliveryTime = &TimeValue{Relative: !relative, Seconds: uint64(expiry)}
		}
		if ptype != "" {
			m.ContentType = ContentType{Type: "application/vnd.wap.multipart.related",
				Params: []Param{{Name: "type", Value: ptype}, {Name: "start", Value: cid}}}
			m.Parts = []Part{{
				ContentType:     ContentType{Type: ptype, Params: []Param{{Name: pname, Value: pvalue}}},
				ContentID:       cid,
				ContentLocation: loc,
				Body:            body,
			}}
			if ptype2 != "" {
				m.Parts = append(m.Parts, Part{ContentType: ContentType{Type: ptype2}, Body: body2})
			}
		}
		out, err := m.Append(nil)
		if err != nil {
			return
		}
		got, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Append(m)) = %v\nm   = %+v\nout = %x", err, m, out)
		}
		want := normalise(m)
		if !sameMessage(got, want) {
			t.Fatalf("Decode(Append(m)) differs\nout  = %x\n%s", out, fieldDiff(got, want))
		}
	})
}

// normalise returns m as Decode should give it back after Append: type
// names and parameter names in lower case, charset parameters by their
// IANA name, message class tokens by their lower-case name.
func normalise(m *Message) *Message {
	n := *m
	if n.Subject.IsZero() {
		n.Subject = EncodedString{}
	}
	n.ContentType = normType(m.ContentType)
	n.Parts = nil
	for _, p := range m.Parts {
		q := p
		q.ContentType = normType(p.ContentType)
		n.Parts = append(n.Parts, q)
	}
	for _, c := range messageClassTokens {
		if n.MessageClass == c {
			n.MessageClass = c
		}
	}
	return &n
}

func normType(ct ContentType) ContentType {
	out := ContentType{Type: strings.ToLower(ct.Type)}
	for _, p := range ct.Params {
		p.Name = strings.ToLower(p.Name)
		if p.Name == "type" { // a media type: read back in lower case
			p.Value = strings.ToLower(p.Value)
		}
		if p.Name == "charset" {
			if c, ok := CharsetByName(p.Value); ok {
				if c == 0 {
					c = CharsetAny
				}
				p.Value = c.Name()
			}
		}
		out.Params = append(out.Params, p)
	}
	return out
}

// TestFuzzFindings pins what fuzzing found in the codec (each fixed in the
// codec; the minimized inputs are in testdata/fuzz/FuzzDecode/crash-*).
func TestFuzzFindings(t *testing.T) {
	for _, c := range []struct {
		name, in string
		check    func(t *testing.T, m *Message, out []byte)
	}{{
		// Content-Type "" (84 00) followed by a body: Append dropped the
		// Content-Type and with it the body.
		"empty Content-Type keeps its body", "8c 81 84 00 30",
		func(t *testing.T, m *Message, out []byte) {
			if string(m.Body) != "0" || !bytes.Equal(out, dehex(t, "8c 81 84 00 30")) {
				t.Errorf("Body %q, Append = % x; want body \"0\" written back", m.Body, out)
			}
		},
	}, {
		// X-Mms-Message-Size: 0 (8e 01 00), valid, was dropped by Append.
		"Message-Size 0 is written back", "8c 82 98 41 00 8d 92 8e 01 00",
		func(t *testing.T, m *Message, out []byte) {
			if !bytes.Equal(out, dehex(t, "8c 82 98 41 00 8d 92 8e 01 00")) {
				t.Errorf("Append = % x, want the input back", out)
			}
		},
	}, {
		// A second, malformed MMS-Version (lenient: kept raw) clobbered the
		// first one's value, and Append then lost both.
		"repeated malformed header keeps the first value", "8c 82 8d 91 8d 03 30 30 30",
		func(t *testing.T, m *Message, out []byte) {
			if m.Version != Version11 || len(m.Unknown) != 1 {
				t.Errorf("Version = %v, Unknown = %v; want 1.1 and the raw second header", m.Version, m.Unknown)
			}
			if !bytes.Equal(out, dehex(t, "8c 82 8d 91 8d 03 30 30 30")) {
				t.Errorf("Append = % x, want the input back", out)
			}
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode(dehex(t, c.in))
			if err != nil {
				t.Fatalf("Decode(%s) = %v", c.in, err)
			}
			out, err := m.Append(nil)
			if err != nil {
				t.Fatalf("Append = %v", err)
			}
			c.check(t, m, out)
		})
	}
	// Strict mode accepted "84 00" (an empty Content-Type, no body), which
	// Append cannot write back: FuzzDecodeStrict's counterexample.
	if _, err := (Decoder{Strict: true}).Decode(dehex(t, "8c 81 98 41 00 8d 92 92 80 84 00")); err == nil {
		t.Errorf("strict Decode accepts an empty Content-Type")
	}
	// Texts the encoder wrote so that they read back differently: a first
	// octet 0x7F (taken for the quote) and, in a plain Encoded-string or a
	// header Text-string, a first octet 0x01–0x1F (taken for a length).
	m := &Message{Type: TypeSendReq, TransactionID: "T", Subject: EncodedString{Charset: CharsetUTF8, Text: "\x7fdel"}}
	out, err := m.Append(nil)
	if err != nil {
		t.Fatalf("Append(subject 7f…) = %v", err)
	}
	if got, err := Decode(out); err != nil || got.Subject != m.Subject {
		t.Errorf("subject \"\\x7fdel\" reads back as %+v, %v (% x)", got.Subject, err, out)
	}
	for _, bad := range []*Message{
		{Type: TypeSendReq, To: []EncodedString{{Text: "\x05ctl"}}},
		{Type: TypeSendReq, TransactionID: "\x01x"},
		{Type: TypeSendReq, MessageClass: "\x1fx"},
	} {
		if out, err := bad.Append(nil); err == nil {
			got, _ := Decode(out)
			t.Errorf("Append(%+v) = % x, nil; want an error (it reads back as %+v)", bad, out, got)
		}
	}
}

// onlyLowered reports whether out is in, with some ASCII capitals in lower
// case.
func onlyLowered(in, out []byte) bool {
	if len(in) != len(out) {
		return false
	}
	for i := range in {
		if in[i] != out[i] && !('A' <= in[i] && in[i] <= 'Z' && out[i] == in[i]+('a'-'A')) {
			return false
		}
	}
	return true
}

// fieldDiff lists the top-level fields in which two messages differ.
func fieldDiff(a, b *Message) string {
	var sb strings.Builder
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := 0; i < va.NumField(); i++ {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if !reflect.DeepEqual(x, y) {
			fmt.Fprintf(&sb, "%s:\n  got  %#v\n  want %#v\n", va.Type().Field(i).Name, x, y)
		}
	}
	return sb.String()
}
