package mapping

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// photo returns a noisy w×h JPEG: hard to compress, like a camera photo.
func photo(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride:]
		for x := 0; x < w; x++ {
			v := rng.Uint32()
			c := color.RGBA{uint8(x*255/w) ^ uint8(v&31), uint8(y*255/h) ^ uint8(v>>8&31), uint8(v >> 16), 255}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, c.A
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 92}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func wrap76(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(s) > 76 {
		sb.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	sb.WriteString(s + "\r\n")
	return sb.String()
}

func mailWith(t testing.TB, jpg []byte, extra string) string {
	return "From: Zoë Example <zoe@example.com>\r\n" +
		"To: +15551234567@mms.example.net, +15557654321@mms.example.net\r\n" +
		"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_from_the_beach?=\r\n" +
		"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
		"Message-ID: <abc@example.com>\r\n" +
		"X-Priority: 1\r\n" +
		"Disposition-Notification-To: zoe@example.com\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nLook at this view!\r\n\r\nOn Mon, Bob wrote:\r\n> old stuff\r\n\r\n" +
		"--b1\r\nContent-Type: image/jpeg; name=\"Beach Photo.JPG\"\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"Beach Photo.JPG\"\r\n\r\n" + wrap76(jpg) +
		extra +
		"--b1--\r\n"
}

func TestToMMS(t *testing.T) {
	jpg := photo(t, 1800, 1350)
	pdf := "--b1\r\nContent-Type: application/pdf; name=invoice.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap76(bytes.Repeat([]byte("%PDF-1.4 "), 20000)) // 180 KB
	e, err := ParseEmail(strings.NewReader(mailWith(t, jpg, pdf)), EmailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := adapt.LookupProfile("default")
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	conv, err := ToMMS(context.Background(), e, []MMSRecipient{{E164: "+15551234567"}, {E164: "+15557654321"}},
		ConvertOptions{Profile: prof, Now: now, Expiry: 48 * time.Hour, SubjectMaxChars: 40, TransactionID: "tx1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := conv.MMS.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > prof.MaxMessageBytes || conv.Size != len(b) {
		t.Errorf("PDU is %d bytes (Size %d), limit %d", len(b), conv.Size, prof.MaxMessageBytes)
	}
	m, err := pdu.Decoder{Strict: true}.Decode(b)
	if err != nil {
		t.Fatalf("strict decode of our PDU: %v", err)
	}
	if m.Type != pdu.TypeSendReq || m.TransactionID != "tx1" || m.Version != pdu.Version12 ||
		m.From == nil || m.From.Address.String() != "Zoë Example <zoe@example.com>" ||
		len(m.To) != 2 || m.To[0].String() != "+15551234567/TYPE=PLMN" || m.Subject.String() != "Grüße from the beach" ||
		m.Priority != pdu.PriorityHigh || m.ReadReport != pdu.Yes || m.Expiry == nil || m.Expiry.Seconds != 48*3600 ||
		!m.Date.Equal(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("headers = %+v", m)
	}
	if m.ContentType.Type != "application/vnd.wap.multipart.related" || m.ContentType.Param("type") != "application/smil" {
		t.Errorf("content type = %+v", m.ContentType)
	}
	if len(m.Parts) != 3 || m.Parts[0].ContentType.Type != "application/smil" || m.ContentType.Param("start") != m.Parts[0].ContentID {
		t.Fatalf("parts = %d, first %+v", len(m.Parts), m.Parts[0].ContentType)
	}
	img := m.Parts[1]
	if img.ContentType.Type != "image/jpeg" || img.ContentLocation != "Beach-Photo.jpg" && img.ContentLocation != "Beach_Photo.jpg" && !strings.HasSuffix(img.ContentLocation, ".jpg") {
		t.Errorf("image part = %+v %q", img.ContentType, img.ContentLocation)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(img.Body))
	if err != nil || cfg.Width > 1600 || cfg.Height > 1200 {
		t.Errorf("image = %dx%d, %v", cfg.Width, cfg.Height, err)
	}
	text, _ := m.Parts[2].Text()
	if !strings.HasPrefix(text, "Look at this view!") || strings.Contains(text, "old stuff") ||
		!strings.Contains(text, "[invoice.pdf (") || !strings.Contains(text, "was not sent") {
		t.Errorf("text = %q", text)
	}
	smil := string(m.Parts[0].Body)
	if !strings.Contains(smil, `src="`+img.ContentLocation+`"`) || !strings.Contains(smil, `src="`+m.Parts[2].ContentLocation+`"`) {
		t.Errorf("SMIL does not reference the parts:\n%s", smil)
	}
	if len(conv.Dropped) != 1 || conv.Dropped[0].Name != "invoice.pdf" {
		t.Errorf("dropped = %+v", conv.Dropped)
	}

	// The basic profile on MM4: the whole MIME message fits 300 KB.
	basic, _ := adapt.LookupProfile("basic")
	conv, err = ToMMS(context.Background(), e, []MMSRecipient{{E164: "+15551234567"}}, ConvertOptions{Profile: basic, Interface: InterfaceMM4})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := mm4.WriteForward(&buf, &mm4.Forward{TransactionID: conv.MMS.TransactionID, MessageID: "m", From: "zoe@example.com",
		To: []string{"+15551234567/TYPE=PLMN"}, ContentType: conv.MMS.ContentType, Parts: conv.MMS.Parts}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > basic.MaxMessageBytes || conv.Size > basic.MaxMessageBytes {
		t.Errorf("MM4 message is %d bytes (Size %d), limit %d", buf.Len(), conv.Size, basic.MaxMessageBytes)
	}
	cfg, _, _ = image.DecodeConfig(bytes.NewReader(conv.MMS.Parts[1].Body))
	if cfg.Width > 640 || cfg.Height > 480 {
		t.Errorf("basic image = %dx%d", cfg.Width, cfg.Height)
	}

	// A smaller budget (a peer refused the size) gives a smaller message.
	small, err := ToMMS(context.Background(), e, []MMSRecipient{{E164: "+15551234567"}}, ConvertOptions{Profile: prof, Budget: 60 * 1024})
	if err != nil || small.Size > 60*1024 {
		t.Errorf("budget 60 KB: size %d, %v", small.Size, err)
	}
}

func TestToMMSKinds(t *testing.T) {
	e, err := ParseEmail(strings.NewReader("From: a@example.com\r\nSubject: Hi\r\n\r\nJust text.\r\n"), EmailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := adapt.LookupProfile("default")
	conv, err := ToMMS(context.Background(), e, []MMSRecipient{{E164: "+15551234567", Kind: KindBcc}},
		ConvertOptions{Profile: prof, Type: pdu.TypeRetrieveConf})
	if err != nil {
		t.Fatal(err)
	}
	m := conv.MMS
	if m.Type != pdu.TypeRetrieveConf || m.MessageID == "" || m.TransactionID != "" || len(m.To) != 0 || len(m.Bcc) != 1 {
		t.Errorf("retrieve-conf = %+v", m)
	}
	b, _ := m.Append(nil)
	if _, err := (pdu.Decoder{Strict: true}).Decode(b); err != nil {
		t.Errorf("strict decode: %v", err)
	}
	if _, err := ToMMS(context.Background(), e, nil, ConvertOptions{Profile: prof}); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
	empty, _ := ParseEmail(strings.NewReader("From: a@example.com\r\n\r\n"), EmailOptions{})
	if _, err := ToMMS(context.Background(), empty, []MMSRecipient{{E164: "+15551234567"}}, ConvertOptions{Profile: prof}); !errors.Is(err, ErrNoContent) {
		t.Errorf("empty mail: %v", err)
	}
}

// TestToMMSCorpus converts every real-world email of the corpus: each
// gives a PDU the strict decoder takes and that fits the profile, or says
// clearly that nothing could be sent.
func TestToMMSCorpus(t *testing.T) {
	prof, _ := adapt.LookupProfile("default")
	n := 0
	for _, f := range testcorpus.Files(t, "eml") {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseEmail(bytes.NewReader(raw), EmailOptions{})
		if err != nil {
			t.Errorf("%s: ParseEmail: %v", filepath.Base(f), err)
			continue
		}
		conv, err := ToMMS(context.Background(), e, []MMSRecipient{{E164: "+15551234567"}}, ConvertOptions{Profile: prof, SubjectMaxChars: 40})
		if errors.Is(err, ErrNoContent) {
			continue
		}
		if err != nil {
			t.Errorf("%s: ToMMS: %v", filepath.Base(f), err)
			continue
		}
		b, err := conv.MMS.Append(nil)
		if err != nil {
			t.Errorf("%s: Append: %v", filepath.Base(f), err)
			continue
		}
		if _, err := (pdu.Decoder{Strict: true}).Decode(b); err != nil {
			t.Errorf("%s: strict decode: %v", filepath.Base(f), err)
		}
		if len(b) > prof.MaxMessageBytes {
			t.Errorf("%s: %d bytes over the profile", filepath.Base(f), len(b))
		}
		n++
	}
	if n < 100 {
		t.Errorf("only %d corpus emails converted", n)
	}
}

// TestToMMSEncodedOnce checks that Conversion.PDU holds the encoding of
// the MMS on InterfacePDU, and nothing on the MIME interfaces.
func TestToMMSEncodedOnce(t *testing.T) {
	e, err := ParseEmail(strings.NewReader(mailWith(t, photo(t, 320, 240), "")), EmailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := adapt.LookupProfile("default")
	rcpts := []MMSRecipient{{E164: "+15551234567"}}
	conv, err := ToMMS(context.Background(), e, rcpts, ConvertOptions{Profile: prof})
	if err != nil {
		t.Fatal(err)
	}
	want, err := conv.MMS.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conv.PDU, want) || conv.Size != len(want) {
		t.Errorf("Conversion.PDU is %d bytes (Size %d), MMS.Append gives %d", len(conv.PDU), conv.Size, len(want))
	}
	// A budget that needs several rounds still leaves the final encoding.
	small, err := ToMMS(context.Background(), e, rcpts, ConvertOptions{Profile: prof, Budget: 8 * 1024})
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := small.MMS.Append(nil); !bytes.Equal(small.PDU, want) {
		t.Errorf("budget 8 KB: Conversion.PDU is %d bytes, MMS.Append gives %d", len(small.PDU), len(want))
	}

	// On MM4 the size is that of the message as mm4.NewForward builds it
	// with the route's options, plus the SMTP hop's pad.
	fo := mm4.ForwardOptions{TransactionID: "T-9", MessageID: "M-9@relay", Sender: "zoe@example.com",
		Recipients: []string{"+15551234567"}, AckRequest: true, OriginatorSystem: "system@mms.relay.test"}
	mm, err := ToMMS(context.Background(), e, rcpts, ConvertOptions{Profile: prof, Interface: InterfaceMM4, Forward: fo})
	if err != nil {
		t.Fatal(err)
	}
	if mm.PDU != nil {
		t.Errorf("MM4 conversion has %d PDU bytes", len(mm.PDU))
	}
	var buf bytes.Buffer
	if err := mm4.WriteForward(&buf, mm4.NewForward(mm.MMS, fo)); err != nil {
		t.Fatal(err)
	}
	if mm.Size != buf.Len()+smtpHopPad {
		t.Errorf("MM4 Size = %d, written %d + pad %d", mm.Size, buf.Len(), smtpHopPad)
	}
}
