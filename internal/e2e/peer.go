package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message a Peer took: the envelope and the data as sent.
type Mail struct {
	From string
	To   []string
	Data []byte
}

// Peer is an SMTP server on loopback that keeps what it is sent: a fake
// MMSC (MM4), email gateway or smarthost.
type Peer struct {
	Addr string
	// Reject, when set, is asked at the end of DATA; a non-nil answer is
	// the server's reply instead of 250 and the mail is not kept.
	Reject func(Mail) *smtp.SMTPError

	srv  *smtp.Server
	mu   sync.Mutex
	mail []Mail
	// tried counts DATA commands, kept or not.
	tried int
	kick  chan struct{}
}

// StartPeer runs a Peer on addr ("" for a free port) until the test ends.
// reject may be nil.
func StartPeer(tb testing.TB, addr string, reject func(Mail) *smtp.SMTPError) *Peer {
	tb.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("peer: net.Listen(%s) = %v", addr, err)
	}
	p := &Peer{Addr: l.Addr().String(), Reject: reject, kick: make(chan struct{}, 1)}
	p.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &peerSession{p: p}, nil }))
	p.srv.Domain = "peer.test"
	p.srv.ReadTimeout = 30 * time.Second
	p.srv.WriteTimeout = 30 * time.Second
	p.srv.MaxMessageBytes = 32 << 20
	p.srv.AllowInsecureAuth = true
	go p.srv.Serve(l)
	tb.Cleanup(func() { p.srv.Close() })
	return p
}

// Mail returns a copy of what the peer kept so far.
func (p *Peer) Mail() []Mail {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Mail(nil), p.mail...)
}

// Tried returns how many messages were offered (DATA), kept or refused.
func (p *Peer) Tried() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tried
}

// Wait returns once the peer has kept n messages, or fails after d.
func (p *Peer) Wait(tb testing.TB, n int, d time.Duration) []Mail {
	tb.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if m := p.Mail(); len(m) >= n {
			return m
		}
		select {
		case <-p.kick:
		case <-deadline.C:
			tb.Fatalf("peer %s: %d message(s) after %v, want %d", p.Addr, len(p.Mail()), d, n)
		}
	}
}

type peerSession struct {
	p    *Peer
	from string
	to   []string
}

func (s *peerSession) Reset()        { s.from, s.to = "", nil }
func (s *peerSession) Logout() error { return nil }
func (s *peerSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *peerSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *peerSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: s.from, To: append([]string(nil), s.to...), Data: b}
	p := s.p
	p.mu.Lock()
	p.tried++
	p.mu.Unlock()
	if p.Reject != nil {
		if e := p.Reject(m); e != nil {
			return e
		}
	}
	p.mu.Lock()
	p.mail = append(p.mail, m)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return nil
}

// JPEG returns a w×h baseline JPEG: a colour gradient with a grid, so that
// it is neither trivially small nor random noise.
func JPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255}
			if x%64 < 3 || y%64 < 3 {
				c = color.RGBA{20, 20, 20, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// SelfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// (ECDSA P-256, valid for a day) and its key into dir, as PEM files.
func SelfSigned(tb testing.TB, dir string) (certFile, keyFile string) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "relay.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	err = errors.Join(
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600),
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	if err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile
}

// Send sends one message over SMTP to addr (no TLS, no AUTH) and returns
// the error of the first command that failed (an *smtp.SMTPError for a
// refusal).
func Send(addr, from string, to []string, msg []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return err
	}
	if err := c.SendMail(from, to, bytes.NewReader(msg)); err != nil {
		return err
	}
	return c.Quit()
}
