package mapping

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

func textPart(loc, charset string, body []byte) pdu.Part {
	return pdu.Part{ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: charset}}},
		ContentLocation: loc, ContentID: "<" + loc + ">", Body: body}
}

func mediaPart(typ, loc string, body []byte) pdu.Part {
	return pdu.Part{ContentType: pdu.ContentType{Type: typ, Params: []pdu.Param{{Name: "name", Value: loc}}},
		ContentLocation: loc, Body: body}
}

func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = []byte{0xFF, 0xFE}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func ucs2BE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

// testMMS is a group MMS whose parts come out of SMIL order, in three
// charsets, with an AMR clip, an empty part and a SMIL.
func testMMS() *MMS {
	smil := `<smil><body><par><img src="cid:b.jpg"/><text src="t2.txt"/></par>` +
		`<par><audio src="voice.amr"/><text src="t1.txt"/></par><par><text src="t3.txt"/></par></body></smil>`
	return &MMS{
		From:      "+15551234567/TYPE=PLMN",
		To:        []string{"+15557654321/TYPE=PLMN", "+15550001111/TYPE=PLMN"},
		Cc:        []string{"+15552223333/TYPE=PLMN"},
		Date:      time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC),
		MessageID: "m1",
		Parts: []pdu.Part{
			{ContentType: pdu.ContentType{Type: "application/smil"}, ContentLocation: "s.smil", Body: []byte(smil)},
			textPart("t1.txt", "iso-10646-ucs-2", ucs2BE("second: Привет")),
			mediaPart("image/jpg", "Ph oto (1).JPG", []byte("\xff\xd8jpeg-a")),
			{ContentType: pdu.ContentType{Type: "image/jpeg"}, ContentID: "<b.jpg>", Body: []byte("\xff\xd8jpeg-b")},
			textPart("t2.txt", "utf-16", utf16LE("first: héllo 👋", true)),
			mediaPart("audio/amr", "voice.amr", []byte("#!AMR\n\x00\x01")),
			mediaPart("image/gif", "empty.gif", nil),
			textPart("t3.txt", "utf-8", []byte("\xef\xbb\xbfthird")),
			textPart("t4.txt", "utf-8", []byte("  \r\n")),
		},
	}
}

