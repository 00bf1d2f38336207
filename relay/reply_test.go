package relay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/dkim"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/replies"
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
		book, err := replies.New(o.Store, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test"})
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
