package dsn

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

var (
	arrival = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	attempt = time.Date(2026, 11, 25, 9, 5, 0, 0, time.UTC)
)

const original = "From: Alice <alice@example.com>\r\n" +
	"To: +15551234567@mms.relay.test\r\n" +
	"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n" +
	"Message-ID: <orig-1@example.com>\r\n" +
	"Date: Wed, 25 Nov 2026 08:59:00 +0000\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello from Cologne.\r\n"

func failedReport() Report {
	return Report{
		ReportingHost:      "relay.example.net",
		OriginalSender:     "alice@example.com",
		OriginalEnvelopeID: "env-42",
		Arrival:            arrival,
		Original:           []byte(original),
		Recipients: []Recipient{{
			Addr:           "+15551234567@mms.relay.test",
			ORCPT:          "rfc822;+15551234567@mms.relay.test",
			Action:         ActionFailed,
			Status:         "5.1.1",
			DiagnosticCode: "550 5.1.1 no such number",
			RemoteMTA:      "mmsc.operator.test",
			Reason:         "The mobile network refused the message: 550 5.1.1 no such number",
			LastAttempt:    attempt,
		}, {
			Addr:           "+15557654321@mms.relay.test",
			Action:         ActionDelayed,
			Status:         "4.4.1",
			LastAttempt:    attempt,
			WillRetryUntil: arrival.Add(48 * time.Hour),
		}},
	}
}

// structure reads a report with go-message and returns its top-level
// header and parts.
func structure(t *testing.T, raw []byte) (message.Header, []*part) {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message.Read = %v", err)
	}
	mr := e.MultipartReader()
	if mr == nil {
		t.Fatalf("report is not multipart:\n%s", raw)
	}
	var parts []*part
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart = %v", err)
		}
		b, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		parts = append(parts, &part{h: p.Header, body: b})
	}
	return e.Header, parts
}

type part struct {
	h    message.Header
	body []byte
}

func TestBuildStructure(t *testing.T) {
	raw, err := Build(failedReport())
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	for i, l := range strings.Split(string(raw), "\n") {
		if i < len(strings.Split(string(raw), "\n"))-1 && !strings.HasSuffix(l, "\r") {
			t.Fatalf("line %d %q does not end in CRLF", i+1, l)
		}
		if len(l) > 1000 {
			t.Fatalf("line %d is %d octets long", i+1, len(l))
		}
	}
	h, parts := structure(t, raw)
	mt, params, err := h.ContentType()
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("Content-Type = %q %v %v, want multipart/report; report-type=delivery-status", mt, params, err)
	}
	mh := mail.Header{Header: h}
	from, _ := mh.AddressList("From")
	if len(from) != 1 || from[0].Address != "MAILER-DAEMON@relay.example.net" || from[0].Name != "Mail Delivery System" {
		t.Errorf("From = %v", from)
	}
	if to, _ := mh.AddressList("To"); len(to) != 1 || to[0].Address != "alice@example.com" {
		t.Errorf("To = %v", to)
	}
	subj, err := mh.Subject()
	if err != nil || subj != "Undelivered MMS: Grüße aus Köln" {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	if rawSubj := h.Get("Subject"); !strings.Contains(rawSubj, "=?utf-8?") {
		t.Errorf("non-ASCII subject not RFC 2047 encoded: %q", rawSubj)
	}
	for k, want := range map[string]string{
		"Auto-Submitted": "auto-replied", "In-Reply-To": "<orig-1@example.com>",
		"References": "<orig-1@example.com>", "MIME-Version": "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@relay.example.net>") {
		t.Errorf("Message-ID = %q", id)
	}
	if d, err := mh.Date(); err != nil || time.Since(d) > time.Minute {
		t.Errorf("Date = %v, %v", d, err)
	}

	if len(parts) != 3 {
		t.Fatalf("report has %d parts, want 3", len(parts))
	}
	types := []string{"text/plain", "message/delivery-status", "message/rfc822"}
	for i, p := range parts {
		if mt, _, _ := p.h.ContentType(); mt != types[i] {
			t.Errorf("part %d is %s, want %s", i+1, mt, types[i])
		}
	}
	human := string(parts[0].body)
	for _, want := range []string{
		"+15551234567: The mobile network refused the message: 550 5.1.1 no such number",
		"+15557654321: The message has not been delivered yet",
		"Subject: Grüße aus Köln",
	} {
		if !strings.Contains(human, want) {
			t.Errorf("explanation lacks %q:\n%s", want, human)
		}
	}
	status := string(parts[1].body)
	for _, want := range []string{
		"Reporting-MTA: dns; relay.example.net\r\n",
		"Original-Envelope-Id: env-42\r\n",
		"Arrival-Date: Wed, 25 Nov 2026 09:00:00 +0000\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822;+15551234567@mms.relay.test\r\n" +
			"Final-Recipient: rfc822;+15551234567@mms.relay.test\r\n" +
			"Action: failed\r\nStatus: 5.1.1\r\n" +
			"Remote-MTA: dns; mmsc.operator.test\r\n" +
			"Diagnostic-Code: smtp; 550 5.1.1 no such number\r\n" +
			"Last-Attempt-Date: Wed, 25 Nov 2026 09:05:00 +0000\r\n",
		"\r\n\r\nFinal-Recipient: rfc822;+15557654321@mms.relay.test\r\n" +
			"Action: delayed\r\nStatus: 4.4.1\r\n",
		"Will-Retry-Until: Fri, 27 Nov 2026 09:00:00 +0000\r\n",
	} {
		if !strings.Contains(status, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, status)
		}
	}
	if strings.Count(status, "Will-Retry-Until") != 1 {
		t.Errorf("Will-Retry-Until outside delayed recipients:\n%s", status)
	}
	if string(parts[2].body) != original {
		t.Errorf("returned original = %q, want %q", parts[2].body, original)
	}
}

