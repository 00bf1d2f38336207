package relay

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/mail/dsn"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// sink is an SMTP server on loopback that records what it gets: the peer
// MMSC in MM4 tests and the sender's mail server for bounces.
type sink struct {
	mu       sync.Mutex
	mails    []sinkMail
	dataCode int // 0: accept
	addr     string
	srv      *smtp.Server
	got      chan struct{}
}

type sinkMail struct {
	from  string
	rcpts []string
	data  []byte
}

func (k *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }

type sinkSession struct {
	k     *sink
	from  string
	rcpts []string
}

func (s *sinkSession) Mail(f string, _ *smtp.MailOptions) error { s.from = f; return nil }
func (s *sinkSession) Rcpt(t string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, t)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, _ := io.ReadAll(r)
	s.k.mu.Lock()
	code := s.k.dataCode
	if code == 0 {
		s.k.mails = append(s.k.mails, sinkMail{s.from, s.rcpts, b})
	}
	s.k.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "no such subscriber"}
	}
	select {
	case s.k.got <- struct{}{}:
	default:
	}
	return nil
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

func startSink(t *testing.T) *sink {
	t.Helper()
	k := &sink{got: make(chan struct{}, 100)}
	k.srv = smtp.NewServer(k)
	k.srv.Domain = "sink.test"
	k.srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = l.Addr().String()
	go k.srv.Serve(l)
	t.Cleanup(func() { k.srv.Close() })
	return k
}

