package mapping

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-message"
	"github.com/mmsrelay/mmsrelay/adapt"
)

var benchMail struct {
	once sync.Once
	raw  []byte
	jpg  int
}

// benchEmail is a text + ~200 KB JPEG email that needs no adaptation under
// the default profile (1200×900, under the size budget).
func benchEmail(b *testing.B) []byte {
	benchMail.once.Do(func() {
		jpg := smoothPhoto(b, 1024, 768, 12)
		benchMail.raw = []byte(mailWith(b, jpg, ""))
		benchMail.jpg = len(jpg)
		b.Logf("email %d bytes, JPEG %d bytes", len(benchMail.raw), len(jpg))
	})
	return benchMail.raw
}

// smoothPhoto is a w×h JPEG with gradients and a little noise (amplitude
// noise): about 200 KB at 1024×768 with noise 12, like a phone picture.
func smoothPhoto(tb testing.TB, w, h, noise int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(3, 4))
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			n := rng.IntN(noise + 1)
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = uint8(x*255/w+n), uint8(y*255/h+n), uint8((x+y)*127/(w+h)+n), 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkConvertFloor is the floor the conversion is measured against:
// go-message's full parse of the same email plus base64 decoding of every
// part, reading each body to the end.
func BenchmarkConvertFloor(b *testing.B) {
	raw := benchEmail(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		e, err := message.Read(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		mr := e.MultipartReader()
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, p.Body); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkConvert is the whole conversion of the same email: ParseEmail,
// ToMMS (nothing to adapt: the picture passes as it is) and encoding the PDU.
func BenchmarkConvert(b *testing.B) {
	raw := benchEmail(b)
	prof, _ := adapt.LookupProfile("default")
	rcpts := []MMSRecipient{{E164: "+15551234567"}, {E164: "+15557654321"}}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		e, err := ParseEmailBytes(raw, EmailOptions{})
		if err != nil {
			b.Fatal(err)
		}
		conv, err := ToMMS(context.Background(), e, rcpts, ConvertOptions{Profile: prof})
		if err != nil {
			b.Fatal(err)
		}
		if len(conv.Dropped) > 0 || len(conv.MMS.Parts) != 3 || !strings.HasPrefix(conv.MMS.Parts[1].ContentType.Type, "image/jpeg") {
			b.Fatalf("conversion adapted or dropped something: %+v", conv.Dropped)
		}
		if buf, err = conv.MMS.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
