package deliver

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// TestSplitIMAPAppend: a hosted domain's recipient gets the email in her
// INBOX over IMAP; another domain's goes over SMTP.
func TestSplitIMAPAppend(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("bob@hosted.test", "pw")
	u.Create("INBOX", nil)
	mem.AddUser(u)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	p := &peer{}
	smtpAddr, _ := startPeer(t, p, "none")

	s := &Split{
		IMAP:   &IMAPAppender{Addr: ln.Addr().String(), TLS: "none", Login: "%l@%d", Password: "pw", Domains: []string{"hosted.test"}},
		Mailer: &Mailer{Smarthost: &SMTPPeer{Addr: smtpAddr}},
	}
	msg := []byte("From: +15551234567@reply.test\r\nTo: bob@hosted.test\r\nSubject: hi\r\n\r\nhello\r\n")
	res := s.Send(context.Background(), "+15551234567@reply.test", []string{"carol@other.test", "bob@hosted.test"}, msg)
	if res[0].Outcome != Delivered || res[1].Outcome != Delivered || res[1].PeerID == "" {
		t.Fatalf("results = %+v", res)
	}
	if len(p.mails) != 1 || p.mails[0].rcpts[0] != "carol@other.test" {
		t.Errorf("SMTP peer got %+v", p.mails)
	}
	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob@hosted.test", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	sd, err := c.Select("INBOX", nil).Wait()
	if err != nil || sd.NumMessages != 1 {
		t.Errorf("bob's INBOX = %+v, %v", sd, err)
	}
	// A wrong password or a missing folder: not delivered.
	s.IMAP.Password = "wrong"
	if r := s.IMAP.Append(context.Background(), "bob@hosted.test", msg); r.Outcome != Retry {
		t.Errorf("wrong password: %+v", r)
	} else if !strings.HasPrefix(r.Reply, "NO") || r.Code != 0 {
		t.Errorf("wrong password: Reply %q, Code %d; want the server's NO answer and no SMTP code", r.Reply, r.Code)
	}
	s.IMAP.Password, s.IMAP.Folder = "pw", "Nope"
	if r := s.IMAP.Append(context.Background(), "bob@hosted.test", msg); r.Outcome == Delivered {
		t.Errorf("missing folder: %+v", r)
	} else if r.Outcome == Bounce && (r.Enhanced != "5.2.0" || !strings.HasPrefix(r.Reply, "NO [TRYCREATE]")) {
		t.Errorf("missing folder: Enhanced %q, Reply %q; want 5.2.0 and the server's NO [TRYCREATE] answer", r.Enhanced, r.Reply)
	} else if r.Reply == "" {
		t.Errorf("missing folder: %+v, want the server's answer in Reply", r)
	}
}