func (k *sink) wait(t *testing.T, n int) []sinkMail {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		k.mu.Lock()
		got := len(k.mails)
		mails := append([]sinkMail(nil), k.mails...)
		k.mu.Unlock()
		if got >= n {
			return mails
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink got %d mails, want %d", got, n)
		}
		select {
		case <-k.got:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type testRelay struct {
	*Relay
	addr   string
	dir    string
	outbox string
	cancel context.CancelFunc
	done   chan struct{}
}

// startRelay runs a relay on loopback with an outbox route for "+" and
// the routes extra adds.
func startRelay(t *testing.T, mod func(*Options)) *testRelay {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "store"), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := adapt.LookupProfile("default")
	outbox := filepath.Join(dir, "outbox")
	opts := Options{
		Hostname: "relay.test", Store: Stores{Queue: st.Queue, KV: st.KV, Admin: st.Admin, Space: st.Space},
		Conversion: ConversionOptions{Recipients: mapping.RecipientOptions{Domains: []string{"mms.test"},
			NumberOptions: mapping.NumberOptions{DefaultRegion: "US"}}},
		Routes: []Route{{Name: "outbox", Prefix: "+", Via: &deliver.Outbox{Dir: outbox}, Profile: prof}},
		Queue:  QueueOptions{RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, Workers: 2},
		SMTP:   SMTPOptions{Trusted: func(netip.Addr) bool { return false }},
	}
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &testRelay{Relay: r, addr: l.Addr().String(), dir: dir, outbox: outbox, cancel: cancel, done: make(chan struct{})}
	go r.Serve(l, false)
	go func() { r.Run(ctx); close(tr.done) }()
	t.Cleanup(func() {
		cancel()
		r.Shutdown(context.Background())
		<-tr.done
		st.Close()
	})
	return tr
}

const simpleMail = "From: Alice <alice@example.com>\r\nTo: +15551234567@mms.test\r\nSubject: Hello\r\n" +
	"Message-ID: <m1@example.com>\r\nDate: Wed, 25 Nov 2026 09:00:00 +0000\r\n\r\nHi from email!\r\n"

// send runs one SMTP transaction with go-smtp's client and returns the
// error of the first refused step.
func send(t *testing.T, addr, from string, to []string, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func waitFile(t *testing.T, dir, suffix string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), suffix) {
				got = append(got, filepath.Join(dir, e.Name()))
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s files in %s, want %d", len(got), suffix, dir, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutboxEndToEnd(t *testing.T) {
	r := startRelay(t, nil)
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test", "5557654321@MMS.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	files := waitFile(t, r.outbox, ".mms", 1)
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := pdu.Decoder{Strict: true}.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	// One group MMS to both numbers; the second was a Bcc (not in To:).
	if m.Subject.String() != "Hello" || m.From.Address.String() != "Alice <alice@example.com>" {
		t.Errorf("MMS = %+v", m)
	}
	files = waitFile(t, r.outbox, ".mms", 2)
	if len(files) != 2 {
		t.Errorf("outbox has %d PDUs, want 2 (group + Bcc)", len(files))
	}
	if js := waitFile(t, r.outbox, ".json", 2); len(js) != 2 {
		t.Errorf("json files = %v", js)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.metrics.Get("mmsrelay_delivered_total", "route", "outbox") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered metric = %v, want 2", r.metrics.Get("mmsrelay_delivered_total", "route", "outbox"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRefusals(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.SMTP.MaxMessageBytes = 64 * 1024 })
	for _, tt := range []struct {
		rcpt string
		code int
		enh  smtp.EnhancedCode
	}{
		{"someone@gmail.com", 550, smtp.EnhancedCode{5, 7, 1}},
		{"+15551234567@other.example", 550, smtp.EnhancedCode{5, 7, 1}},
		{"sales-2125550123@mms.test", 553, smtp.EnhancedCode{5, 1, 3}},
		{"1800FLOWERS@mms.test", 553, smtp.EnhancedCode{5, 1, 3}},
		{"system@mms.test", 550, smtp.EnhancedCode{5, 7, 1}}, // MM4 answers only from peers
	} {
		err := send(t, r.addr, "alice@example.com", []string{tt.rcpt}, simpleMail)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != tt.code || se.EnhancedCode != tt.enh {
			t.Errorf("RCPT %s: %v, want %d %v", tt.rcpt, err, tt.code, tt.enh)
		}
	}
	big := simpleMail + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 1100)
	err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, big)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		t.Errorf("oversize DATA: %v, want 552", err)
	}
	msgs, err := r.st.Admin.List(context.Background(), store.ListOptions{})
	if err != nil || len(msgs) != 0 {
		t.Errorf("queue holds %d messages after refusals, want 0 (%v)", len(msgs), err)
	}
	// postmaster@ is always taken.
	if err := send(t, r.addr, "bob@example.com", []string{"postmaster@mms.test"}, "Subject: hi\r\n\r\nhello\r\n"); err != nil {
		t.Errorf("postmaster: %v", err)
	}
}