func TestToEmail(t *testing.T) {
	m := testMMS()
	opts := EmailOutOptions{
		ReplyDomain:   "reply.example.net",
		To:            "Zoë <zoe@example.com>",
		Cc:            GroupCc(m, []string{"+15557654321"}, "mms.example.net", ""),
		OrigSubject:   "Dîner ce soir ?",
		OrigMessageID: "<orig@example.com>",
		References:    []string{"<older@example.com>"},
	}
	out, err := ToEmail(m, opts)
	if err != nil {
		t.Fatalf("ToEmail = %v", err)
	}
	if i := bytes.IndexByte(bytes.ReplaceAll(out, []byte("\r\n"), nil), '\n'); i >= 0 {
		t.Errorf("ToEmail output has a bare LF at %d", i)
	}
	for _, line := range strings.Split(string(out), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d octets", len(line))
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("8-bit octet in %q", line)
			}
		}
	}

	mr, err := gomail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("go-message reading ToEmail output: %v", err)
	}
	h := mr.Header
	from, _ := h.AddressList("From")
	if len(from) != 1 || from[0].Address != "+15551234567@reply.example.net" || from[0].Name != "+15551234567" {
		t.Errorf("From = %v", from)
	}
	to, _ := h.AddressList("To")
	if len(to) != 1 || to[0].Address != "zoe@example.com" || to[0].Name != "Zoë" {
		t.Errorf("To = %v", to)
	}
	cc, _ := h.AddressList("Cc")
	var ccs []string
	for _, a := range cc {
		ccs = append(ccs, a.Address)
	}
	if want := []string{"+15550001111@mms.example.net", "+15552223333@mms.example.net"}; !slices.Equal(ccs, want) {
		t.Errorf("Cc = %v, want %v", ccs, want)
	}
	if s, _ := h.Subject(); s != "Re: Dîner ce soir ?" {
		t.Errorf("Subject = %q", s)
	}
	if ids, _ := h.MsgIDList("In-Reply-To"); !slices.Equal(ids, []string{"orig@example.com"}) {
		t.Errorf("In-Reply-To = %v", ids)
	}
	if ids, _ := h.MsgIDList("References"); !slices.Equal(ids, []string{"older@example.com", "orig@example.com"}) {
		t.Errorf("References = %v", ids)
	}
	if id, _ := h.MessageID(); !strings.HasSuffix(id, "@reply.example.net") || len(id) < 20 {
		t.Errorf("Message-ID = %q", id)
	}
	if d, _ := h.Date(); !d.Equal(m.Date) {
		t.Errorf("Date = %v, want %v", d, m.Date)
	}
	if ct, _, _ := h.ContentType(); ct != "multipart/mixed" {
		t.Errorf("Content-Type = %q", ct)
	}

	type got struct{ typ, name, cte, body string }
	var parts []got
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart = %v", err)
		}
		b, _ := io.ReadAll(p.Body)
		var ph message.Header
		switch h := p.Header.(type) {
		case *gomail.InlineHeader:
			ph = h.Header
		case *gomail.AttachmentHeader:
			ph = h.Header
		}
		ct, params, _ := ph.ContentType()
		_, dp, _ := ph.ContentDisposition()
		if ct == "text/plain" && params["charset"] != "utf-8" {
			t.Errorf("text charset = %q", params["charset"])
		}
		parts = append(parts, got{ct, dp["filename"], ph.Get("Content-Transfer-Encoding"), string(b)})
	}
	want := []got{
		{"text/plain", "", "quoted-printable", "first: héllo 👋\r\nsecond: Привет\r\nthird\r\n"},
		{"image/jpeg", "b.jpg", "base64", "\xff\xd8jpeg-b"},
		{"audio/amr", "voice.amr", "base64", "#!AMR\n\x00\x01"},
		{"image/jpeg", "Ph-oto-1.jpg", "base64", "\xff\xd8jpeg-a"},
	}
	if !slices.Equal(parts, want) {
		t.Errorf("parts =\n%q\nwant\n%q", parts, want)
	}

	// Our own parser reads it back the same.
	e, err := ParseEmail(bytes.NewReader(out), EmailOptions{})
	if err != nil || e.Text != "first: héllo 👋\nsecond: Привет\nthird" || len(e.Media) != 3 || len(e.Notes) > 0 {
		t.Errorf("ParseEmail = %v, %q, %d media, notes %q", err, e.Text, len(e.Media), e.Notes)
	}
}

func TestToEmailSubjectAndSender(t *testing.T) {
	for _, tc := range []struct {
		from, subj, orig, want, wantFrom string
	}{
		{"15551234567@mms.att.net", "Pic", "Hello", "Pic", "+15551234567"},
		{"Bob <+447911123456/TYPE=PLMN>", "", "Re: Hello", "Re: Hello", "+447911123456"},
		{"12345/TYPE=PLMN", "", "", "", "12345"},
		{"someone@pm.sprint.com", "", "hi", "Re: hi", "someone"},
	} {
		m := &MMS{From: tc.from, Subject: tc.subj, Parts: []pdu.Part{textPart("a.txt", "utf-8", []byte("x"))}}
		out, err := ToEmail(m, EmailOutOptions{ReplyDomain: "r.example", To: "a@example.com", OrigSubject: tc.orig,
			MessageID: "fixed@r.example"})
		if err != nil {
			t.Errorf("ToEmail(from %q) = %v", tc.from, err)
			continue
		}
		e, _ := ParseEmail(bytes.NewReader(out), EmailOptions{})
		if e.Subject != tc.want || e.From == nil || e.From.Address != tc.wantFrom+"@r.example" || e.MessageID != "fixed@r.example" {
			t.Errorf("ToEmail(from %q, subject %q, orig %q): subject %q from %v id %q; want %q from %s@r.example",
				tc.from, tc.subj, tc.orig, e.Subject, e.From, e.MessageID, tc.want, tc.wantFrom)
		}
		if tc.subj == "" && tc.orig == "" && strings.Contains(string(out), "Subject:") {
			t.Errorf("ToEmail wrote a Subject with no subject to give")
		}
	}
	if _, err := ToEmail(&MMS{}, EmailOutOptions{ReplyDomain: "r.example", To: "a@example.com"}); !errors.Is(err, ErrNoSender) {
		t.Errorf("ToEmail(no sender) = %v, want ErrNoSender", err)
	}
	out, err := ToEmail(&MMS{}, EmailOutOptions{ReplyDomain: "r.example", To: "a@example.com", From: "+15551234567"})
	if err != nil || !bytes.Contains(out, []byte("<+15551234567@r.example>")) {
		t.Errorf("ToEmail(opts.From) = %v\n%s", err, out)
	}
	if _, err := ToEmail(&MMS{From: "+15551234567"}, EmailOutOptions{To: "a@example.com"}); err == nil {
		t.Error("ToEmail without reply domain = nil error")
	}
}