func TestRoundTrip(t *testing.T) {
	in := failedReport()
	in.Date = time.Date(2026, 11, 25, 9, 6, 0, 0, time.UTC)
	in.MessageID = "<dsn-1@relay.example.net>"
	raw, err := Build(in)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if got.ReportingHost != in.ReportingHost || got.OriginalSender != in.OriginalSender ||
		got.OriginalEnvelopeID != in.OriginalEnvelopeID || !got.Arrival.Equal(in.Arrival) ||
		!got.Date.Equal(in.Date) || got.MessageID != in.MessageID || got.Ret != "FULL" ||
		string(got.Original) != original {
		t.Errorf("Parse(Build(r)) = %+v", got)
	}
	if len(got.Recipients) != 2 {
		t.Fatalf("Parse(Build(r)) has %d recipients, want 2", len(got.Recipients))
	}
	want0 := in.Recipients[0]
	want0.ORCPT = "+15551234567@mms.relay.test"
	if g := got.Recipients[0]; g.Addr != want0.Addr || g.ORCPT != want0.ORCPT || g.Action != want0.Action ||
		g.Status != want0.Status || g.DiagnosticCode != want0.DiagnosticCode || g.RemoteMTA != want0.RemoteMTA ||
		g.Reason != want0.Reason || !g.LastAttempt.Equal(want0.LastAttempt) || !g.WillRetryUntil.IsZero() {
		t.Errorf("recipient 0 = %+v, want %+v", g, want0)
	}
	want1 := in.Recipients[1]
	if g := got.Recipients[1]; g.Addr != want1.Addr || g.Action != ActionDelayed || g.Status != "4.4.1" ||
		!g.WillRetryUntil.Equal(want1.WillRetryUntil) || !strings.HasPrefix(g.Reason, "The message has not been delivered yet") {
		t.Errorf("recipient 1 = %+v", g)
	}
	// What Parse returns builds again to the same report.
	again, err := Build(*got)
	if err != nil {
		t.Fatalf("Build(Parse(Build(r))) = %v", err)
	}
	if !bytes.Equal(stripBoundary(again), stripBoundary(raw)) {
		t.Errorf("Build(Parse(Build(r))) differs:\n%s\n----\n%s", again, raw)
	}
}

// stripBoundary blanks the random boundary so two builds compare.
func stripBoundary(b []byte) []byte {
	s := string(b)
	i := strings.Index(s, "=_dsn_")
	if i < 0 {
		return b
	}
	return []byte(strings.ReplaceAll(s, s[i:i+6+24], "BOUNDARY"))
}