func TestMM4RouteAndAnswers(t *testing.T) {
	peerSink := startSink(t)
	mail := startSink(t)
	prof, _ := adapt.LookupProfile("basic")
	r := startRelay(t, func(o *Options) {
		o.Routes = append(o.Routes, Route{Name: "mm4:+44", Prefix: "+44", Profile: prof,
			Via: &deliver.MM4{Peer: &deliver.SMTPPeer{Addr: peerSink.addr}, Domain: "mms.peer.test",
				OriginatorSystem: "system@mms.test", AckRequest: true}})
		o.Peers = []Peer{{Name: "peer", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
		o.Mailer = &deliver.Mailer{Smarthost: &deliver.SMTPPeer{Addr: mail.addr}}
	})
	body := strings.Replace(simpleMail, "+15551234567@mms.test", "+447911123456@mms.test", 1)
	if err := send(t, r.addr, "alice@example.com", []string{"+447911123456@mms.test"}, body); err != nil {
		t.Fatal(err)
	}
	got := peerSink.wait(t, 1)[0]
	if got.rcpts[0] != "+447911123456/TYPE=PLMN@mms.peer.test" {
		t.Errorf("peer RCPT = %v", got.rcpts)
	}
	req, err := mm4.Parse(got.data)
	if err != nil || req.Type != mm4.ForwardReq || !req.AckRequest || req.OriginatorSystem != "system@mms.test" {
		t.Fatalf("MM4 = %+v, %v", req, err)
	}
	// The peer answers: forward accepted, then the phone rejects it.
	var res bytes.Buffer
	mm4.WriteResponse(&res, &mm4.Response{Type: mm4.ForwardRes, TransactionID: req.TransactionID, MessageID: req.MessageID,
		StatusCode: "Ok", From: "system@mms.peer.test", To: "system@mms.test"})
	if err := send(t, r.addr, "system@mms.peer.test", []string{"system@mms.test"}, res.String()); err != nil {
		t.Fatalf("sending .RES: %v", err)
	}
	// The .RES is on record.
	deadline := time.Now().Add(5 * time.Second)
	for {
		refs, _ := r.st.Queue.Lookup(context.Background(), store.RefTransactionID, req.TransactionID)
		m, _ := r.st.Queue.Get(context.Background(), refs[0].ID)
		if m.Rcpts[0].Report == "forward.res: Ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report after .RES = %q", m.Rcpts[0].Report)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var rep bytes.Buffer
	mm4.WriteDeliveryReport(&rep, &mm4.DeliveryReport{TransactionID: "dr1", MessageID: req.MessageID,
		From: "+447911123456/TYPE=PLMN", To: "alice@example.com", Status: "Rejected", AckRequest: true,
		OriginatorSystem: "system@mms.peer.test"})
	if err := send(t, r.addr, "system@mms.peer.test", []string{"system@mms.test"}, rep.String()); err != nil {
		t.Fatalf("sending the delivery report: %v", err)
	}
	// Alice gets a DSN saying so; the peer gets its MM4_delivery_report.RES.
	mails := mail.wait(t, 2)
	var sawDSN, sawRes bool
	for _, m := range mails {
		if strings.Contains(string(m.data), "multipart/report") && m.rcpts[0] == "alice@example.com" && m.from == "" {
			sawDSN = true
			rep, err := dsn.Parse(m.data)
			if err != nil || len(rep.Recipients) != 1 || rep.Recipients[0].Action != "failed" {
				t.Errorf("DSN = %+v, %v", rep, err)
			}
		}
		if x, err := mm4.Parse(m.data); err == nil && x.Type == mm4.DeliveryReportRes && m.rcpts[0] == "system@mms.peer.test" {
			sawRes = true
		}
	}
	if !sawDSN || !sawRes {
		t.Errorf("DSN sent %v, .RES sent %v", sawDSN, sawRes)
	}
	if n := len(peerSink.wait(t, 1)); n != 1 {
		t.Errorf("peer got %d copies, want 1 (the .RES came in time)", n)
	}
	msgs, _ := r.st.Admin.List(context.Background(), store.ListOptions{Status: store.Delivered})
	found := false
	for _, m := range msgs {
		for _, rc := range m.Rcpts {
			if strings.HasPrefix(rc.Report, "Rejected") {
				found = true
			}
		}
	}
	if !found {
		t.Error("the delivery report was not recorded on the message")
	}
}

// TestNoResponseResends: a peer that takes the message but never sends
// the MM4_forward.RES it was asked for gets it again, same ids.
func TestNoResponseResends(t *testing.T) {
	peerSink := startSink(t)
	prof, _ := adapt.LookupProfile("default")
	r := startRelay(t, func(o *Options) {
		o.Routes = []Route{{Name: "mm4", Prefix: "+", Profile: prof,
			Via: &deliver.MM4{Peer: &deliver.SMTPPeer{Addr: peerSink.addr}, Domain: "mms.peer.test", AckRequest: true}}}
		o.Queue.ResponseTimeout = 300 * time.Millisecond
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	mails := peerSink.wait(t, 2)
	a, err1 := mm4.Parse(mails[0].data)
	b, err2 := mm4.Parse(mails[1].data)
	if err1 != nil || err2 != nil || a.TransactionID != b.TransactionID || a.MessageID != b.MessageID {
		t.Errorf("resent with other ids: %v %v / %v %v", a.TransactionID, a.MessageID, b.TransactionID, b.MessageID)
	}
}

func TestPeerDownThenUpAndBounce(t *testing.T) {
	mail := startSink(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	peerAddr := l.Addr().String()
	l.Close() // the peer is down
	prof, _ := adapt.LookupProfile("default")
	r := startRelay(t, func(o *Options) {
		o.Routes = []Route{{Name: "mm4", Prefix: "+", Profile: prof,
			Via: &deliver.MM4{Peer: &deliver.SMTPPeer{Addr: peerAddr, Timeout: 2 * time.Second}, Domain: "mms.peer.test"}}}
		o.Mailer = &deliver.Mailer{Smarthost: &deliver.SMTPPeer{Addr: mail.addr}}
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.metrics.Get("mmsrelay_retries_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retries while the peer was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The peer comes up on the same port.
	peer := &sink{got: make(chan struct{}, 10)}
	peer.srv = smtp.NewServer(peer)
	peer.srv.ErrorLog = log.New(io.Discard, "", 0)
	pl, err := net.Listen("tcp", peerAddr)
	if err != nil {
		t.Skipf("cannot re-listen on %s: %v", peerAddr, err)
	}
	go peer.srv.Serve(pl)
	defer peer.srv.Close()
	peer.wait(t, 1)

	// A peer that refuses: the sender gets a bounce with the reason.
	peer.mu.Lock()
	peer.dataCode = 550
	peer.mu.Unlock()
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, strings.Replace(simpleMail, "m1@", "m2@", 1)); err != nil {
		t.Fatal(err)
	}
	m := mail.wait(t, 1)[0]
	if m.from != "" || m.rcpts[0] != "alice@example.com" || !bytes.Contains(m.data, []byte("no such subscriber")) {
		t.Errorf("bounce from %q to %v:\n%s", m.from, m.rcpts, m.data)
	}
	// Never a bounce to the null sender.
	if err := send(t, r.addr, "", []string{"+15551234567@mms.test"}, strings.Replace(simpleMail, "m1@", "m3@", 1)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(mail.wait(t, 1)); n != 1 {
		t.Errorf("%d bounces, want 1 (none to the null sender)", n)
	}
}

func TestAggregatorStatus(t *testing.T) {
	for code, want := range map[string]int{"2": aggOK, "1": aggPermanent, "201": aggPermanent, "114": aggTemporary,
		"211": aggTemporary, "220": aggTemporary} {
		if got, known := aggregatorStatus(code); got != want || !known {
			t.Errorf("aggregatorStatus(%s) = %d, %v; want %d", code, got, known, want)
		}
	}
	if _, known := aggregatorStatus("4720"); known {
		t.Error("an unknown code counts as known")
	}
}

// TestTemporaryRes: an aggregator's temporary failure in its .RES makes
// the relay send the message again, same ids.
func TestTemporaryRes(t *testing.T) {
	peerSink := startSink(t)
	prof, _ := adapt.LookupProfile("default")
	r := startRelay(t, func(o *Options) {
		o.Routes = []Route{{Name: "mm4", Prefix: "+", Profile: prof,
			Via: &deliver.MM4{Peer: &deliver.SMTPPeer{Addr: peerSink.addr}, Domain: "mms.peer.test",
				OriginatorSystem: "system@mms.test", AckRequest: true}}}
		o.Peers = []Peer{{Name: "peer", Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	req, err := mm4.Parse(peerSink.wait(t, 1)[0].data)
	if err != nil {
		t.Fatal(err)
	}
	res := "From: system@mms.peer.test\r\nTo: system@mms.test\r\nX-Mms-Message-Type: MM4_forward.RES\r\n" +
		"X-Mms-Transaction-ID: " + req.TransactionID + "\r\nX-Mms-Message-ID: " + req.MessageID + "\r\n" +
		"X-Mms-Request-Status-Code: Ok\r\nX-Internal-Status-Code: 114\r\n\r\n"
	if err := send(t, r.addr, "system@mms.peer.test", []string{"system@mms.test"}, res); err != nil {
		t.Fatal(err)
	}
	again, err := mm4.Parse(peerSink.wait(t, 2)[1].data)
	if err != nil || again.TransactionID != req.TransactionID {
		t.Errorf("resent %v, %v", again, err)
	}
}

// TestDedupAcrossTransactions: an MTA that splits the recipients of one
// email over several SMTP transactions must not make a number get it twice.
func TestDedupAcrossTransactions(t *testing.T) {
	r := startRelay(t, nil)
	body := "From: alice@example.com\r\nTo: +15551234567@mms.test, +15557654321@mms.test\r\nSubject: once\r\n" +
		"Message-ID: <dup@example.com>\r\n\r\nOnly once, please.\r\n"
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, body); err != nil {
		t.Fatal(err)
	}
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test", "+15557654321@mms.test"}, body); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.metrics.Get("mmsrelay_duplicates_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second copy was not recognised")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	counts := map[string]int{}
	for _, f := range waitFile(t, r.outbox, ".mms", 2) {
		b, _ := os.ReadFile(f)
		m, err := pdu.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range append(m.To, m.Cc...) {
			counts[a.String()]++
		}
	}
	if counts["+15551234567/TYPE=PLMN"] != 1 || counts["+15557654321/TYPE=PLMN"] != 1 {
		t.Errorf("deliveries per number = %v, want 1 each", counts)
	}
}

// TestGroupMode: an email to several numbers is one group MMS, every
// number in its To or Cc, however many workers there are.
func TestGroupMode(t *testing.T) {
	r := startRelay(t, nil)
	body := "From: alice@example.com\r\nTo: +15551234567@mms.test, +15557654321@mms.test\r\nCc: +15550001111@mms.test\r\n" +
		"Subject: all\r\n\r\nTo everyone.\r\n"
	rcpts := []string{"+15551234567@mms.test", "+15557654321@mms.test", "+15550001111@mms.test"}
	if err := send(t, r.addr, "alice@example.com", rcpts, body); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r.outbox, ".mms", 1)
	time.Sleep(300 * time.Millisecond) // any second MMS would be written by now
	files := waitFile(t, r.outbox, ".mms", 1)
	if len(files) != 1 {
		t.Fatalf("outbox has %d MMS, want one group MMS", len(files))
	}
	b, _ := os.ReadFile(files[0])
	m, err := pdu.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.To) != 2 || len(m.Cc) != 1 {
		t.Errorf("group MMS To = %v, Cc = %v, want 2 and 1", m.To, m.Cc)
	}
}

func TestIndividualMode(t *testing.T) {
	r := startRelay(t, func(o *Options) { o.Conversion.GroupMode = "individual" })
	body := "From: alice@example.com\r\nTo: +15551234567@mms.test, +15557654321@mms.test\r\nSubject: each\r\n\r\nOne each.\r\n"
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test", "+15557654321@mms.test"}, body); err != nil {
		t.Fatal(err)
	}
	for _, f := range waitFile(t, r.outbox, ".mms", 2) {
		b, _ := os.ReadFile(f)
		m, err := pdu.Decode(b)
		if err != nil || len(m.To) != 1 {
			t.Errorf("%s: To = %v (%v), want one number", filepath.Base(f), m.To, err)
		}
	}
}

// TestReload: new options take effect for the next session's commands,
// without a restart.
func TestReload(t *testing.T) {
	r := startRelay(t, nil)
	opts := *r.o()
	opts.Conversion.Recipients.Domains = []string{"mms2.test"}
	if err := r.Reload(opts); err != nil {
		t.Fatal(err)
	}
	err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("old domain after reload: %v, want 550", err)
	}
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms2.test"}, simpleMail); err != nil {
		t.Errorf("new domain after reload: %v", err)
	}
	opts.Routes = nil
	if err := r.Reload(opts); err == nil {
		t.Error("Reload accepted options without routes")
	}
}

func TestAdminAPI(t *testing.T) {
	r := startRelay(t, nil)
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r.outbox, ".mms", 1)
	srv := httptest.NewServer(r.AdminHandler("s3cret"))
	defer srv.Close()
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	code, body := get("/metrics", "s3cret")
	for _, want := range []string{"mmsrelay_accepted_total{kind=\"mms\"} 1", "mmsrelay_queue_depth", "mmsrelay_conversion_seconds_bucket"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if code, body = get("/api/queue", "s3cret"); code != 200 || !strings.Contains(body, "alice@example.com") {
		t.Errorf("/api/queue = %d %s", code, body)
	}
	if code, _ = get("/api/queue/nonexistent", "s3cret"); code != 404 {
		t.Errorf("unknown id: %d", code)
	}
	if code, _ = get("/healthz", "s3cret"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
}

// sizeRoute takes messages up to limit bytes and answers TooLarge above,
// recording the size of every PDU it was offered.
type sizeRoute struct {
	limit int
	mu    sync.Mutex
	sizes []int
}

func (s *sizeRoute) Wire(*deliver.Message) deliver.Wire {
	return deliver.Wire{Interface: mapping.InterfacePDU}
}

func (s *sizeRoute) Deliver(_ context.Context, m *deliver.Message) []deliver.Result {
	b := m.PDU
	if b == nil {
		b, _ = m.MMS.Append(nil)
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, len(b))
	s.mu.Unlock()
	res := make([]deliver.Result, len(m.Recipients))
	for i, r := range m.Recipients {
		res[i] = deliver.Result{Recipient: r, Outcome: deliver.Delivered, Size: len(b)}
		if len(b) > s.limit {
			res[i] = deliver.Result{Recipient: r, Outcome: deliver.TooLarge, Reason: "the peer answered 552 5.3.4 too big",
				Code: 552, Enhanced: "5.3.4", Reply: "552 5.3.4 too big"}
		}
	}
	return res
}

// TestTooLargeGoesSmaller: a peer that refuses the size gets the message
// again at once, sized to 70% of what it refused, until it fits.
func TestTooLargeGoesSmaller(t *testing.T) {
	route := &sizeRoute{limit: 60 << 10}
	prof, _ := adapt.LookupProfile("default")
	r := startRelay(t, func(o *Options) {
		o.Routes = []Route{{Name: "sized", Prefix: "+", Profile: prof, Via: route}}
	})
	// A photo of noise: it compresses badly, so each budget shows.
	img := image.NewRGBA(image.Rect(0, 0, 400, 300))
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rnd.IntN(256))
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	body := "From: alice@example.com\r\nTo: +15551234567@mms.test\r\nSubject: photo\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nLook.\r\n" +
		"--b\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap(base64.StdEncoding.EncodeToString(jpg.Bytes()), 76) + "--b--\r\n"
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, body); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.metrics.Get("mmsrelay_delivered_total", "route", "sized") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not delivered; sizes offered %v", route.sizes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	route.mu.Lock()
	sizes := append([]int(nil), route.sizes...)
	route.mu.Unlock()
	if len(sizes) < 2 || sizes[0] <= route.limit || sizes[len(sizes)-1] > route.limit {
		t.Fatalf("sizes offered = %v, want a refused one, then smaller ones until one fits %d", sizes, route.limit)
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] > sizes[i-1]*7/10 {
			t.Errorf("attempt %d was %d bytes after %d was refused, want at most 70%%", i+1, sizes[i], sizes[i-1])
		}
	}
	if n := r.metrics.Get("mmsrelay_too_large_total", "route", "sized"); int(n) != len(sizes)-1 {
		t.Errorf("too large metric = %v, want %d", n, len(sizes)-1)
	}
}

// wrap breaks s into CRLF-ended lines of n characters.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}
