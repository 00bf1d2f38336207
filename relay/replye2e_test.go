package relay

// TestReplyEndToEnd: the way back, end to end over loopback, with real
// handset PDUs from the shared corpus. Alice's email goes out over MM4 to
// an in-test peer from a masked reply address; the handset's replies come
// back both as MM4_forward.REQs (over SMTP) and as MM3 carrier mails with
// the binary PDU attached (APPENDed to a real Dovecot the relay polls over
// IMAP), and each must reach alice as a DKIM-signed email in her thread,
// carrying the PDU's media and text.
//
// The Dovecot harness follows shared/recipes/test-servers.md section 1 (as
// relay/imappoll/dovecot_test.go does; copied here under e2e* names, that
// being another package). It needs root and dovecot-imapd: without them
// the test skips, or fails when MMSRELAY_REQUIRE_TOOLS=1.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/internal/dovecottest"
	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/imappoll"
	"github.com/mmsrelay/mmsrelay/relay/replies"
)

// e2eCorpus are the handset PDUs the replies are made of: an iPhone
// m-send-req (SMIL + one 200 KiB JPEG, no text), a retrieve-conf with a
// subject, two texts and two images, and a Sony Ericsson m-send-req with
// GIF, text, MIDI and a SMIL that comes last.
// media and text say what the PDU holds, so that a decoder that reads
// less cannot make the checks below pass vacuously.
var e2eCorpus = []struct {
	file  string
	media int    // parts neither text nor SMIL
	text  string // the text parts in SMIL order, whitespace collapsed
}{
	{"python-messaging/iPhone.mms", 1, ""},
	{"mms-engine/test_retrieve__Success1__m-retrieve.conf", 2, "Вид с крыши Дворцовый мост"},
	{"python-messaging/SonyEricssonT310-R201.mms", 2, "Hej hopp"},
}