func TestInjection(t *testing.T) {
	r := failedReport()
	r.Recipients[0].DiagnosticCode = "550 no\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822;evil@x"
	r.Recipients[0].Reason = "refused\r\nBcc: victim@example.org"
	r.Recipients[0].RemoteMTA = "mx\r\nX-Injected: 1"
	r.OriginalEnvelopeID = "e\nX-Evil: 1"
	r.Original = []byte("Subject: hi\r\n\tthere\r\nBcc: x@y\r\n\r\nbody\r\n")
	raw, err := Build(r)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	h, parts := structure(t, raw)
	if h.Has("Bcc") || h.Has("X-Injected") || h.Has("X-Evil") {
		t.Errorf("injected header fields: %v", h.Map())
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if len(got.Recipients) != 2 || got.Recipients[0].Action != ActionFailed ||
		got.Recipients[0].DiagnosticCode != "550 no Action: delivered Final-Recipient: rfc822;evil@x" {
		t.Errorf("recipients after injection = %+v", got.Recipients)
	}
	for _, l := range strings.Split(string(parts[1].body), "\r\n") {
		if strings.HasPrefix(l, "X-") || strings.HasPrefix(l, "Final-Recipient: rfc822;evil") {
			t.Errorf("injected delivery-status line %q", l)
		}
	}
	if subj := h.Get("Subject"); subj != "Undelivered MMS: hi there" {
		t.Errorf("Subject = %q", subj)
	}

	// Addresses from our envelope with line breaks are refused, not mended.
	for _, bad := range []func(*Report){
		func(r *Report) { r.OriginalSender = "a@b\r\nBcc: c@d" },
		func(r *Report) { r.Recipients[0].Addr = "x@y\nAction: delivered" },
		func(r *Report) { r.Recipients[0].ORCPT = "rfc822;x@y>" },
		func(r *Report) { r.ReportingHost = "relay\r\nX: y" },
		func(r *Report) { r.MessageID = "<a@b>\r\nX: y" },
		func(r *Report) { r.Recipients[0].Status = "5.1.1\r\nX: y" },
		func(r *Report) { r.Recipients[0].Action = "bounced" },
		func(r *Report) { r.Recipients = nil },
	} {
		r := failedReport()
		bad(&r)
		if b, err := Build(r); err == nil {
			t.Errorf("Build(%+v) = nil error:\n%s", r, b)
		}
	}
}

func TestNullSender(t *testing.T) {
	for _, s := range []string{"", "<>", " <> "} {
		if !NullSender(s) {
			t.Errorf("NullSender(%q) = false, want true", s)
		}
		r := failedReport()
		r.OriginalSender = s
		if _, err := Build(r); !errors.Is(err, ErrNullSender) {
			t.Errorf("Build with sender %q = %v, want ErrNullSender", s, err)
		}
	}
	if NullSender("a@b") || NullSender("<a@b>") {
		t.Error("NullSender of a real address = true")
	}
	r := failedReport()
	r.OriginalSender = "<alice@example.com>"
	if raw, err := Build(r); err != nil || !bytes.Contains(raw, []byte("To: <alice@example.com>\r\n")) {
		t.Errorf("Build with a bracketed sender = %v", err)
	}
}

func TestShouldNotify(t *testing.T) {
	tests := []struct {
		notify []string
		action string
		want   bool
	}{
		{nil, ActionFailed, true},
		{nil, ActionDelayed, true},
		{nil, ActionDelivered, false},
		{nil, ActionRelayed, false},
		{[]string{"NEVER"}, ActionFailed, false},
		{[]string{"never"}, ActionDelayed, false},
		{[]string{"SUCCESS"}, ActionDelivered, true},
		{[]string{"SUCCESS"}, ActionRelayed, true},
		{[]string{"SUCCESS"}, ActionExpanded, true},
		{[]string{"SUCCESS"}, ActionFailed, false},
		{[]string{"SUCCESS", "FAILURE"}, ActionFailed, true},
		{[]string{"SUCCESS,DELAY"}, ActionDelayed, true},
		{[]string{"FAILURE"}, ActionDelayed, false},
		{[]string{"delay"}, ActionDelayed, true},
		{[]string{"FAILURE"}, "bogus", false},
	}
	for _, tt := range tests {
		if got := ShouldNotify(tt.notify, tt.action); got != tt.want {
			t.Errorf("ShouldNotify(%q, %q) = %v, want %v", tt.notify, tt.action, got, tt.want)
		}
	}
}

func TestOriginalBounds(t *testing.T) {
	big := original + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 5000)
	r := failedReport()
	r.Original = []byte(big)
	raw, err := Build(r)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	if len(raw) > DefaultMaxOriginal {
		t.Errorf("report of a %d-octet original is %d octets", len(big), len(raw))
	}
	_, parts := structure(t, raw)
	if mt, _, _ := parts[2].h.ContentType(); mt != "text/rfc822-headers" {
		t.Errorf("too large original returned as %s, want text/rfc822-headers", mt)
	}
	hdr := original[:strings.Index(original, "\r\n\r\n")+2]
	if string(parts[2].body) != hdr {
		t.Errorf("returned header = %q, want %q", parts[2].body, hdr)
	}
	if !strings.Contains(string(parts[0].body), "too large") {
		t.Errorf("explanation does not say the original was too large:\n%s", parts[0].body)
	}

	// MaxOriginal cuts the header too, at a field boundary.
	r.MaxOriginal = 100
	raw, err = Build(r)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	got, err := Parse(raw)
	if err != nil || got.Ret != "HDRS" || len(got.Original) > 100 || !strings.HasPrefix(hdr, string(got.Original)) ||
		!strings.HasSuffix(string(got.Original), "\r\n") {
		t.Errorf("header cut to 100 = %q (%s), %v", got.Original, got.Ret, err)
	}

	// RET=HDRS and reports of delay return the header only.
	r = failedReport()
	r.Ret = "HDRS"
	raw, _ = Build(r)
	if got, err := Parse(raw); err != nil || got.Ret != "HDRS" || string(got.Original) != hdr {
		t.Errorf("RET=HDRS returned %q (%s), %v", got.Original, got.Ret, err)
	}
	r = failedReport()
	r.Recipients = r.Recipients[1:]
	raw, _ = Build(r)
	if got, err := Parse(raw); err != nil || got.Ret != "HDRS" {
		t.Errorf("delay report returned %s, %v", got.Ret, err)
	}
	if h, _ := structure(t, raw); !strings.HasPrefix(decodeSubject(h.Get("Subject")), "Delayed MMS: ") {
		t.Errorf("delay Subject = %q", h.Get("Subject"))
	}

	// No original: two parts.
	r = failedReport()
	r.Original = nil
	raw, _ = Build(r)
	if _, parts := structure(t, raw); len(parts) != 2 {
		t.Errorf("report without original has %d parts, want 2", len(parts))
	}
	if h, _ := structure(t, raw); h.Get("Subject") != "Undelivered MMS: (no subject)" || h.Has("In-Reply-To") {
		t.Errorf("report without original: Subject %q, In-Reply-To %q", h.Get("Subject"), h.Get("In-Reply-To"))
	}
}

