package pdu

// Benchmarks of the codec against memcpy and base64 of the same bytes:
//
//	go test -run XXX -bench . -benchmem -count 5 ./mapping/pdu/
//
// See BENCHMARKS.md at the repository root for the figures.

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

var benchOnce struct {
	sync.Once
	m   *Message
	pdu []byte
}

// benchRetrieveConf returns an M-Retrieve.conf with a ~200 KB photo-like
// JPEG (deterministic), a text part and SMIL, and its encoding.
func benchRetrieveConf(tb testing.TB) (*Message, []byte) {
	benchOnce.Do(func() {
		jpg := testJPEG(tb, 800, 600, 42, 24, 92)
		m := &Message{
			Type: TypeRetrieveConf, TransactionID: "T-bench-1", Version: Version12,
			MessageID: "bench-0001@mmsc", Date: tsDate,
			From:    &From{Address: Str("+436646620958/TYPE=PLMN")},
			To:      []EncodedString{Str("+436644600167/TYPE=PLMN")},
			Subject: Str("Grüße aus Wien 👋"), MessageClass: ClassPersonal, Priority: PriorityNormal,
			ContentType: ContentType{Type: "application/vnd.wap.multipart.related", Params: []Param{
				{Name: "start", Value: "<smil>"}, {Name: "type", Value: "application/smil"}}},
			Parts: []Part{
				{ContentType: ContentType{Type: "application/smil", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "smil.xml"}}},
					ContentID: "<smil>", ContentLocation: "smil.xml", Body: []byte(testSMIL)},
				{ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "text.txt"}}},
					ContentID: "<text>", ContentLocation: "text.txt", Body: []byte("Hallo aus Wien, schöne Grüße! 👋")},
				{ContentType: ContentType{Type: "image/jpeg", Params: []Param{{Name: "name", Value: "photo.jpg"}}},
					ContentID: "<photo>", ContentLocation: "photo.jpg", Body: jpg},
			},
		}
		pdu, err := m.Append(nil)
		if err != nil {
			tb.Fatalf("Append: %v", err)
		}
		benchOnce.m, benchOnce.pdu = m, pdu
	})
	return benchOnce.m, benchOnce.pdu
}

func TestBenchPDUSize(t *testing.T) {
	_, pdu := benchRetrieveConf(t)
	if n := len(pdu); n < 180_000 || n > 240_000 {
		t.Errorf("benchmark PDU is %d octets, want ~200 KB", n)
	}
	m, err := Decode(pdu)
	if err != nil || len(m.Parts) != 3 {
		t.Fatalf("Decode(bench PDU) = %v parts, %v", m, err)
	}
	t.Logf("benchmark PDU: %d octets, JPEG %d octets", len(pdu), len(m.Parts[2].Body))
}

func BenchmarkMemcpy(b *testing.B) {
	_, pdu := benchRetrieveConf(b)
	dst := make([]byte, len(pdu))
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		copy(dst, pdu)
	}
}

func BenchmarkBase64Decode(b *testing.B) {
	_, pdu := benchRetrieveConf(b)
	enc := []byte(base64.StdEncoding.EncodeToString(pdu))
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := base64.StdEncoding.Decode(dst, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeRetrieveConf(b *testing.B) {
	m, pdu := benchRetrieveConf(b)
	buf := make([]byte, 0, len(pdu))
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeRetrieveConfNoBodies encodes the same message with empty
// part bodies: the fixed cost of the headers and part framing, which
// BenchmarkEncodeRetrieveConf adds to a memcpy of the bodies.
func BenchmarkEncodeRetrieveConfNoBodies(b *testing.B) {
	m0, _ := benchRetrieveConf(b)
	m := *m0
	m.Parts = append([]Part(nil), m0.Parts...)
	for i := range m.Parts {
		m.Parts[i].Body = nil
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = m.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRetrieveConf(b *testing.B) {
	_, pdu := benchRetrieveConf(b)
	b.SetBytes(int64(len(pdu)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(pdu); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCorpus decodes every PDU of the shared corpus once per
// iteration (those our decoder refuses, such as the "garbage" files, are
// left out).
func BenchmarkDecodeCorpus(b *testing.B) {
	var pdus [][]byte
	total := 0
	for _, f := range testcorpus.Files(b, "pdu") {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(data); err != nil {
			continue
		}
		pdus = append(pdus, data)
		total += len(data)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pdus {
			if _, err := Decode(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(pdus)), "pdus/op")
}

// TestAllocsPerPart checks that decoding and encoding (into a reused
// buffer) allocate a small constant number of times per part, whatever the
// body sizes: bodies are never copied on decode, nor buffers regrown on
// encode.
func TestAllocsPerPart(t *testing.T) {
	build := func(n, size int) (*Message, []byte) {
		m := &Message{Type: TypeRetrieveConf, Version: Version12, Date: tsDate,
			ContentType: ContentType{Type: "application/vnd.wap.multipart.mixed"}}
		for i := range n {
			m.Parts = append(m.Parts, Part{
				ContentType: ContentType{Type: "image/jpeg", Params: []Param{{Name: "name", Value: "p.jpg"}}},
				ContentID:   fmt.Sprintf("<p%d>", i%10), ContentLocation: "p.jpg",
				Body: make([]byte, size)})
		}
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		return m, b
	}
	decAllocs := func(n, size int) float64 {
		_, pdu := build(n, size)
		return testing.AllocsPerRun(20, func() {
			if _, err := Decode(pdu); err != nil {
				t.Fatal(err)
			}
		})
	}
	encAllocs := func(n, size int) float64 {
		m, pdu := build(n, size)
		buf := make([]byte, 0, len(pdu))
		return testing.AllocsPerRun(20, func() {
			var err error
			if buf, err = m.Append(buf[:0]); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, c := range []struct {
		name   string
		allocs func(n, size int) float64
	}{{"Decode", decAllocs}, {"Append", encAllocs}} {
		a10, a100 := c.allocs(10, 100), c.allocs(100, 100)
		if big := c.allocs(10, 100_000); big != a10 {
			t.Errorf("%s allocs: %v with 100-octet bodies, %v with 100 KB bodies; want the same", c.name, a10, big)
		}
		perPart := (a100 - a10) / 90
		if perPart > 8 { // -race adds allocations of its own
			t.Errorf("%s allocs per part = %.2f (10 parts %v, 100 parts %v), want a small constant", c.name, perPart, a10, a100)
		}
		t.Logf("%s: %v allocs for 10 parts, %v for 100: %.2f per part", c.name, a10, a100, perPart)
	}
}

// benchPDUFile writes the benchmark PDU to dir, for pdu-dissect by hand.
func benchPDUFile(tb testing.TB, dir string) string {
	_, pdu := benchRetrieveConf(tb)
	f := filepath.Join(dir, "bench.mms")
	if err := os.WriteFile(f, pdu, 0o644); err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestTsharkBenchPDU checks the benchmark PDU with Wireshark as well.
func TestTsharkBenchPDU(t *testing.T) {
	tool := pduDissect(t)
	m, _ := benchRetrieveConf(t)
	f := benchPDUFile(t, t.TempDir())
	checkDissection(t, m, dissect(t, tool, []string{f})[f])
}