func TestReplyEndToEnd(t *testing.T) {
	start := time.Now()
	corpus := testcorpus.Dir(t, "pdu")
	dv := dovecottest.Start(t, dovecottest.Options{Users: []string{"relay"}})
	imapUser := e2eIMAPUser{addr: dv.Addr(), user: "relay", pass: dovecottest.Password("relay")}

	peer := startSink(t)
	mail := startSink(t)
	keyPEM, txt, err := dkim.GenerateKey(dkim.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	key, err := dkim.ParseKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	prof, ok := adapt.LookupProfile("default")
	if !ok {
		t.Fatal("no default adaptation profile")
	}
	r := startRelay(t, func(o *Options) {
		o.Routes = []Route{{Name: "mm4", Prefix: "+", Profile: prof,
			Via: &deliver.MM4{Peer: &deliver.SMTPPeer{Addr: peer.addr}, Domain: "mms.peer.test"}}}
		o.Mailer = &deliver.Mailer{Smarthost: &deliver.SMTPPeer{Addr: mail.addr}}
		book, err := replies.New(o.Store.KV, replies.Options{ReplyDomain: "reply.test", MMSDomain: "mms.test"})
		if err != nil {
			t.Fatal(err)
		}
		o.Replies = &ReplyOptions{Book: book, Domain: "reply.test", Region: "US",
			DKIM: &dkim.Options{Domain: "reply.test", Selector: "s1", Key: key}}
	})

	// Alice → +15551234567: an MM4_forward.REQ to the peer, from a masked
	// reply address.
	if err := send(t, r.addr, "alice@example.com", []string{"+15551234567@mms.test"}, simpleMail); err != nil {
		t.Fatal(err)
	}
	out := peer.wait(t, 1)[0]
	if len(out.rcpts) != 1 || out.rcpts[0] != "+15551234567/TYPE=PLMN@mms.peer.test" {
		t.Errorf("peer RCPT = %v", out.rcpts)
	}
	req, err := mm4.Parse(out.data)
	if err != nil || req.Type != mm4.ForwardReq {
		t.Fatalf("peer got %+v, %v; want an MM4_forward.REQ", req, err)
	}
	replyAddr := req.From
	if !strings.HasPrefix(replyAddr, "r-") || !strings.HasSuffix(replyAddr, "@reply.test") {
		t.Fatalf("MM4 From = %q, want a masked reply address r-…@reply.test", replyAddr)
	}

	// The relay polls the real Dovecot for MM3 replies.
	var pollLog e2eLockedBuffer
	p, err := imappoll.New(imappoll.Options{
		Mailboxes: []imappoll.Mailbox{{Name: "e2e", Addr: imapUser.addr, TLS: imappoll.TLSNone,
			Username: imapUser.user, Password: imapUser.pass, Processed: "Processed", Interval: time.Second}},
		Handler:    r.AcceptReply,
		State:      r.st.KV,
		Logger:     slog.New(slog.NewTextHandler(&pollLog, nil)),
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() { p.Run(ctx); close(pollDone) }()
	defer func() {
		cancel()
		<-pollDone
		if t.Failed() {
			t.Logf("poller log:\n%s", pollLog.String())
		}
	}()

	nMail := 0
	var processed []string // Message-IDs of the MM3 mails moved so far
	for i, c := range e2eCorpus {
		name := c.file
		raw, err := os.ReadFile(filepath.Join(corpus, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := pdu.Decode(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := e2eExpect(m)
		if len(want.media) != c.media || want.text != c.text {
			t.Fatalf("%s decodes to media %v, text %q; want %d media parts and text %q", name, want.media, want.text, c.media, c.text)
		}

		t.Run(filepath.Base(name)+"/MM4", func(t *testing.T) {
			var buf bytes.Buffer
			err := mm4.WriteForward(&buf, &mm4.Forward{TransactionID: mapping.NewID(), MessageID: mapping.NewID(),
				From: "+15551234567/TYPE=PLMN", To: []string{replyAddr}, Subject: m.Subject.String(),
				ContentType: m.ContentType, Parts: m.Parts})
			if err != nil {
				t.Fatal(err)
			}
			if err := send(t, r.addr, "+15551234567/TYPE=PLMN@mms.peer.test", []string{replyAddr}, buf.String()); err != nil {
				t.Fatalf("sending the MM4 reply: %v", err)
			}
			nMail++
			e2eCheckReply(t, mail.wait(t, nMail)[nMail-1], want, txt)
		})

		t.Run(filepath.Base(name)+"/MM3-IMAP", func(t *testing.T) {
			id := fmt.Sprintf("mm3-%d-%s@mms.att.net", i, mapping.NewID())
			imapUser.appendMsg(t, "INBOX", e2eCarrierMail(id, replyAddr, raw))
			nMail++
			e2eCheckReply(t, mail.wait(t, nMail)[nMail-1], want, txt)
			processed = append(processed, id)
			deadline := time.Now().Add(10 * time.Second)
			for {
				inbox, pr := imapUser.messageIDs(t, "INBOX"), imapUser.messageIDs(t, "Processed")
				if len(inbox) == 0 && slices.Equal(pr, processed) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("INBOX = %v, Processed = %v; want INBOX empty and Processed = %v", inbox, pr, processed)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	// Nothing else went out: one MM4 to the peer (no confirmation, no
	// resend), one email per reply.
	time.Sleep(200 * time.Millisecond)
	if n := len(peer.wait(t, 1)); n != 1 {
		t.Errorf("peer got %d messages, want 1", n)
	}
	if n := len(mail.wait(t, nMail)); n != 2*len(e2eCorpus) {
		t.Errorf("mail sink got %d emails, want %d", n, 2*len(e2eCorpus))
	}
	t.Logf("%d replies end to end in %v", nMail, time.Since(start).Round(time.Millisecond))
}

// e2eWant is what the email made of a PDU must carry.
type e2eWant struct {
	subject string
	text    string   // whitespace-collapsed
	media   []string // "type sha256", sorted
}

// e2eExpect reads the expectation straight from the PDU: its text parts
// (in order; these PDUs list them in SMIL order) and every part that is
// neither text nor SMIL, byte for byte.
func e2eExpect(m *pdu.Message) e2eWant {
	w := e2eWant{subject: m.Subject.String()}
	if w.subject == "" {
		w.subject = "Re: Hello"
	}
	var texts []string
	for i := range m.Parts {
		p := &m.Parts[i]
		switch {
		case p.ContentType.Type == "application/smil":
		case p.ContentType.Type == "text/plain":
			s, _ := p.Text()
			texts = append(texts, s)
		default:
			w.media = append(w.media, p.ContentType.Type+" "+e2eSum(p.Body))
		}
	}
	w.text = strings.Join(strings.Fields(strings.Join(texts, "\n")), " ")
	slices.Sort(w.media)
	return w
}

func e2eSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// e2eCheckReply checks one email at the mail sink against want.
func e2eCheckReply(t *testing.T, got sinkMail, want e2eWant, txt string) {
	t.Helper()
	if len(got.rcpts) != 1 || got.rcpts[0] != "alice@example.com" {
		t.Errorf("RCPT TO = %v, want alice@example.com", got.rcpts)
	}
	e, err := mapping.ParseEmailBytes(got.data, mapping.EmailOptions{KeepHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.To, []string{"alice@example.com"}) {
		t.Errorf("To = %v, want alice@example.com", e.To)
	}
	if e.From == nil || e.From.Address != "+15551234567@reply.test" {
		t.Errorf("From = %v, want +15551234567@reply.test", e.From)
	}
	if !slices.Equal(e.InReplyTo, []string{"m1@example.com"}) {
		t.Errorf("In-Reply-To = %v, want m1@example.com", e.InReplyTo)
	}
	if !slices.Contains(e.References, "m1@example.com") {
		t.Errorf("References = %v, want m1@example.com among them", e.References)
	}
	if e.Subject != want.subject {
		t.Errorf("Subject = %q, want %q", e.Subject, want.subject)
	}
	if text := strings.Join(strings.Fields(e.Text), " "); text != want.text {
		t.Errorf("text = %q, want %q", text, want.text)
	}
	var media []string
	for _, a := range e.Media {
		if a.ContentType == "application/smil" {
			t.Errorf("the SMIL part (%q) is attached", a.Name)
		}
		media = append(media, a.ContentType+" "+e2eSum(a.Data))
	}
	slices.Sort(media)
	if !slices.Equal(media, want.media) {
		t.Errorf("attachments (type sha256) =\n\t%s\nwant\n\t%s", strings.Join(media, "\n\t"), strings.Join(want.media, "\n\t"))
	}
	v, err := msgdkim.VerifyWithOptions(bytes.NewReader(got.data), &msgdkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "s1._domainkey.reply.test" {
				return nil, fmt.Errorf("unexpected DKIM lookup %q", domain)
			}
			return []string{txt}, nil
		}})
	if err != nil || len(v) != 1 || v[0].Err != nil || v[0].Domain != "reply.test" {
		var res []string
		for _, x := range v {
			res = append(res, fmt.Sprintf("d=%s: %v", x.Domain, x.Err))
		}
		t.Errorf("DKIM verification: %v, %d signatures %v; want one valid for reply.test", err, len(v), res)
	}
	if t.Failed() {
		t.Logf("the email:\n%s", e2eHead(got.data))
	}
}

// e2eHead is the header block of an email and a little of its body.
func e2eHead(b []byte) string {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 && i+600 < len(b) {
		return string(b[:i+600]) + "\n[…]"
	}
	return string(b)
}

// e2eCarrierMail is an MM3 mail as a carrier's MMSC writes it to an email
// address: the handset's binary PDU attached as
// application/vnd.wap.mms-message, and no Subject of its own.
func e2eCarrierMail(id, to string, pduBytes []byte) []byte {
	const boundary = "----=_Part_e2e_0123456789"
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: 15551234567@mms.att.net\r\nTo: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n", to,
		time.Now().Format(time.RFC1123Z), id)
	fmt.Fprintf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "--%s\r\nContent-Type: application/vnd.wap.mms-message\r\nContent-Transfer-Encoding: base64\r\n"+
		"Content-Disposition: attachment; filename=\"mms.mms\"\r\n\r\n", boundary)
	enc := base64.StdEncoding.EncodeToString(pduBytes)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes()
}

// e2eLockedBuffer is a bytes.Buffer safe for the poller's goroutines.
type e2eLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *e2eLockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *e2eLockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// e2eIMAPUser is the test's own IMAP client view of the account.
type e2eIMAPUser struct {
	addr, user, pass string
}

func (u e2eIMAPUser) dial(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(u.addr, nil)
	if err != nil {
		t.Fatalf("IMAP dial %s: %v", u.addr, err)
	}
	if err := c.Login(u.user, u.pass).Wait(); err != nil {
		c.Close()
		t.Fatalf("IMAP login %s: %v", u.user, err)
	}
	return c
}

// appendMsg APPENDs raw to folder.
func (u e2eIMAPUser) appendMsg(t *testing.T, folder string, raw []byte) {
	t.Helper()
	c := u.dial(t)
	defer c.Close()
	cmd := c.Append(folder, int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("APPEND write: %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("APPEND close: %v", err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("APPEND %s: %v", folder, err)
	}
	c.Logout().Wait()
}

// messageIDs returns the Message-IDs (without brackets) of folder's
// messages, read-only; a missing folder is empty.
func (u e2eIMAPUser) messageIDs(t *testing.T, folder string) []string {
	t.Helper()
	c := u.dial(t)
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.NumMessages == 0 {
		return nil
	}
	bs := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}},
		&imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{bs}}).Collect()
	if err != nil {
		t.Fatalf("FETCH %s: %v", folder, err)
	}
	var ids []string
	for _, m := range msgs {
		id := "?"
		for _, b := range m.BodySection {
			if mm, err := mail.ReadMessage(bytes.NewReader(append(b.Bytes, "\r\n"...))); err == nil {
				id = strings.Trim(mm.Header.Get("Message-Id"), "<> ")
			}
		}
		ids = append(ids, id)
	}
	c.Logout().Wait()
	return ids
}
