package relay

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	msgdkim "github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/imappoll"
	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// TestReplyRoundTrip: an email goes out as an MMS from a masked reply
// address; the handset's MM4 reply comes back to the sender as an email in
// the same thread, DKIM-signed; STOP opts the number out.
func TestReplyRoundTrip(t *testing.T) {
	mail := startSink(t)
	keyPEM, txt, err := dkim.GenerateKey(dkim.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelay(t, func(o *Options) {
		o.Mailer = &deliver.Mailer{Smarthost: &deliver.SMTPPeer{Addr: mail.addr}}
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test"})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US",
			DKIM: &dkim.Options{Domain: "reply.test", Selector: "s1", Key: key}}
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(waitFile(t, r.outbox, ".mms", 1)[0])
	m, err := pdu.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	replyAddr := m.From.Address.String()
	if !strings.HasPrefix(replyAddr, "r-") || !strings.HasSuffix(replyAddr, "@reply.test") {
		t.Fatalf("MMS From = %q, want a masked reply address", replyAddr)
	}

	// The handset answers over MM4.
	reply := func(text string) error {
		var buf bytes.Buffer
		err := mm4.WriteForward(&buf, &mm4.Forward{TransactionID: mapping.NewID(), MessageID: mapping.NewID(),
			From: "+15551234567/TYPE=PLMN", To: []string{replyAddr},
			ContentType: pdu.ContentType{Type: "application/vnd.wap.multipart.mixed"},
			Parts: []pdu.Part{{ContentType: pdu.ContentType{Type: "text/plain", Params: []pdu.Param{{Name: "charset", Value: "utf-8"}}},
				Body: []byte(text)}}})
		if err != nil {
			t.Fatal(err)
		}
		return send(t, r.addr, "+15551234567/TYPE=PLMN@mms.peer.test", []string{replyAddr}, buf.String())
	}
	if err := reply("Sure, see you at 8!"); err != nil {
		t.Fatal(err)
	}
	got := mail.wait(t, 1)[0]
	if got.rcpts[0] != "alice@example.com" {
		t.Errorf("reply email to %v", got.rcpts)
	}
	e, err := mapping.ParseEmailBytes(got.data, mapping.EmailOptions{KeepHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.Text, "Sure, see you at 8!") || len(e.InReplyTo) != 1 || e.InReplyTo[0] != "m1@example.com" ||
		e.From == nil || e.From.Address != "+15551234567@reply.test" || e.Subject != "Re: Hello" {
		t.Errorf("reply email: from %v subject %q in-reply-to %v text %q", e.From, e.Subject, e.InReplyTo, e.Text)
	}
	v, err := msgdkim.VerifyWithOptions(bytes.NewReader(got.data), &msgdkim.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return []string{txt}, nil }})
	if err != nil || len(v) != 1 || v[0].Err != nil {
		t.Errorf("DKIM verification: %v %+v", err, v)
	}

	// A reply to an address never given out is refused at RCPT.
	err = send(t, r.addr, "x@mms.peer.test", []string{"r-0000000000000000@reply.test"}, "Subject: x\r\n\r\nx\r\n")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Errorf("unknown reply address: %v, want 550", err)
	}

	// STOP: a confirmation MMS, then the number refuses alice's mail.
	if err := reply("STOP"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail)
		if errors.As(err, &se) && se.Code == 550 && se.EnhancedCode == (smtp.EnhancedCode{5, 7, 1}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after STOP: %v, want 550 5.7.1", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	found := false
	for _, f := range waitFile(t, r.outbox, ".mms", 2) {
		b, _ := os.ReadFile(f)
		if m, err := pdu.Decode(b); err == nil && len(m.Parts) > 0 {
			for i := range m.Parts {
				if txt, ok := m.Parts[i].Text(); ok && strings.Contains(txt, "no more messages") {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("no STOP confirmation MMS in the outbox")
	}
	ctx := context.Background()
	if out, err := r.o().Replies.Book.ListOptOuts(ctx, ""); err != nil || len(out) != 1 || out[0].Number != "+15551234567" {
		t.Errorf("opt-outs = %+v, %v", out, err)
	}
}

func TestReplyAddrIn(t *testing.T) {
	for raw, want := range map[string]string{
		"From: 15551234567@mms.att.net\r\nTo: \"Alice\" <r-abc@reply.test>\r\n\r\nhi":           "r-abc@reply.test",
		"Delivered-To: r-xyz@Reply.Test\nTo: someone@else.example\n\nhi":                        "r-xyz@Reply.Test",
		"To: a@b.example,\r\n\tr-folded@reply.test\r\nSubject: x\r\n\r\nbody r-body@reply.test": "r-folded@reply.test",
		"To: a@b.example\r\n\r\nbody mentions r-body@reply.test":                                "",
	} {
		if got := replyAddrIn([]byte(raw), "reply.test"); got != want {
			t.Errorf("replyAddrIn(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestIMAPReply: a carrier's MM3 mail to a reply address, in a mailbox the
// relay polls over IMAP, reaches the email sender; the mailbox keeps no copy
// in INBOX once the email is queued.
func TestIMAPReply(t *testing.T) {
	mail := startSink(t)
	r := startRelay(t, func(o *Options) {
		o.Mailer = &deliver.Mailer{Smarthost: &deliver.SMTPPeer{Addr: mail.addr}}
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test"})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US"}
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(waitFile(t, r.outbox, ".mms", 1)[0])
	m, err := pdu.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	replyAddr := m.From.Address.String()

	// An IMAP server (go-imap's, in memory) with the carrier's mail in INBOX.
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("relay", "pw")
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
	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("relay", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	carrierMail := "From: 15551234567@vzwpix.com\r\nTo: " + replyAddr + "\r\nSubject: \r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\nSounds good, see you there\r\n"
	ac := c.Append("INBOX", int64(len(carrierMail)), nil)
	ac.Write([]byte(carrierMail))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Create("Processed", nil).Wait()

	p, err := imappoll.New(imappoll.Options{Mailboxes: []imappoll.Mailbox{{Addr: ln.Addr().String(), TLS: imappoll.TLSNone,
		Username: "relay", Password: "pw", Processed: "Processed", Interval: 100 * time.Millisecond}},
		Handler: r.AcceptReply, State: r.st.KV})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	got := mail.wait(t, 1)[0]
	e, err := mapping.ParseEmailBytes(got.data, mapping.EmailOptions{})
	if err != nil || got.rcpts[0] != "alice@example.com" || !strings.Contains(e.Text, "Sounds good") ||
		len(e.InReplyTo) == 0 || e.InReplyTo[0] != "m1@example.com" {
		t.Errorf("reply email to %v: %+v (%v)", got.rcpts, e, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sd, err := c.Select("INBOX", nil).Wait()
		if err == nil && sd.NumMessages == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX still holds the reply: %+v %v", sd, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFromByDomain: one MMS domain masks the sender, another sends from
// the sender's own address.
func TestFromByDomain(t *testing.T) {
	r := startRelay(t, func(o *Options) {
		o.Conversion.Recipients.Domains = []string{"mms.test", "direct.test"}
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test",
			DomainFrom: map[string]string{"direct.test": replies.FromDirect}})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US"}
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@direct.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(waitFile(t, r.outbox, ".mms", 1)[0])
	m, err := pdu.Decode(b)
	if err != nil || m.From.Address.String() != "Alice <alice@example.com>" {
		t.Errorf("From at direct.test = %q, %v", m.From.Address.String(), err)
	}
	if err := send(t, r.addr, "alice@example.com", []string{"+15557654321@mms.test"}, strings.Replace(simpleMail, "m1@", "m9@", 1)); err != nil {
		t.Fatal(err)
	}
	masked := false
	for _, f := range waitFile(t, r.outbox, ".mms", 2) {
		b, _ := os.ReadFile(f)
		if m, err := pdu.Decode(b); err == nil && strings.HasSuffix(m.From.Address.String(), "@reply.test") {
			masked = true
		}
	}
	if !masked {
		t.Error("no masked From at mms.test")
	}
}

// TestUnreadableReply: a reply that cannot be read fails with a reason
// that names the problem, not "<nil>".
func TestUnreadableReply(t *testing.T) {
	r := startRelay(t, func(o *Options) {
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test"})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US"}
	})
	// No header block: not an email at all.
	if err := r.AcceptReply(context.Background(), []byte("\r\njust some text\r\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := r.st.Admin.List(context.Background(), store.ListOptions{Status: store.Failed, Kind: store.KindReply})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 1 {
			reason := msgs[0].Rcpts[0].LastError
			if !strings.Contains(reason, "not an email") || strings.Contains(reason, "<nil>") {
				t.Errorf("failure reason = %q, want it to name the problem (not an email)", reason)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the unreadable reply did not fail")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplyTokensPurged: the relay purges expired reply tokens on its
// schedule, so an expired address becomes unknown rather than staying
// stored forever.
func TestReplyTokensPurged(t *testing.T) {
	r := startRelay(t, func(o *Options) {
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test",
			TokenTTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US"}
		o.Queue.PurgeEvery = 50 * time.Millisecond
	})
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(waitFile(t, r.outbox, ".mms", 1)[0])
	m, err := pdu.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	replyAddr := m.From.Address.String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.o().Replies.Book.Resolve(context.Background(), replyAddr, "+15551234567")
		var re *replies.ReplyError
		if errors.As(err, &re) && re.Reason == "unknown token" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Resolve(%s) = %v, want the token purged (unknown token)", replyAddr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The purge counts what it removed once Book.Purge returns, a moment
	// after the token is gone.
	for r.metrics.Get("mmsrelay_reply_tokens_purged_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("mmsrelay_reply_tokens_purged_total = %v, want at least 1", r.metrics.Get("mmsrelay_reply_tokens_purged_total"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