func TestMMSFromPDUCorpus(t *testing.T) {
	found := 0
	for _, f := range testcorpus.Files(t, "pdu") {
		raw, _ := os.ReadFile(f)
		p, err := pdu.Decode(raw)
		if err != nil || (p.Type != pdu.TypeRetrieveConf && p.Type != pdu.TypeSendReq) {
			continue
		}
		found++
		m := MMSFromPDU(p)
		out, err := ToEmail(m, EmailOutOptions{ReplyDomain: "r.example", To: "a@example.com", From: "+15550000000"})
		if err != nil {
			t.Errorf("%s: ToEmail = %v", filepath.Base(f), err)
			continue
		}
		e, err := ParseEmail(bytes.NewReader(out), EmailOptions{KeepHistory: true})
		if err != nil || len(e.Notes) > 0 || !utf8.ValidString(e.Text) || strings.ContainsRune(e.Text, '\ufeff') {
			t.Errorf("%s: ParseEmail(ToEmail) = %v, notes %q, text %q", filepath.Base(f), err, e.Notes, e.Text)
		}
		for _, a := range e.Media {
			if a.ContentType == "application/smil" || len(a.Data) == 0 || a.Name == "" {
				t.Errorf("%s: media %s %q (%d octets)", filepath.Base(f), a.ContentType, a.Name, len(a.Data))
			}
		}
		switch filepath.Base(f) {
		case "test_mms_codec__m-retrieve_2.conf":
			if !strings.HasPrefix(e.Text, "Входит Пушкин") || e.From.Address != "+358500000000@r.example" {
				t.Errorf("%s: text %q from %v", filepath.Base(f), e.Text, e.From)
			}
		case "rc-mms-1-3-con-220.mms":
			if len(e.Media) != 1 || e.Media[0].ContentType != "image/gif" {
				t.Errorf("%s: media %v", filepath.Base(f), e.Media)
			}
		}
	}
	if found < 10 {
		t.Errorf("only %d retrieve-conf/send-req PDUs in the corpus", found)
	}
}

