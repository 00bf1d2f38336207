package mapping

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// corpusDir returns where the project's real-world mail lies: shared/
// beside the work tree (as in CI), else the usual absolute place.
func corpusDir() string {
	for _, d := range []string{"../../shared/corpus/eml", "/work/shared/corpus/eml"} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return "../../shared/corpus/eml"
}

func parseFile(t *testing.T, path string, opts EmailOptions) *Email {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := ParseEmail(f, opts)
	if err != nil {
		t.Fatalf("ParseEmail(%s) = %v", path, err)
	}
	return e
}

func parseString(t *testing.T, s string, opts EmailOptions) *Email {
	t.Helper()
	e, err := ParseEmail(strings.NewReader(s), opts)
	if err != nil {
		t.Fatalf("ParseEmail(%q) = %v", s, err)
	}
	return e
}

type mediaWant struct {
	name, ct, cid string
	inline        bool
	prefix        string // of Data
}

func checkMedia(t *testing.T, what string, got []Attachment, want []mediaWant) {
	t.Helper()
	if len(got) != len(want) {
		var names []string
		for _, m := range got {
			names = append(names, m.Name+" "+m.ContentType)
		}
		t.Errorf("%s: %d media %q, want %d", what, len(got), names, len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.ContentType != w.ct || g.ContentID != w.cid || g.Inline != w.inline || !bytes.HasPrefix(g.Data, []byte(w.prefix)) {
			t.Errorf("%s: media[%d] = {%q %q %q inline=%v % x…}, want {%q %q %q inline=%v prefix %q}", what, i,
				g.Name, g.ContentType, g.ContentID, g.Inline, g.Data[:min(len(g.Data), 8)], w.name, w.ct, w.cid, w.inline, w.prefix)
		}
	}
}

func TestParseEmailTestdata(t *testing.T) {
	t.Run("reply-alternative", func(t *testing.T) {
		e := parseFile(t, "testdata/reply-alternative.eml", EmailOptions{})
		if e.From == nil || e.From.Name != "André Dühring" || e.From.Address != "andre@example.com" {
			t.Errorf("From = %v", e.From)
		}
		if want := []string{"+15551234567@mms.example.net", "5551230000@mms.example.net"}; !reflect.DeepEqual(e.To, want) {
			t.Errorf("To = %q, want %q", e.To, want)
		}
		if want := []string{"carol@example.com"}; !reflect.DeepEqual(e.Cc, want) {
			t.Errorf("Cc = %q, want %q", e.Cc, want)
		}
		if e.Subject != "Réunion ☕ demain" {
			t.Errorf("Subject = %q", e.Subject)
		}
		if want := time.Date(2024, 1, 1, 9, 0, 0, 0, time.UTC); !e.Date.Equal(want) {
			t.Errorf("Date = %v, want %v", e.Date, want)
		}
		if e.MessageID != "reply-1@example.com" {
			t.Errorf("MessageID = %q", e.MessageID)
		}
		if !reflect.DeepEqual(e.InReplyTo, []string{"orig-1@example.com"}) || !reflect.DeepEqual(e.References, []string{"root@example.com", "orig-1@example.com"}) {
			t.Errorf("InReplyTo, References = %q, %q", e.InReplyTo, e.References)
		}
		if e.Priority != PriorityHigh || e.Priority.String() != "high" {
			t.Errorf("Priority = %v, want high", e.Priority)
		}
		if e.ReadReportTo != "andre@example.com" || e.ReturnReceiptTo != "" {
			t.Errorf("ReadReportTo, ReturnReceiptTo = %q, %q", e.ReadReportTo, e.ReturnReceiptTo)
		}
		if e.Text != "C'est d'accord, à demain." {
			t.Errorf("Text = %q", e.Text)
		}
		if !strings.Contains(e.FullText, "> On se voit demain ?") || !strings.Contains(e.FullText, "André") {
			t.Errorf("FullText = %q, want the history and signature", e.FullText)
		}
		if len(e.Media) != 0 || len(e.Notes) != 0 {
			t.Errorf("Media, Notes = %v, %q, want none", e.Media, e.Notes)
		}
		k := parseFile(t, "testdata/reply-alternative.eml", EmailOptions{KeepHistory: true})
		if k.Text != e.FullText {
			t.Errorf("KeepHistory: Text = %q, want %q", k.Text, e.FullText)
		}
	})
	t.Run("related-order", func(t *testing.T) {
		e := parseFile(t, "testdata/related-order.eml", EmailOptions{})
		// The empty plain alternative is ignored; the HTML is read.
		if e.Text != "First the dog:\n\ndog\n\nthen the cat" {
			t.Errorf("Text = %q", e.Text)
		}
		if e.Priority != PriorityLow {
			t.Errorf("Priority = %v, want low", e.Priority)
		}
		// In the order the HTML shows them, not the MIME order.
		checkMedia(t, "related", e.Media, []mediaWant{
			{"dog.jpg", "image/jpeg", "dog@x", true, "\xff\xd8"},
			{"cat.png", "image/png", "cat@x", true, "\x89PNG"},
		})
	})
	t.Run("forward", func(t *testing.T) {
		e := parseFile(t, "testdata/forward.eml", EmailOptions{})
		want := "Look at this.\n\n---------- Forwarded message ----------\nFrom: Bob <bob@example.com>\nDate: Tue, 2 Jan 2024 09:30\nSubject: Trip\n\nHere is the beach."
		if e.Text != want {
			t.Errorf("Text = %q, want %q", e.Text, want)
		}
		checkMedia(t, "forward", e.Media, []mediaWant{{"beach.jpg", "image/jpeg", "", false, "\xff\xd8"}})
	})
	t.Run("broken", func(t *testing.T) {
		e := parseFile(t, "testdata/broken.eml", EmailOptions{})
		if e.Text != "Café ok\n\nno content type here" {
			t.Errorf("Text = %q", e.Text)
		}
		checkMedia(t, "broken", e.Media, []mediaWant{
			{"lost-fold.gif", "image/gif", "", false, "GIF89a"},
			{"trunc.bin", "application/octet-stream", "", false, "\x00\x01\x02"},
		})
		for _, n := range []string{"missing closing boundary", "unknown charset", "malformed base64", "x-weird"} {
			if !strings.Contains(strings.Join(e.Notes, "\n"), n) {
				t.Errorf("Notes = %q, want one about %q", e.Notes, n)
			}
		}
	})
	t.Run("latin1-raw", func(t *testing.T) {
		e := parseFile(t, "testdata/latin1-raw.eml", EmailOptions{})
		if e.From == nil || e.From.Name != "José" {
			t.Errorf("From = %v, want José", e.From)
		}
		if e.Subject != "Olá — café" {
			t.Errorf("Subject = %q", e.Subject)
		}
		if e.Text != "Mañana a las 5. ¿Vienes?" {
			t.Errorf("Text = %q", e.Text)
		}
	})
	t.Run("attachments", func(t *testing.T) {
		e := parseFile(t, "testdata/attachments.eml", EmailOptions{})
		if e.Subject != "予定" || e.Text != "こんにちは、世界" {
			t.Errorf("Subject, Text = %q, %q", e.Subject, e.Text)
		}
		checkMedia(t, "attachments", e.Media, []mediaWant{
			{"carol.vcf", "text/x-vcard", "", false, "BEGIN:VCARD"},
			{"日程.txt", "text/plain", "", false, "notes"},
			{"../../etc/voice memo.amr", "audio/amr", "", false, "#!AMR"},
		})
	})
}

func TestParseEmailCases(t *testing.T) {
	tests := []struct {
		name, in  string
		text      string
		subject   string
		nMedia    int
		wantNotes bool
	}{
		{"no header", "just text", "just text", "", 0, false},
		{"empty", "", "", "", 0, false},
		{"header only", "Subject: hi", "", "hi", 0, false},
		{"mbox line", "From bob@example.com Mon Jan  1 00:00:00 2024\nSubject: hi\n\nbody", "body", "hi", 0, false},
		{"leading space", " Subject: hi\n\nbody", "body", "hi", 0, false},
		{"flowed", "Content-Type: text/plain; format=flowed\n\nThis is a \nlong line.\n-- \nsig", "This is a long line.", "", 0, false},
		{"flowed delsp", "Content-Type: text/plain; format=flowed; delsp=yes\n\nJapa \nnese", "Japanese", "", 0, false},
		{"qp soft breaks", "Content-Transfer-Encoding: quoted-printable\n\nab=\ncd =3D e=ZZ=\n", "abcd = e=ZZ", "", 0, false},
		{"html only", "Content-Type: text/html\n\n<html><body><p>Hi &amp; bye</p><script>x</script></body></html>", "Hi & bye", "", 0, false},
		{"html meta charset", "Content-Type: text/html\n\n<meta charset=\"iso-8859-1\"><p>caf\xe9</p>", "café", "", 0, false},
		{"invalid utf-8", "Content-Type: text/plain; charset=utf-8\n\nbad \xff\xfe byte", "bad \uFFFD byte", "", 0, false},
		{"windows-1252", "Content-Type: text/plain; charset=windows-1252\n\n\x93quoted\x94", "“quoted”", "", 0, false},
		{"koi8-r", "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\xd7\xc5\xd4", "Привет", "", 0, false},
		{"unlabeled iso-2022-jp", "Subject: x\n\n\x1b$B$3$s$K$A$O\x1b(B", "こんにちは", "x", 0, false},
		{"gb2312 subject", "Subject: =?gb2312?B?xOO6ww==?=\n\nx", "x", "你好", 0, false},
		{"unknown charset subject", "Subject: =?x-unknown?Q?caf=C3=A9?=\n\nx", "x", "café", 0, false},
		{"adjacent words", "Subject: =?utf-8?q?a?= =?utf-8?q?b?= c\n\nx", "x", "ab c", 0, false},
		{"broken word", "Subject: =?utf-8?q?open\n\nx", "x", "=?utf-8?q?open", 0, false},
		{"no boundary", "Content-Type: multipart/mixed\n\nplain body", "plain body", "", 0, true},
		{"boundary never used", "Content-Type: multipart/mixed; boundary=x\n\nplain body", "plain body", "", 0, true},
		{"similar boundaries", "Content-Type: multipart/mixed; boundary=ab\n\n--ab\n\none\n--abc\n\n--ab--\n", "one\n--abc", "", 0, false},
		{"crlf", "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--b--\r\n", "line1\nline2", "x", 0, false},
		{"signed", "Content-Type: multipart/signed; boundary=s\n\n--s\n\nsigned text\n--s\nContent-Type: application/pgp-signature\n\nSIG\n--s--\n", "signed text", "", 0, false},
		{"image only", "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n\nR0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=", "", "", 1, false},
		{"bad content type", "Content-Type: garbage\n\nstill text", "still text", "", 0, true},
		{"rfc2231 continuation", "Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: image/png\nContent-Disposition: attachment; filename*0=\"a\"; filename*1=\"b.png\"; filename*0=\"dup\"\n\nx\n--q--", "", "", 1, false},
	}
	for _, tt := range tests {
		e := parseString(t, tt.in, EmailOptions{})
		if e.Text != tt.text || e.Subject != tt.subject || len(e.Media) != tt.nMedia || (len(e.Notes) > 0) != tt.wantNotes {
			t.Errorf("%s: ParseEmail = Text %q, Subject %q, %d media, notes %q; want %q, %q, %d media, notes %v",
				tt.name, e.Text, e.Subject, len(e.Media), e.Notes, tt.text, tt.subject, tt.nMedia, tt.wantNotes)
		}
	}
}

func TestParseEmailPriority(t *testing.T) {
	tests := []struct {
		hdr  string
		want Priority
	}{
		{"", PriorityNormal},
		{"X-Priority: 1 (Highest)", PriorityHigh},
		{"X-Priority: 2", PriorityHigh},
		{"X-Priority: 3", PriorityNormal},
		{"X-Priority: 5 (Lowest)", PriorityLow},
		{"Importance: High", PriorityHigh},
		{"Importance: low", PriorityLow},
		{"Priority: urgent", PriorityHigh},
		{"Priority: non-urgent", PriorityLow},
		{"Priority: normal", PriorityNormal},
	}
	for _, tt := range tests {
		e := parseString(t, tt.hdr+"\n\nx", EmailOptions{})
		if e.Priority != tt.want {
			t.Errorf("%q: Priority = %v, want %v", tt.hdr, e.Priority, tt.want)
		}
	}
}

func TestParseEmailAddresses(t *testing.T) {
	in := "From: +15551234567/TYPE=PLMN\nTo: a@example.com, broken <<b@example.com>, \"Q, R\" <q@example.com>\nBcc: hidden@example.com\nReturn-Receipt-To: <rr@example.com>\n\nx"
	e := parseString(t, in, EmailOptions{})
	if e.From == nil || e.From.Address != "+15551234567/TYPE=PLMN" {
		t.Errorf("From = %v, want the PLMN address", e.From)
	}
	if want := []string{"a@example.com", "b@example.com", "q@example.com"}; !reflect.DeepEqual(e.To, want) {
		t.Errorf("To = %q, want %q", e.To, want)
	}
	if !reflect.DeepEqual(e.Bcc, []string{"hidden@example.com"}) || e.ReturnReceiptTo != "rr@example.com" {
		t.Errorf("Bcc, ReturnReceiptTo = %q, %q", e.Bcc, e.ReturnReceiptTo)
	}
}

func TestParseEmailLimits(t *testing.T) {
	big := "Subject: x\n\n" + strings.Repeat("a", 2000)
	if _, err := ParseEmail(strings.NewReader(big), EmailOptions{MaxSize: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseEmail(2000 bytes, MaxSize 1000) error = %v, want ErrTooLarge", err)
	}
	hdr := "Subject: " + strings.Repeat("x", 5000) + "\n\nbody"
	if _, err := ParseEmail(strings.NewReader(hdr), EmailOptions{MaxHeaderBytes: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseEmail(5000-byte header, MaxHeaderBytes 1000) error = %v, want ErrTooLarge", err)
	}

	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=p\n\n")
	for range 50 {
		b.WriteString("--p\nContent-Type: image/gif\n\nGIF\n")
	}
	b.WriteString("--p--\n")
	e := parseString(t, b.String(), EmailOptions{MaxParts: 10})
	if len(e.Media) != 9 || len(e.Notes) == 0 {
		t.Errorf("MaxParts 10: %d media, notes %q; want 9 media and a note", len(e.Media), e.Notes)
	}

	// Nesting: each level is a multipart holding the next.
	nest := "inner text"
	for i := range 12 {
		bd := "n" + string(rune('a'+i%26)) + string(rune('0'+i/26))
		nest = "Content-Type: multipart/mixed; boundary=" + bd + "\n\n--" + bd + "\n" + nest + "\n--" + bd + "--\n"
	}
	nest = strings.Replace(nest, "inner text", "Content-Type: text/plain\n\ninner text", 1)
	e = parseString(t, nest, EmailOptions{MaxDepth: 5})
	if e.Text != "" || len(e.Notes) == 0 {
		t.Errorf("MaxDepth 5: Text %q, notes %q; want no text and a note", e.Text, e.Notes)
	}
	e = parseString(t, nest, EmailOptions{})
	if e.Text != "inner text" {
		t.Errorf("12 levels, default MaxDepth: Text %q, want %q", e.Text, "inner text")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseEmailReadError(t *testing.T) {
	if _, err := ParseEmail(errReader{}, EmailOptions{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ParseEmail(failing reader) error = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestCorpus parses every real-world mail in the shared corpus and checks
// properties of a few of them.
func TestCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir(), "*", "*"))
	if len(files) == 0 {
		t.Skip("no corpus at " + corpusDir())
	}
	all := map[string]*Email{}
	for _, f := range files {
		e := parseFile(t, f, EmailOptions{})
		all[filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f)] = e
		for _, s := range []string{e.Text, e.Subject} {
			if !utf8.ValidString(s) {
				t.Errorf("%s: invalid UTF-8 %q", f, s)
			}
		}
	}
	get := func(name string) *Email {
		t.Helper()
		e := all[name]
		if e == nil {
			t.Fatalf("corpus file %s missing", name)
		}
		return e
	}

	e := get("enmime/low-quality__html-only-inline.eml")
	if e.Text != "Test of HTML section" {
		t.Errorf("html-only: Text = %q, want %q", e.Text, "Test of HTML section")
	}
	checkMedia(t, "html-only", e.Media, []mediaWant{{"favicon.png", "image/png", "8B8481A2-25CA-4886-9B5A-8EB9115DD064@skynet", true, "\x89PNG"}})

	e = get("mikel-mail/multi_charset__japanese.eml")
	if e.Subject != "まみむめも" || e.Text != "かきくえこ" {
		t.Errorf("japanese: Subject, Text = %q, %q", e.Subject, e.Text)
	}
	e = get("mikel-mail/multi_charset__japanese_shift_jis.eml")
	if !strings.Contains(e.Text, "このメールはテスト用のメールです。") {
		t.Errorf("shift_jis: Text = %q", e.Text)
	}
	e = get("mikel-mail/multi_charset__japanese_attachment.eml")
	checkMedia(t, "japanese attachment", e.Media, []mediaWant{{"てすと.txt", "text/plain", "", false, ""}})
	e = get("mikel-mail/multi_charset__ks_c_5601-1987.eml")
	if e.Text != "스티해" {
		t.Errorf("ks_c_5601-1987: Text = %q", e.Text)
	}

	for _, n := range []string{"enmime/mail__qp-utf8-header.eml", "enmime/mail__qp-utf8-header-no-break.eml"} {
		e = get(n)
		if e.Subject != "MIME UTF8 Test ¢ More Text" || !strings.HasPrefix(e.Text, "Lorem ipsum dolor sit amet") {
			t.Errorf("%s: Subject, Text = %q, %.30q", n, e.Subject, e.Text)
		}
		if !reflect.DeepEqual(e.To, []string{"marczak@inbucket.com"}) {
			t.Errorf("%s: To = %q", n, e.To)
		}
	}
	e = get("mikel-mail/rfc6532__utf8_headers.eml")
	if e.Subject != "Säying Hello" || e.From == nil || e.From.Name != "Jöhn Doe" {
		t.Errorf("rfc6532: Subject, From = %q, %v", e.Subject, e.From)
	}
	e = get("mikel-mail/plain_emails__raw_email_with_partially_quoted_subject.eml")
	if e.Subject != `Re: Test: "漢字" mid "漢字" tail` {
		t.Errorf("partially quoted subject = %q", e.Subject)
	}

	e = get("mikel-mail/attachment_emails__attachment_pdf.eml")
	checkMedia(t, "pdf", e.Media, []mediaWant{{"broken.pdf", "application/pdf", "", false, "%PDF"}})
	e = get("mikel-mail/attachment_emails__attachment_nonascii_filename.eml")
	checkMedia(t, "nonascii filename", e.Media, []mediaWant{{"ciële.txt", "text/plain", "", false, ""}})
	e = get("mikel-mail/attachment_emails__attachment_message_rfc822.eml")
	if !strings.Contains(e.Text, "---------- Forwarded message ----------\nFrom: Test Tester <xxxx@xxxx.com>") {
		t.Errorf("message/rfc822: Text = %q", e.Text)
	}
	checkMedia(t, "message/rfc822", e.Media, []mediaWant{{"broken.pdf", "application/pdf", "", false, "%PDF"}})
	e = get("enmime/low-quality__bad-header-wrap.eml")
	checkMedia(t, "bad header wrap", e.Media, []mediaWant{{"7DDA4_foo_9E5D72.zip", "application/x-zip-compressed", "", false, ""}})
	e = get("enmime/mail__mime-bad-content-type.eml")
	checkMedia(t, "bad content type", e.Media, []mediaWant{{"Invoice_302232133150612.pdf", "application/pdf", "", false, "%PDF"}})
	e = get("enmime/low-quality__bad-header-start.eml")
	if e.Subject != "plain text" || e.Text != "A text section" {
		t.Errorf("bad header start: Subject, Text = %q, %q", e.Subject, e.Text)
	}
	e = get("mikel-mail/plain_emails__raw_email_reply.eml")
	if e.Text != "Message body" || len(e.References) != 2 {
		t.Errorf("reply: Text %q, References %q", e.Text, e.References)
	}

	e = get("mms2r/iphone-image-02.mail")
	if e.Text != "Jim's favorite" {
		t.Errorf("iphone: Text = %q", e.Text)
	}
	checkMedia(t, "iphone", e.Media, []mediaWant{{"photo.PNG", "image/png", "", true, "\x89PNG"}})
	e = get("mms2r/att-iphone-01.mail")
	if e.Text != "Sent from my iPhone" {
		t.Errorf("att-iphone: Text = %q, want the one-liner kept when it is all", e.Text)
	}
	e = get("mms2r/1nbox-2images-01.mail")
	if e.From == nil || e.From.Address != "+919812345678/TYPE=PLMN" {
		t.Errorf("1nbox: From = %v", e.From)
	}
}

// TestCorpusSMIL feeds the corpus media through UniqueNames and BuildSMIL.
func TestCorpusSMIL(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(corpusDir(), "mms2r", "*"))
	if len(files) == 0 {
		t.Skip("no corpus")
	}
	for _, f := range files {
		e := parseFile(t, f, EmailOptions{})
		hints := []NameHint{{Name: "text", ContentType: "text/plain"}}
		var cts []string
		for _, m := range e.Media {
			hints = append(hints, NameHint{m.Name, m.ContentType})
			cts = append(cts, m.ContentType)
		}
		names := UniqueNames(hints)
		s := BuildSMIL(SlidesFor(names[1:], cts, names[0]), Layout{})
		checkXML(t, s)
	}
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("SMIL not well-formed: %v\n%s", err, b)
		}
	}
}

func FuzzParseEmail(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.eml")
	corpus, _ := filepath.Glob(filepath.Join(corpusDir(), "*", "*"))
	for _, p := range append(seeds, corpus...) {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEmail(bytes.NewReader(b), EmailOptions{MaxSize: 1 << 20, MaxParts: 64})
		if err != nil {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ParseEmail error %v", err)
			}
			return
		}
		if !utf8.ValidString(e.Text) || !utf8.ValidString(e.Subject) {
			t.Fatalf("invalid UTF-8: %q %q", e.Text, e.Subject)
		}
		if len(e.Media) > 64 {
			t.Fatalf("%d media with MaxParts 64", len(e.Media))
		}
		var hints []NameHint
		for _, m := range e.Media {
			hints = append(hints, NameHint{m.Name, m.ContentType})
		}
		names := UniqueNames(hints)
		seen := map[string]bool{}
		for _, n := range names {
			if seen[strings.ToLower(n)] || n == "" {
				t.Fatalf("UniqueNames = %q", names)
			}
			seen[strings.ToLower(n)] = true
		}
		checkXML(t, BuildSMIL(SlidesFor(names, nil, "text.txt"), Layout{}))
	})
}