func decodeSubject(s string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

func TestSuccessAndLF(t *testing.T) {
	r := Report{
		ReportingHost: "relay.example.net", OriginalSender: "bob@example.org",
		Original:   []byte("Subject: plain\nMessage-ID: <x@y>\n\nbody\n"),
		Recipients: []Recipient{{Addr: "+15551234567/TYPE=PLMN@mms.relay.test", Action: ActionRelayed}},
	}
	raw, err := Build(r)
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	h, parts := structure(t, raw)
	if h.Get("Subject") != "Delivered MMS: plain" {
		t.Errorf("Subject = %q", h.Get("Subject"))
	}
	if string(parts[2].body) != "Subject: plain\r\nMessage-ID: <x@y>\r\n" {
		t.Errorf("returned header = %q, want CRLF header only", parts[2].body)
	}
	got, err := Parse(raw)
	if err != nil || got.Recipients[0].Status != "2.0.0" || got.Recipients[0].Action != ActionRelayed ||
		!strings.Contains(got.Recipients[0].Reason, "does not confirm delivery") {
		t.Errorf("Parse = %+v, %v", got, err)
	}
	if !strings.Contains(string(parts[0].body), "+15551234567: ") {
		t.Errorf("explanation does not name the number:\n%s", parts[0].body)
	}
}

// A DSN as another MTA writes it: LF line ends, comments, extra blank
// lines, a non-report wrapper.
func TestParseForeign(t *testing.T) {
	raw := "From: MAILER-DAEMON@mx.example.org\n" +
		"To: alice@example.com\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"B\"\n" +
		"\n--B\nContent-Type: text/plain\n\nsorry\n" +
		"--B\nContent-Type: message/delivery-status\n\n" +
		"Reporting-MTA: dns; mx.example.org\nX-Postfix-Queue-ID: 4Y2\nArrival-Date: garbage\n\n\n" +
		"Final-Recipient: rfc822; bob@example.org\nOriginal-Recipient: rfc822;Bob@example.org\n" +
		"Action: failed\nStatus: 5.1.1 (bad mailbox)\nRemote-MTA: dns; mx2.example.org\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@example.org>: Recipient address\n    rejected: User unknown\n" +
		"this line is junk\n\n" +
		"--B\nContent-Type: text/rfc822-headers\n\nSubject: hi\n--B--\n"
	got, err := Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if got.ReportingHost != "mx.example.org" || !got.Arrival.IsZero() || got.Ret != "HDRS" || len(got.Recipients) != 1 {
		t.Fatalf("Parse = %+v", got)
	}
	rc := got.Recipients[0]
	if rc.Addr != "bob@example.org" || rc.ORCPT != "Bob@example.org" || rc.Status != "5.1.1" || rc.RemoteMTA != "mx2.example.org" ||
		rc.DiagnosticCode != "550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown" {
		t.Errorf("recipient = %+v", rc)
	}
	if _, err := Parse([]byte("Subject: hi\r\n\r\nnot a report\r\n")); !errors.Is(err, ErrNotDSN) {
		t.Errorf("Parse(plain mail) = %v, want ErrNotDSN", err)
	}
}

func FuzzParse(f *testing.F) {
	raw, _ := Build(failedReport())
	f.Add(raw)
	f.Add([]byte("Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: x\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		// A report read back builds when it has what Build needs.
		r.ReportingHost, r.OriginalSender, r.MessageID = "h.test", "a@b.test", ""
		for i := range r.Recipients {
			r.Recipients[i].Status = ""
		}
		_, _ = Build(*r)
	})
}