func TestMMSFromMM4(t *testing.T) {
	var b bytes.Buffer
	f := &mm4.Forward{TransactionID: "t1", MessageID: "mid1", From: "+15551234567/TYPE=PLMN",
		To: []string{"+15557654321/TYPE=PLMN"}, Subject: "Grüße", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.related"},
		Parts: []pdu.Part{
			{ContentType: pdu.ContentType{Type: "application/smil"}, ContentLocation: "p.smil",
				Body: []byte(`<smil><body><par><text src="b.txt"/><img src="a.png"/></par></body></smil>`)},
			mediaPart("image/png", "a.png", []byte("\x89PNG\r\n\x1a\nnot really")),
			textPart("b.txt", "utf-16", utf16LE("Hallo", true)),
		}}
	if err := mm4.WriteForward(&b, f); err != nil {
		t.Fatal(err)
	}
	msg, err := mm4.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m, err := MMSFromMM4(msg)
	if err != nil {
		t.Fatalf("MMSFromMM4 = %v", err)
	}
	if m.From != "+15551234567/TYPE=PLMN" || m.Subject != "Grüße" || m.MessageID != "mid1" || len(m.Parts) != 3 {
		t.Fatalf("MMSFromMM4 = %+v", m)
	}
	out, err := ToEmail(m, EmailOutOptions{ReplyDomain: "r.example", To: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ParseEmail(bytes.NewReader(out), EmailOptions{})
	if e.Text != "Hallo" || e.Subject != "Grüße" || len(e.Media) != 1 || e.Media[0].Name != "a.png" ||
		!bytes.Equal(e.Media[0].Data, []byte("\x89PNG\r\n\x1a\nnot really")) {
		t.Errorf("round trip: text %q subject %q media %v", e.Text, e.Subject, e.Media)
	}
}

// An MM3 mail that carries the binary PDU as an attachment.
func TestMMSFromEmailEmbeddedPDU(t *testing.T) {
	p := &pdu.Message{Type: pdu.TypeRetrieveConf, Version: pdu.Version12, MessageID: "x",
		From: &pdu.From{Address: pdu.Str("+15551234567/TYPE=PLMN")}, Subject: pdu.Str("Inside"),
		ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"},
		Parts: []pdu.Part{
			textPart("t.txt", "iso-10646-ucs-2", ucs2BE("Ça va?")),
			mediaPart("audio/amr", "clip.amr", []byte("#!AMR\n1234")),
		}}
	bin, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	mail := "From: 15551234567@mms.att.net\r\nTo: bob@example.com\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\r\n" +
		"--XX\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(bin) + "\r\n--XX--\r\n"
	m, err := MMSFromEmail([]byte(mail))
	if err != nil {
		t.Fatalf("MMSFromEmail = %v", err)
	}
	if m.Subject != "Inside" || m.From != "15551234567@mms.att.net" {
		t.Errorf("MMSFromEmail = subject %q from %q", m.Subject, m.From)
	}
	out, err := ToEmail(m, EmailOutOptions{ReplyDomain: "r.example", To: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := ParseEmail(bytes.NewReader(out), EmailOptions{})
	if e.Text != "Ça va?" || len(e.Media) != 1 || e.Media[0].ContentType != "audio/amr" || e.Media[0].Name != "clip.amr" ||
		e.From.Address != "+15551234567@r.example" {
		t.Errorf("round trip: text %q media %v from %v", e.Text, e.Media, e.From)
	}
	if _, err := MMSFromEmail([]byte("no header here at all")); !errors.Is(err, ErrNotEmail) {
		t.Errorf("MMSFromEmail(not an email) = %v, want ErrNotEmail", err)
	}
}

// TestMMSFromMM4EmbeddedPDU: an MM4_forward.REQ whose content is a binary
// PDU (application/vnd.wap.mms-message) gives the PDU's parts.
func TestMMSFromMM4EmbeddedPDU(t *testing.T) {
	inner := &pdu.Message{Type: pdu.TypeSendReq, TransactionID: "t", Version: pdu.Version12, From: &pdu.From{Insert: true},
		To: []pdu.EncodedString{pdu.Str("+15557654321/TYPE=PLMN")}, Subject: pdu.Str("inside"),
		ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"},
		Parts: []pdu.Part{{ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}}, Body: []byte("from the PDU")},
			{ContentType: pdu.ContentType{Type: "image/gif"}, ContentLocation: "a.gif", Body: []byte("GIF89a...")}}}
	b, err := inner.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := mm4.WriteForward(&buf, &mm4.Forward{TransactionID: "x", MessageID: "y", From: "+15551234567/TYPE=PLMN",
		To: []string{"r-abc@reply.test"}, ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"},
		Parts: []pdu.Part{{ContentType: pdu.ContentType{Type: "application/vnd.wap.mms-message"}, Body: b}}}); err != nil {
		t.Fatal(err)
	}
	mm, err := mm4.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m, err := MMSFromMM4(mm)
	if err != nil || len(m.Parts) != 2 || m.Subject != "inside" || string(m.Parts[0].Body) != "from the PDU" || m.Parts[1].ContentType.Type != "image/gif" {
		t.Errorf("MMSFromMM4 = %+v, %v", m, err)
	}
}
