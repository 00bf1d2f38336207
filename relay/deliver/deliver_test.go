package deliver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// peer is an MMSC's SMTP side for tests: a real go-smtp server on
// loopback that records what it is sent.
type peer struct {
	mu       sync.Mutex
	mails    []peerMail
	rcptCode map[string]int // RCPT address suffix → reply code
	dataCode int            // reply code at the end of DATA
	needAuth bool
}

type peerMail struct {
	from  string
	rcpts []string
	data  []byte
	user  string
}

type peerSession struct {
	p     *peer
	from  string
	rcpts []string
	user  string
}

func (p *peer) NewSession(c *smtp.Conn) (smtp.Session, error) { return &peerSession{p: p}, nil }

func (s *peerSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *peerSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "relay" || pass != "s3cret" {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.user = user
		return nil
	}), nil
}
func (s *peerSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.p.needAuth && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "auth required"}
	}
	s.from = from
	return nil
}
func (s *peerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	for suffix, code := range s.p.rcptCode {
		if strings.Contains(to, suffix) {
			return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "no such number"}
		}
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.p.dataCode == 552 {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	}
	if s.p.dataCode != 0 {
		return &smtp.SMTPError{Code: s.p.dataCode, EnhancedCode: smtp.EnhancedCode{s.p.dataCode / 100, 0, 0}, Message: "refused"}
	}
	s.p.mails = append(s.p.mails, peerMail{from: s.from, rcpts: s.rcpts, data: b, user: s.user})
	return nil
}
func (s *peerSession) Reset()        { s.from, s.rcpts = "", nil }
func (s *peerSession) Logout() error { return nil }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startPeer runs p on 127.0.0.1; mode is "none", "starttls" or "tls".
func startPeer(t *testing.T, p *peer, mode string) (addr string, roots *x509.CertPool) {
	t.Helper()
	s := smtp.NewServer(p)
	s.Domain = "mmsc.test"
	s.ErrorLog = log.New(io.Discard, "", 0)
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 10 << 20
	var l net.Listener
	var err error
	cert := selfSigned(t)
	roots = x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	roots.AddCert(leaf)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	switch mode {
	case "tls":
		l, err = tls.Listen("tcp", "127.0.0.1:0", cfg)
	default:
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if mode == "starttls" {
			s.TLSConfig = cfg
		} else {
			s.AllowInsecureAuth = true
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return l.Addr().String(), roots
}

func testMessage() *Message {
	return &Message{
		QueueID: "q1", TransactionID: "T-1", MessageID: "M-1@relay", From: "alice@example.com",
		Recipients: []string{"+15551234567", "+15557654321"}, Sender: "alice@example.com",
		MMS: &pdu.Message{
			Type: pdu.TypeSendReq, TransactionID: "T-1", Version: pdu.Version12, From: &pdu.From{Address: pdu.Str("alice@example.com")},
			To:      []pdu.EncodedString{pdu.Str("+15551234567/TYPE=PLMN"), pdu.Str("+15557654321/TYPE=PLMN")},
			Subject: pdu.Str("Hello"), DeliveryReport: pdu.Yes, Priority: pdu.PriorityHigh,
			ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.related",
				Params: []pdu.Param{{Name: "start", Value: "<smil>"}, {Name: "type", Value: "application/smil"}}},
			Parts: []pdu.Part{
				{ContentType: pdu.ContentType{Type: "application/smil"}, ContentID: "<smil>", ContentLocation: "smil.xml", Body: []byte("<smil/>")},
				{ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}},
					ContentID: "<t>", ContentLocation: "text.txt", Body: []byte("Hi there")},
			},
		},
	}
}

func TestMM4Delivery(t *testing.T) {
	p := &peer{rcptCode: map[string]int{}}
	addr, _ := startPeer(t, p, "none")
	r := &MM4{Peer: &SMTPPeer{Addr: addr, TLS: "none"}, Domain: "mms.peer.test",
		OriginatorSystem: "system@mms.relay.test", LocalDomain: "mms.relay.test", AckRequest: true}
	res := r.Deliver(context.Background(), testMessage())
	for _, x := range res {
		// AckRequest: the peer took it and is to answer with a .RES.
		if x.Outcome != Awaiting {
			t.Fatalf("result %+v, want awaiting", x)
		}
	}
	if len(p.mails) != 1 {
		t.Fatalf("peer got %d mails, want 1", len(p.mails))
	}
	got := p.mails[0]
	want := []string{"+15551234567/TYPE=PLMN@mms.peer.test", "+15557654321/TYPE=PLMN@mms.peer.test"}
	if got.from != "alice@example.com" || strings.Join(got.rcpts, ",") != strings.Join(want, ",") {
		t.Errorf("envelope = %q → %q, want %q", got.from, got.rcpts, want)
	}
	m, err := mm4.Parse(got.data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != mm4.ForwardReq || m.TransactionID != "T-1" || m.MessageID != "M-1@relay" || m.From != "alice@example.com" ||
		strings.Join(m.To, ",") != "+15551234567/TYPE=PLMN,+15557654321/TYPE=PLMN" || m.Subject != "Hello" ||
		!m.AckRequest || !m.DeliveryReport || m.Priority != "High" || m.MessageClass != "Personal" ||
		m.OriginatorSystem != "system@mms.relay.test" || m.Version == "" || m.Date.IsZero() {
		t.Errorf("MM4 headers = %+v", m)
	}
	for _, h := range []string{"X-Mms-3GPP-MMS-Version", "X-Mms-Message-Type", "X-Mms-Transaction-ID", "X-Mms-Message-ID", "From", "To", "Date", "Content-Type"} {
		if !m.Header.Has(h) {
			t.Errorf("mandatory header %s missing", h)
		}
	}
	_, parts, err := m.Parts(mm4.Limits{})
	if err != nil || len(parts) != 2 || string(parts[1].Body) != "Hi there" {
		t.Errorf("parts = %+v, %v", parts, err)
	}
}

// TestMM4AckRequestAwaits checks that with AckRequest the recipients the
// peer accepted are Awaiting (the .RES is to confirm them), while the ones
// it refused keep their refusal, and that without AckRequest they are
// Delivered.
func TestMM4AckRequestAwaits(t *testing.T) {
	p := &peer{rcptCode: map[string]int{"7654321": 550}}
	addr, _ := startPeer(t, p, "none")
	r := &MM4{Peer: &SMTPPeer{Addr: addr}, Domain: "mms.peer.test", AckRequest: true}
	res := r.Deliver(context.Background(), testMessage())
	if len(res) != 2 || res[0].Outcome != Awaiting || res[0].Code != 250 || res[1].Outcome != Bounce || res[1].Code != 550 {
		t.Errorf("Deliver with AckRequest = %+v, want awaiting then bounce", res)
	}
	p.dataCode = 451
	if res = r.Deliver(context.Background(), testMessage()); res[0].Outcome != Retry {
		t.Errorf("Deliver with AckRequest, 451 at DATA = %+v, want temporary", res)
	}
	p.dataCode = 0
	r.AckRequest = false
	if res = r.Deliver(context.Background(), testMessage()); res[0].Outcome != Delivered {
		t.Errorf("Deliver without AckRequest = %+v, want delivered", res)
	}
}

func TestMM4PerRecipientAndErrors(t *testing.T) {
	p := &peer{rcptCode: map[string]int{"7654321": 550}}
	addr, _ := startPeer(t, p, "none")
	r := &MM4{Peer: &SMTPPeer{Addr: addr}, Domain: "mms.peer.test"}
	res := r.Deliver(context.Background(), testMessage())
	if res[0].Outcome != Delivered || res[1].Outcome != Bounce || res[1].Code != 550 || res[1].Recipient != "+15557654321" {
		t.Errorf("results = %+v", res)
	}
	if !strings.Contains(res[1].Reason, "550") {
		t.Errorf("reason %q does not quote the peer", res[1].Reason)
	}
	p.rcptCode = map[string]int{"5551234567": 452, "7654321": 452}
	res = r.Deliver(context.Background(), testMessage())
	if res[0].Outcome != Retry || res[1].Outcome != Retry {
		t.Errorf("452 results = %+v, want temporary", res)
	}
	p.rcptCode = map[string]int{}
	p.dataCode = 552
	res = r.Deliver(context.Background(), testMessage())
	if res[0].Outcome != TooLarge || res[1].Outcome != TooLarge {
		t.Errorf("552 results = %+v, want too large", res)
	}
	p.dataCode = 451
	if res = r.Deliver(context.Background(), testMessage()); res[0].Outcome != Retry {
		t.Errorf("451 at DATA = %+v, want temporary", res)
	}
	p.dataCode = 554
	if res = r.Deliver(context.Background(), testMessage()); res[0].Outcome != Bounce {
		t.Errorf("554 at DATA = %+v, want permanent", res)
	}
	// Nobody listening: temporary for everyone.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	r.Peer = &SMTPPeer{Addr: dead, Timeout: 5 * time.Second}
	res = r.Deliver(context.Background(), testMessage())
	if len(res) != 2 || res[0].Outcome != Retry || res[1].Outcome != Retry {
		t.Errorf("peer down = %+v, want temporary", res)
	}
}

func TestMM4TLSAndAuth(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		p := &peer{needAuth: true}
		addr, roots := startPeer(t, p, mode)
		peer := &SMTPPeer{Addr: addr, TLS: mode, Username: "relay", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: roots}}
		r := &MM4{Peer: peer, Domain: "mms.peer.test"}
		if res := r.Deliver(context.Background(), testMessage()); res[0].Outcome != Delivered {
			t.Errorf("%s: %+v", mode, res)
		}
		if len(p.mails) != 1 || p.mails[0].user != "relay" {
			t.Errorf("%s: peer mails = %d", mode, len(p.mails))
		}
		peer2 := &SMTPPeer{Addr: addr, TLS: mode, Username: "relay", Password: "wrong", TLSConfig: &tls.Config{RootCAs: roots}}
		res := (&MM4{Peer: peer2, Domain: "x"}).Deliver(context.Background(), testMessage())
		if res[0].Outcome != Bounce || res[0].Code != 535 {
			t.Errorf("%s bad password: %+v", mode, res)
		}
		// An untrusted certificate is not accepted.
		peer3 := &SMTPPeer{Addr: addr, TLS: mode}
		if res := (&MM4{Peer: peer3, Domain: "x"}).Deliver(context.Background(), testMessage()); res[0].Outcome != Retry {
			t.Errorf("%s untrusted cert: %+v", mode, res)
		}
	}
}

func TestRateLimit(t *testing.T) {
	p := &peer{}
	addr, _ := startPeer(t, p, "none")
	r := &MM4{Peer: &SMTPPeer{Addr: addr, MaxRate: 10, MaxConnections: 1}, Domain: "d"}
	start := time.Now()
	for i := 0; i < 4; i++ {
		if res := r.Deliver(context.Background(), testMessage()); res[0].Outcome != Delivered {
			t.Fatal(res)
		}
	}
	// 4 messages at 10/s: the last starts no earlier than 0.3 s in.
	if d := time.Since(start); d < 290*time.Millisecond {
		t.Errorf("4 messages at 10/s took %v", d)
	}
}

func TestMM3Delivery(t *testing.T) {
	p := &peer{}
	addr, _ := startPeer(t, p, "none")
	r := &MM3{Peer: &SMTPPeer{Addr: addr}, GatewayDomain: "mms.gw.test"}
	res := r.Deliver(context.Background(), testMessage())
	if res[0].Outcome != Delivered || len(p.mails) != 1 {
		t.Fatalf("results = %+v", res)
	}
	mail := p.mails[0]
	if strings.Join(mail.rcpts, ",") != "15551234567@mms.gw.test,15557654321@mms.gw.test" {
		t.Errorf("rcpts = %q", mail.rcpts)
	}
	if bytes.Contains(mail.data, []byte("X-Mms-")) {
		t.Error("MM3 mail carries X-Mms headers")
	}
	if _, err := mm4.Parse(mail.data); !errors.Is(err, mm4.ErrNotMM4) {
		t.Errorf("MM3 mail parses as MM4: %v", err)
	}
	if !bytes.Contains(mail.data, []byte("Subject: Hello")) || !bytes.Contains(mail.data, []byte("multipart/related")) {
		t.Errorf("MM3 mail:\n%s", mail.data)
	}
}

func TestOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o := &Outbox{Dir: dir}
	m := testMessage()
	res := o.Deliver(context.Background(), m)
	if res[0].Outcome != Delivered || res[1].Outcome != Delivered || res[0].PeerID != "T-1" {
		t.Fatalf("results = %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(dir, "T-1.mms"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := pdu.Decode(b)
	if err != nil || got.Subject.String() != "Hello" || len(got.Parts) != 2 {
		t.Errorf("outbox PDU = %+v, %v", got, err)
	}
	if js, err := os.ReadFile(filepath.Join(dir, "T-1.json")); err != nil || !bytes.Contains(js, []byte(`"queue_id": "q1"`)) {
		t.Errorf("outbox JSON = %s, %v", js, err)
	}
	// A retry rewrites the same files.
	o.Deliver(context.Background(), m)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("outbox holds %d files after a retry, want 2", len(entries))
	}
	// A transaction id cannot escape the folder.
	m.TransactionID = "../../etc/passwd"
	if res := o.Deliver(context.Background(), m); res[0].Outcome != Delivered {
		t.Fatal(res)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("outbox holds %d files, want 4", len(entries))
	}
	for _, e := range entries {
		if strings.ContainsRune(e.Name(), '/') || e.Name() == ".." {
			t.Errorf("unsafe outbox name %q", e.Name())
		}
	}
}

// TestOutboxPDU checks that the outbox writes Message.PDU as it is when the
// conversion encoded it, and encodes Message.MMS only when PDU is nil.
func TestOutboxPDU(t *testing.T) {
	dir := t.TempDir()
	o := &Outbox{Dir: dir}

	m := testMessage()
	want, err := m.MMS.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := o.Deliver(context.Background(), m); res[0].Outcome != Delivered || res[0].Size != len(want) {
		t.Fatalf("Deliver without PDU = %+v, want delivered, size %d", res, len(want))
	}
	if got, err := os.ReadFile(filepath.Join(dir, "T-1.mms")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("outbox file without PDU = %x, %v, want the encoded MMS %x", got, err, want)
	}

	// PDU differs from what MMS encodes to: the file must be PDU, proving
	// the outbox did not encode again.
	m = testMessage()
	m.TransactionID = "T-2"
	other := testMessage().MMS
	other.Subject = pdu.Str("Encoded once")
	if m.PDU, err = other.Append(nil); err != nil {
		t.Fatal(err)
	}
	if res := o.Deliver(context.Background(), m); res[0].Outcome != Delivered || res[0].Size != len(m.PDU) {
		t.Fatalf("Deliver with PDU = %+v, want delivered, size %d", res, len(m.PDU))
	}
	got, err := os.ReadFile(filepath.Join(dir, "T-2.mms"))
	if err != nil || !bytes.Equal(got, m.PDU) {
		t.Errorf("outbox file with PDU = %x, %v, want PDU as given %x", got, err, m.PDU)
	}
}
