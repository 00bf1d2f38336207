package main

// End-to-end tests: `mmsrelay serve` as a real process, driven over
// loopback by real SMTP clients and servers (swaks, Postfix's smtp-sink and
// smtp-source, go-smtp), checked through its outbox, its admin API and
// what its peers receive. internal/e2e runs the processes.
//
// They are skipped with -short, and when a tool they need is missing
// unless MMSRELAY_REQUIRE_TOOLS=1 (as .ci/run sets), which makes that a
// failure. The binary is built once, by the first test that runs, into a
// folder TestMain removes; under -race it is built with -race too, and a
// data race the relay reports fails the test that ran it.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/mmsrelay/mmsrelay/internal/e2e"
	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mail/dsn"
	"github.com/mmsrelay/mmsrelay/mapping/mm4"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// e2eBuild is the mmsrelay binary the end-to-end tests run.
var e2eBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// TestMain runs the tests, then removes the mmsrelay binary that the
// end-to-end tests built (e2eBinary), if they ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBuild.dir != "" {
		os.RemoveAll(e2eBuild.dir)
	}
	os.Exit(code)
}

// e2eBinary skips the test with -short; otherwise it returns the path of
// an mmsrelay binary built from this tree (built once per test run).
// Tests call it after looking up their tools, so that nothing is built
// when every end-to-end test is skipped.
func e2eBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test of mmsrelay serve: skipped with -short")
	}
	e2eBuild.once.Do(func() {
		e2eBuild.dir, e2eBuild.err = os.MkdirTemp("", "mmsrelay-e2e-")
		if e2eBuild.err != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		bin := filepath.Join(e2eBuild.dir, "mmsrelay")
		args := []string{"build", "-o", bin}
		if e2e.Race {
			args = append(args, "-race")
		}
		out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
		if err != nil {
			e2eBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		e2eBuild.bin = bin
	})
	if e2eBuild.err != nil {
		t.Fatalf("building mmsrelay: %v", e2eBuild.err)
	}
	return e2eBuild.bin
}

// e2eTShark reports whether tshark (for pdu-dissect) can be used; when it
// is missing that is a failure under MMSRELAY_REQUIRE_TOOLS=1.
func e2eTShark(t *testing.T) bool {
	t.Helper()
	if e2e.LookTool("tshark") != "" && e2e.LookTool("text2pcap") != "" {
		return true
	}
	if e2e.RequireTools() {
		t.Errorf("tshark/text2pcap not found (apt-get install tshark) and %s=1", e2e.RequireToolsEnv)
	} else {
		t.Logf("tshark not found: the pdu-dissect cross-check is skipped")
	}
	return false
}

// swaksResult is one swaks run.
type swaksResult struct {
	code       int
	transcript string
}

// e2eSwaks runs swaks with args (bounded to 60 s) and returns its exit
// status and transcript (stdout and stderr).
func e2eSwaks(t *testing.T, swaks string, args ...string) swaksResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, swaks, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("swaks %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return swaksResult{code, string(out)}
}

// e2eMMS decodes an outbox PDU strictly.
func e2eMMS(t *testing.T, path string) (*pdu.Message, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pdu.Decoder{Strict: true}.Decode(b)
	if err != nil {
		t.Fatalf("pdu.Decoder{Strict: true}.Decode(%s) = %v", filepath.Base(path), err)
	}
	return m, b
}

// e2eWaitFiles waits until the relay's outbox holds n .mms files.
func e2eWaitFiles(t *testing.T, r *e2e.Relay, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := r.OutboxFiles(".mms")
		if len(f) >= n {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox has %d .mms file(s) after %v, want %d\n%s", len(f), d, n, r.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eCheckImage decodes an image body and checks it fits maxW×maxH (in
// either orientation).
func e2eCheckImage(t *testing.T, what string, body []byte, maxW, maxH int) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: image.Decode = %v", what, err)
		return
	}
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if w < h {
		w, h = h, w
	}
	if w > maxW || h > maxH {
		t.Errorf("%s: %s %dx%d, want at most %dx%d", what, format, img.Bounds().Dx(), img.Bounds().Dy(), maxW, maxH)
	}
	t.Logf("%s: %s %dx%d, %d bytes", what, format, img.Bounds().Dx(), img.Bounds().Dy(), len(body))
}

// e2eMessage is a small email with a unique Message-ID.
func e2eMessage(from, to, subject, body string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%s@client.test>\r\n"+
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
		from, to, subject, time.Now().Format(time.RFC1123Z), time.Now().UnixNano(), strings.ReplaceAll(subject, " ", "-"), body))
}

func e2eOnlyMMS(msgs []store.Message) []store.Message {
	var out []store.Message
	for _, m := range msgs {
		if m.Envelope.Kind == store.KindMMS {
			out = append(out, m)
		}
	}
	return out
}

// TestE2ESwaksToOutbox: swaks sends an email with a JPEG attachment; the
// outbox gets <id>.mms and <id>.json, and the PDU decodes strictly with the
// recipient, subject, sender, a SMIL part first, the text and the picture
// scaled into the default profile (1600x1200).
func TestE2ESwaksToOutbox(t *testing.T) {
	swaks := e2e.Tool(t, "swaks", "swaks")
	bin := e2eBinary(t)
	r := e2e.NewRelay(t, bin, e2e.Options{})
	r.Start(30 * time.Second)

	pic := filepath.Join(t.TempDir(), "pic.jpg")
	if err := os.WriteFile(pic, e2e.JPEG(t, 2000, 1500), 0o600); err != nil {
		t.Fatal(err)
	}
	// swaks takes an argument that starts with "+" for an option (exit 1,
	// "Unknown option"), with --to=… too: the number goes without "+",
	// and default_region US makes it +15551234567.
	if res := e2eSwaks(t, swaks, "--server", r.SMTP, "--to", "+15551234567@mms.test", "--from", "alice@example.com"); res.code != 1 || !strings.Contains(res.transcript, "Unknown option") {
		t.Logf("swaks --to +1…: exit %d (swaks has changed?):\n%s", res.code, res.transcript)
	}
	res := e2eSwaks(t, swaks, "--server", r.SMTP, "--to", "15551234567@mms.test", "--from", "alice@example.com",
		"--header", "Subject: photo", "--body", "see picture",
		"--attach-type", "image/jpeg", "--attach-name", "pic.jpg", "--attach", "@"+pic)
	if res.code != 0 || !strings.Contains(res.transcript, "<-  250 2.0.0") {
		t.Fatalf("swaks exit %d, want 0 and a 250 after DATA:\n%s\n%s", res.code, res.transcript, r.LogTail(20))
	}

	files := e2eWaitFiles(t, r, 1, 30*time.Second)
	if len(files) != 1 {
		t.Fatalf("outbox .mms files = %v, want one", files)
	}
	id := strings.TrimSuffix(files[0], ".mms")
	js, err := os.ReadFile(filepath.Join(r.Outbox(), id+".json"))
	if err != nil {
		t.Fatalf("outbox has %s.mms but not its .json: %v", id, err)
	}
	if !bytes.Contains(js, []byte(`"15551234567`)) && !bytes.Contains(js, []byte(`"+15551234567"`)) {
		t.Errorf("%s.json does not name the recipient:\n%s", id, js)
	}
	path := filepath.Join(r.Outbox(), files[0])
	m, raw := e2eMMS(t, path)
	if m.Type != pdu.TypeSendReq {
		t.Errorf("PDU type = %v, want m-send-req", m.Type)
	}
	if m.TransactionID != id {
		t.Errorf("transaction id = %q, want the file name %q", m.TransactionID, id)
	}
	if len(m.To) != 1 || m.To[0].String() != "+15551234567/TYPE=PLMN" {
		t.Errorf("To = %v, want [+15551234567/TYPE=PLMN]", m.To)
	}
	if got := m.Subject.String(); got != "photo" {
		t.Errorf("Subject = %q, want photo", got)
	}
	if m.From == nil || m.From.Insert || !strings.Contains(m.From.Address.String(), "alice@example.com") {
		t.Errorf("From = %+v, want alice@example.com", m.From)
	}
	if len(m.Parts) < 3 {
		t.Fatalf("PDU has %d parts, want SMIL, text and image", len(m.Parts))
	}
	if ct := m.Parts[0].ContentType.Type; ct != "application/smil" {
		t.Errorf("first part is %s, want application/smil", ct)
	}
	var text, img bool
	for i, p := range m.Parts {
		switch {
		case p.ContentType.Type == "text/plain":
			s, _ := p.Text()
			text = strings.Contains(s, "see picture")
		case strings.HasPrefix(p.ContentType.Type, "image/"):
			img = true
			e2eCheckImage(t, fmt.Sprintf("part %d (%s)", i, p.ContentType.Type), p.Body, 1600, 1200)
		}
	}
	if !text || !img {
		t.Errorf("parts: text with 'see picture' %v, image %v; want both", text, img)
	}
	t.Logf("outbox %s: %d bytes, %d parts", files[0], len(raw), len(m.Parts))

	if !e2eTShark(t) {
		return
	}
	dissect := filepath.Join(testcorpus.SharedDir(), "tools", "pdu-dissect")
	if _, err := os.Stat(dissect); err != nil {
		if e2e.RequireTools() {
			t.Fatalf("pdu-dissect: %v", err)
		}
		t.Logf("pdu-dissect not found, cross-check skipped: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", dissect, "--quiet", path).CombinedOutput()
	if err != nil {
		t.Errorf("pdu-dissect %s: %v\n%s", files[0], err, out)
	} else {
		t.Logf("pdu-dissect: %s", bytes.TrimSpace(out))
	}
}

// e2eMM4Relay starts a relay with an mm4 route for +44 to addr (ack
// requested) and our peer's networks.
func e2eMM4Relay(t *testing.T, bin, addr, queue, extra string) *e2e.Relay {
	t.Helper()
	r := e2e.NewRelay(t, bin, e2e.Options{Queue: queue, Extra: fmt.Sprintf(`
[[route]]
prefix = "+44"
type = "mm4"
host = %q
domain = "mms.peer.test"
ack_request = true

[[mm4_peer]]
name = "peer"
networks = ["127.0.0.0/8"]
%s`, addr, extra)})
	r.Start(30 * time.Second)
	return r
}

// TestE2EMM4Peer: a +44 number goes as MM4_forward.REQ to a go-smtp
// peer; every mandatory MM4 header and the envelope are right, the MIME
// parts decode, and the peer's MM4_forward.RES is recorded on the message.
func TestE2EMM4Peer(t *testing.T) {
	bin := e2eBinary(t)
	peer := e2e.StartPeer(t, "", nil)
	r := e2eMM4Relay(t, bin, peer.Addr, "", "")

	pic := e2e.JPEG(t, 640, 480)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fmt.Fprintf(&body, "From: Alice <alice@example.com>\r\nTo: +447911123456@mms.test\r\nSubject: hello peer\r\n"+
		"Message-ID: <mm4.%d@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n", time.Now().UnixNano(), mw.Boundary())
	tp, _ := mw.CreatePart(map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}})
	tp.Write([]byte("hello over MM4\r\n"))
	ip, _ := mw.CreatePart(map[string][]string{"Content-Type": {"image/jpeg"}, "Content-Transfer-Encoding": {"base64"},
		"Content-Disposition": {`attachment; filename="p.jpg"`}})
	ip.Write([]byte(wrap76(base64.StdEncoding.EncodeToString(pic))))
	mw.Close()
	if err := e2e.Send(r.SMTP, "alice@example.com", []string{"+447911123456@mms.test"}, body.Bytes()); err != nil {
		t.Fatalf("sending to the relay: %v", err)
	}

	got := peer.Wait(t, 1, 30*time.Second)[0]
	if got.From != "alice@example.com" {
		t.Errorf("MAIL FROM = %q, want alice@example.com", got.From)
	}
	if len(got.To) != 1 || got.To[0] != "+447911123456/TYPE=PLMN@mms.peer.test" {
		t.Errorf("RCPT TO = %q, want [+447911123456/TYPE=PLMN@mms.peer.test]", got.To)
	}
	m, err := mm4.Parse(got.Data)
	if err != nil {
		t.Fatalf("mm4.Parse = %v\n%s", err, got.Data)
	}
	for _, h := range []string{"X-Mms-3GPP-MMS-Version", "X-Mms-Message-Type", "X-Mms-Transaction-ID", "X-Mms-Message-ID",
		"From", "To", "Date", "Sender", "Content-Type", "X-Mms-Originator-System", "X-Mms-Ack-Request"} {
		if m.Header.Get(h) == "" {
			t.Errorf("MM4 header %s missing", h)
		}
	}
	if !m.IsType(mm4.ForwardReq) || m.Header.Get("X-Mms-Message-Type") != "MM4_forward.REQ" {
		t.Errorf("X-Mms-Message-Type = %q, want MM4_forward.REQ", m.Header.Get("X-Mms-Message-Type"))
	}
	if m.Version == "" || m.TransactionID == "" || m.MessageID == "" || m.Date.IsZero() {
		t.Errorf("version %q, transaction id %q, message id %q, date %v: want all set", m.Version, m.TransactionID, m.MessageID, m.Date)
	}
	if !strings.Contains(m.From, "alice@example.com") {
		t.Errorf("From = %q, want alice@example.com", m.From)
	}
	if len(m.To) != 1 || m.To[0] != "+447911123456/TYPE=PLMN" {
		t.Errorf("To = %q, want [+447911123456/TYPE=PLMN]", m.To)
	}
	if !strings.Contains(m.Sender, "alice@example.com") {
		t.Errorf("Sender = %q, want alice@example.com", m.Sender)
	}
	if !m.AckRequest || m.OriginatorSystem != "system@mms.test" {
		t.Errorf("ack request %v, originator system %q; want true, system@mms.test", m.AckRequest, m.OriginatorSystem)
	}
	if m.Subject != "hello peer" {
		t.Errorf("Subject = %q, want hello peer", m.Subject)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["type"] != "application/smil" {
		t.Errorf("Content-Type = %q (%v), want multipart/related; type=application/smil", m.Header.Get("Content-Type"), err)
	}
	ct, parts, err := m.Parts(mm4.Limits{})
	if err != nil {
		t.Fatalf("Parts = %v", err)
	}
	if len(parts) < 3 || parts[0].ContentType.Type != "application/smil" {
		t.Errorf("parts of %s: %d, first %v; want SMIL first, text and image", ct.Type, len(parts), parts)
	}
	var text, img bool
	for i, p := range parts {
		switch {
		case p.ContentType.Type == "text/plain":
			text = strings.Contains(string(p.Body), "hello over MM4")
		case p.ContentType.Type == "image/jpeg":
			img = true
			e2eCheckImage(t, fmt.Sprintf("MM4 part %d", i), p.Body, 1600, 1200)
		}
	}
	if !text || !img {
		t.Errorf("MM4 parts: text %v, image %v; want both", text, img)
	}

	// The message is delivered, waiting for the answer.
	msgs := r.WaitQueue(15*time.Second, "the MM4 message delivered", func(ms []store.Message) bool {
		ms = e2eOnlyMMS(ms)
		return len(ms) == 1 && len(ms[0].Rcpts) == 1 && ms[0].Rcpts[0].Status == store.Delivered
	})
	id := e2eOnlyMMS(msgs)[0].ID

	// The peer answers from its system address with MM4_forward.RES.
	var res bytes.Buffer
	if err := mm4.WriteResponse(&res, &mm4.Response{Type: mm4.ForwardRes, TransactionID: m.TransactionID, MessageID: m.MessageID,
		StatusCode: "Ok", StatusText: "accepted", From: "system@mms.peer.test", To: m.OriginatorSystem, Date: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e2e.Send(r.SMTP, "system@mms.peer.test", []string{m.OriginatorSystem}, res.Bytes()); err != nil {
		t.Fatalf("sending MM4_forward.RES: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		qm := r.Message(id)
		if rep := qm.Rcpts[0].Report; strings.HasPrefix(rep, "forward.res: Ok") {
			t.Logf("GET /api/queue/%s: status %s, report %q, tid %s", id, qm.Rcpts[0].Status, rep, qm.Rcpts[0].TransactionID)
			if qm.Rcpts[0].TransactionID != m.TransactionID {
				t.Errorf("recorded transaction id %q, want %q", qm.Rcpts[0].TransactionID, m.TransactionID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/queue/%s: report %q, want forward.res: Ok\n%s", id, qm.Rcpts[0].Report, r.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wrap76 breaks base64 into 76-column lines.
func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

// e2eSink runs Postfix's smtp-sink on a free port, saving each message in
// a folder of its own (writable by the user it drops to), until the test
// ends.
func e2eSink(t *testing.T, sink string) (addr, dir string) {
	t.Helper()
	root := os.Geteuid() == 0
	base := ""
	if fi, err := os.Stat("/tmp"); root && err == nil && fi.IsDir() {
		base = "/tmp" // every parent must be open to the user smtp-sink becomes: not a private TMPDIR
	}
	dir, err := os.MkdirTemp(base, "sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var args []string
	if root {
		// As root smtp-sink must drop privileges, and then writes as that user.
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("smtp-sink needs the nobody user as root: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-u", "nobody")
	}
	addr = e2e.FreeAddr(t)
	// %M in the template is strftime's minute; smtp-sink adds a random suffix.
	args = append(args, "-d", dir+"/%M.", addr, "100")
	cmd := exec.Command(sink, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp-sink did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// e2eLeaves returns the leaf parts of a MIME entity: content type and
// decoded body.
func e2eLeaves(t *testing.T, header mail.Header, body io.Reader) (out []struct {
	ct   string
	body []byte
}) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: %v", mt, err)
			}
			out = append(out, e2eLeaves(t, mail.Header(p.Header), p)...)
		}
		return out
	}
	var r io.Reader = body
	if strings.EqualFold(header.Get("Content-Transfer-Encoding"), "base64") {
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading a %s part: %v", mt, err)
	}
	return append(out, struct {
		ct   string
		body []byte
	}{mt, b})
}

// TestE2ESmtpSink: an mm3 route to Postfix's smtp-sink gets an ordinary
// MIME mail to <digits>@<gateway_domain> with the picture; then
// smtp-source sends 200 messages, which all reach the outbox.
func TestE2ESmtpSink(t *testing.T) {
	sink := e2e.Tool(t, "smtp-sink", "postfix")
	source := e2e.Tool(t, "smtp-source", "postfix")
	swaks := e2e.Tool(t, "swaks", "swaks")
	bin := e2eBinary(t)
	sinkAddr, sinkDir := e2eSink(t, sink)
	r := e2e.NewRelay(t, bin, e2e.Options{Extra: fmt.Sprintf(`
[[route]]
prefix = "+1212"
type = "mm3"
host = %q
gateway_domain = "mms.gateway.test"
`, sinkAddr)})
	r.Start(30 * time.Second)

	pic := filepath.Join(t.TempDir(), "pic.jpg")
	if err := os.WriteFile(pic, e2e.JPEG(t, 800, 600), 0o600); err != nil {
		t.Fatal(err)
	}
	res := e2eSwaks(t, swaks, "--server", r.SMTP, "--to", "12125550199@mms.test", "--from", "alice@example.com",
		"--header", "Subject: to the gateway", "--body", "via MM3",
		"--attach-type", "image/jpeg", "--attach-name", "pic.jpg", "--attach", "@"+pic)
	if res.code != 0 {
		t.Fatalf("swaks exit %d:\n%s", res.code, res.transcript)
	}
	r.WaitQueue(30*time.Second, "the MM3 message delivered", func(ms []store.Message) bool {
		return len(ms) == 1 && ms[0].Rcpts[0].Status == store.Delivered
	})
	ents, err := os.ReadDir(sinkDir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("smtp-sink folder: %v, %v; want one file", ents, err)
	}
	raw, err := os.ReadFile(filepath.Join(sinkDir, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	// smtp-sink writes the envelope as X- header fields, then a Received
	// field, then the message as sent, with LF line ends.
	if !bytes.Contains(raw, []byte("X-Rcpt-Args: <12125550199@mms.gateway.test>\n")) {
		t.Errorf("smtp-sink file lacks RCPT <12125550199@mms.gateway.test>:\n%.600s", raw)
	}
	if !bytes.Contains(raw, []byte("X-Mail-Args: <alice@example.com>")) {
		t.Errorf("smtp-sink file lacks MAIL FROM <alice@example.com>:\n%.600s", raw)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("reading the smtp-sink file as mail: %v", err)
	}
	if msg.Header.Get("X-Mms-Message-Type") != "" {
		t.Errorf("MM3 mail carries X-Mms-Message-Type %q", msg.Header.Get("X-Mms-Message-Type"))
	}
	if s := msg.Header.Get("Subject"); s != "to the gateway" {
		t.Errorf("Subject = %q", s)
	}
	var img, text bool
	for _, p := range e2eLeaves(t, msg.Header, msg.Body) {
		switch {
		case p.ct == "image/jpeg":
			img = true
			e2eCheckImage(t, "MM3 image", p.body, 1600, 1200)
		case p.ct == "text/plain":
			text = strings.Contains(string(p.body), "via MM3")
		}
	}
	if !img || !text {
		t.Errorf("MM3 mail: image %v, text %v; want both", img, text)
	}

	// Load: smtp-source, 200 messages over 4 sessions, all to the outbox.
	const n = 200
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, source, "-c", "-m", strconv.Itoa(n), "-s", "4", "-t", "15551234567@mms.test",
		"-f", "load@example.com", r.SMTP)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	accepted := time.Since(start)
	files := e2eWaitFiles(t, r, n, 60*time.Second)
	all := time.Since(start)
	if len(files) != n {
		t.Errorf("outbox has %d messages, want %d", len(files), n)
	}
	t.Logf("smtp-source: %d messages accepted in %v (%.0f/s), all %d in the outbox after %v (%.0f/s)",
		n, accepted.Round(time.Millisecond), float64(n)/accepted.Seconds(), len(files), all.Round(time.Millisecond), float64(n)/all.Seconds())
}

// TestE2EPeerDownThenUp: the MM4 peer does not listen; the message is
// deferred; once the peer listens on that port it is delivered.
func TestE2EPeerDownThenUp(t *testing.T) {
	bin := e2eBinary(t)
	peerAddr := e2e.FreeAddr(t)
	r := e2eMM4Relay(t, bin, peerAddr, "retry_min = \"1s\"\nretry_max = \"2s\"", "")
	if err := e2e.Send(r.SMTP, "alice@example.com", []string{"+447911123456@mms.test"},
		e2eMessage("alice@example.com", "+447911123456@mms.test", "later", "when the peer is back")); err != nil {
		t.Fatalf("sending: %v", err)
	}
	msgs := r.WaitQueue(20*time.Second, "a deferred recipient", func(ms []store.Message) bool {
		return len(ms) == 1 && ms[0].Rcpts[0].Status == store.Deferred
	})
	t.Logf("deferred: attempts %d, error %q", msgs[0].Rcpts[0].Attempts, msgs[0].Rcpts[0].LastError)
	if !strings.Contains(msgs[0].Rcpts[0].LastError, "connect") {
		t.Errorf("last error %q, want a connection failure", msgs[0].Rcpts[0].LastError)
	}
	// The command line sees it too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, err := r.Run("", "queue", "list", "-config", r.Config)
		if err == nil && strings.Contains(out, "deferred") && strings.Contains(out, msgs[0].ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mmsrelay queue list: %v\n%s%s", err, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}

	peer := e2e.StartPeer(t, peerAddr, nil)
	got := peer.Wait(t, 1, 20*time.Second)
	if len(got[0].To) != 1 || got[0].To[0] != "+447911123456/TYPE=PLMN@mms.peer.test" {
		t.Errorf("RCPT TO = %q", got[0].To)
	}
	msgs = r.WaitQueue(10*time.Second, "the message delivered", func(ms []store.Message) bool {
		return len(ms) == 1 && ms[0].Rcpts[0].Status == store.Delivered
	})
	t.Logf("delivered after %d attempts", msgs[0].Rcpts[0].Attempts)
}

// TestE2EPeer5xxBounces: the MM4 peer refuses at DATA with 550; the
// sender gets a multipart/report DSN through the smarthost that names the
// reason.
func TestE2EPeer5xxBounces(t *testing.T) {
	bin := e2eBinary(t)
	refuse := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such subscriber"}
	peer := e2e.StartPeer(t, "", func(e2e.Mail) *smtp.SMTPError { return refuse })
	smarthost := e2e.StartPeer(t, "", nil)
	r := e2eMM4Relay(t, bin, peer.Addr, "", fmt.Sprintf("\n[outbound]\nsmarthost = %q\n", smarthost.Addr))
	if err := e2e.Send(r.SMTP, "alice@example.com", []string{"+447911123456@mms.test"},
		e2eMessage("alice@example.com", "+447911123456@mms.test", "refused", "the peer says no")); err != nil {
		t.Fatalf("sending: %v", err)
	}
	b := smarthost.Wait(t, 1, 30*time.Second)[0]
	if peer.Tried() != 1 {
		t.Errorf("the peer was offered %d messages, want 1", peer.Tried())
	}
	if b.From != "" || len(b.To) != 1 || b.To[0] != "alice@example.com" {
		t.Errorf("bounce envelope: MAIL FROM <%s>, RCPT %q; want <> and alice@example.com", b.From, b.To)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(b.Data))
	if err != nil {
		t.Fatalf("reading the bounce: %v", err)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Errorf("bounce Content-Type = %q, want multipart/report; report-type=delivery-status", msg.Header.Get("Content-Type"))
	}
	rep, err := dsn.Parse(b.Data)
	if err != nil {
		t.Fatalf("dsn.Parse = %v\n%s", err, b.Data)
	}
	if len(rep.Recipients) != 1 {
		t.Fatalf("DSN recipients = %+v, want one", rep.Recipients)
	}
	rc := rep.Recipients[0]
	if rc.Action != dsn.ActionFailed || rc.Status != "5.1.1" || !strings.Contains(rc.Addr, "447911123456") {
		t.Errorf("DSN recipient = %+v, want failed, the peer's 5.1.1, for +447911123456", rc)
	}
	if !strings.Contains(rc.DiagnosticCode, "550") || !strings.Contains(rc.DiagnosticCode+rc.Reason, "no such subscriber") {
		t.Errorf("DSN names diagnostic %q, reason %q; want the peer's 550 no such subscriber", rc.DiagnosticCode, rc.Reason)
	}
	t.Logf("bounce: %s %s, diagnostic %q", rc.Action, rc.Status, rc.DiagnosticCode)
	r.WaitQueue(10*time.Second, "the message failed and the bounce sent", func(ms []store.Message) bool {
		for _, m := range ms {
			for _, rc := range m.Rcpts {
				if !rc.Status.Final() {
					return false
				}
			}
		}
		mm := e2eOnlyMMS(ms)
		return len(mm) == 1 && mm[0].Rcpts[0].Status == store.Failed
	})
}

// TestE2EMM4NoResponse: the MM4 peer takes the message but never sends the
// MM4_forward.RES that was asked for; the relay sends it again with the
// same identifiers after queue.response_timeout, three times, then bounces
// to the sender.
func TestE2EMM4NoResponse(t *testing.T) {
	bin := e2eBinary(t)
	peer := e2e.StartPeer(t, "", nil)
	smarthost := e2e.StartPeer(t, "", nil)
	r := e2eMM4Relay(t, bin, peer.Addr, "response_timeout = \"1s\"\nretry_min = \"1s\"\nretry_max = \"2s\"",
		fmt.Sprintf("\n[outbound]\nsmarthost = %q\n", smarthost.Addr))
	if err := e2e.Send(r.SMTP, "alice@example.com", []string{"+447911123456@mms.test"},
		e2eMessage("alice@example.com", "+447911123456@mms.test", "unconfirmed", "no answer")); err != nil {
		t.Fatalf("sending: %v", err)
	}
	b := smarthost.Wait(t, 1, 60*time.Second)[0]
	got := peer.Mail()
	ids := map[string]bool{}
	for _, g := range got {
		m, err := mm4.Parse(g.Data)
		if err != nil {
			t.Fatalf("mm4.Parse = %v", err)
		}
		ids[m.TransactionID+" "+m.MessageID] = true
	}
	if len(got) != 4 || len(ids) != 1 {
		t.Errorf("the peer got %d copies with %d distinct transaction/message ids, want 4 (1 + 3 resends) with one", len(got), len(ids))
	}
	rep, err := dsn.Parse(b.Data)
	if err != nil {
		t.Fatalf("dsn.Parse = %v", err)
	}
	rc := rep.Recipients[0]
	if rc.Action != dsn.ActionFailed || !strings.Contains(rc.Reason, "MM4_forward.RES") {
		t.Errorf("DSN recipient = %+v, want failed for want of MM4_forward.RES", rc)
	}
	// 4.4.7 with "failed" is what MTAs send for mail they gave up on
	// (RFC 3463: a persistent transient condition caused abandonment).
	if rc.Status != "4.4.7" && !strings.HasPrefix(rc.Status, "5.") {
		t.Errorf("DSN status %q, want 4.4.7 or 5.x.x", rc.Status)
	}
	t.Logf("peer got %d copies, ids %v; bounce %s %s: %s", len(got), ids, rc.Action, rc.Status, rc.Reason)
}

// TestE2EReload: SIGHUP applies a changed configuration (a new MM4 route)
// without a restart and without dropping an open session; a file that
// does not load keeps the running configuration.
func TestE2EReload(t *testing.T) {
	bin := e2eBinary(t)
	peer := e2e.StartPeer(t, "", nil)
	r := e2e.NewRelay(t, bin, e2e.Options{})
	r.Start(30 * time.Second)
	open, err := smtp.Dial(r.SMTP)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := open.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	const to = "+447911123456@mms.test"
	send := func(subject string) {
		t.Helper()
		if err := e2e.Send(r.SMTP, "alice@example.com", []string{to}, e2eMessage("alice@example.com", to, subject, subject)); err != nil {
			t.Fatalf("sending %q: %v", subject, err)
		}
	}
	send("before")
	e2eWaitFiles(t, r, 1, 30*time.Second)

	r.WriteConfig(e2e.Options{Extra: fmt.Sprintf("[[route]]\nprefix = \"+44\"\ntype = \"mm4\"\nhost = %q\ndomain = \"mms.peer.test\"\n", peer.Addr)})
	r.Signal(syscall.SIGHUP)
	r.WaitLog("reloaded the configuration", 0, 10*time.Second)
	send("after the reload")
	peer.Wait(t, 1, 30*time.Second)

	if err := os.WriteFile(r.Config, []byte("[smtp]\nlisten = \"not a list\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.Signal(syscall.SIGHUP)
	r.WaitLog("keeping the running", 0, 10*time.Second)
	send("after a bad reload")
	peer.Wait(t, 2, 30*time.Second)

	// The session opened before both reloads still takes mail.
	if err := open.SendMail("alice@example.com", []string{to}, bytes.NewReader(e2eMessage("alice@example.com", to, "old session", "x"))); err != nil {
		t.Fatalf("the session opened before the reloads: %v", err)
	}
	peer.Wait(t, 3, 30*time.Second)
	if f := r.OutboxFiles(".mms"); len(f) != 1 {
		t.Errorf("outbox has %d messages, want only the one from before the reload", len(f))
	}
}

// TestE2ERefusals: swaks is refused for an open-relay attempt, a recipient
// that is not a number and a message over max_message_bytes; nothing is
// queued.
func TestE2ERefusals(t *testing.T) {
	swaks := e2e.Tool(t, "swaks", "swaks")
	bin := e2eBinary(t)
	r := e2e.NewRelay(t, bin, e2e.Options{SMTP: "max_message_bytes = 20000"})
	r.Start(30 * time.Second)
	big := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(big, bytes.Repeat([]byte("0123456789abcdef"), 3000), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		args  []string
		reply string
		code  int // swaks exit status
	}{
		{"open relay", []string{"--to", "someone@gmail.com"}, "550 5.7.1", 24},
		{"not a number", []string{"--to", "sales-2125550123@mms.test"}, "553 5.1.3", 24},
		{"too big", []string{"--to", "15551234567@mms.test", "--attach-type", "application/octet-stream", "--attach", "@" + big}, "552 5.3.4", 26},
	} {
		args := append([]string{"--server", r.SMTP, "--from", "alice@example.com"}, c.args...)
		res := e2eSwaks(t, swaks, args...)
		if res.code != c.code || !strings.Contains(res.transcript, "<** "+c.reply) {
			t.Errorf("%s: swaks exit %d, want %d with %q:\n%s", c.name, res.code, c.code, c.reply, res.transcript)
		}
	}
	if q := r.Queue(); len(q) != 0 {
		t.Errorf("GET /api/queue = %d messages, want none: %+v", len(q), q)
	}
	if f := r.OutboxFiles(""); len(f) != 0 {
		t.Errorf("outbox = %v, want empty", f)
	}
}

// TestE2ECrashSafety sends 300 messages over 8 connections, kills the relay
// with SIGKILL half way, restarts it on the same data_dir and checks that
// every message answered 250 reaches the outbox (at least once, under one
// transaction id).
func TestE2ECrashSafety(t *testing.T) {
	bin := e2eBinary(t)
	// Two workers let a backlog build up behind eight senders, so the kill
	// finds messages queued and in flight, not only delivered.
	r := e2e.NewRelay(t, bin, e2e.Options{SMTP: "max_connections_per_ip = 50", Queue: "workers = 2"})
	r.Start(30 * time.Second)

	const total, conns, killAt = 300, 8, 150
	acked := make([]bool, total)
	var nAcked atomic.Int32
	var killOnce sync.Once
	killed := make(chan struct{})
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for i := range jobs {
				if c == nil {
					var err error
					if c, err = smtp.Dial(r.SMTP); err != nil {
						c = nil
						continue
					}
					c.CommandTimeout, c.SubmissionTimeout = 20*time.Second, 20*time.Second
					if c.Hello("client.test") != nil {
						c.Close()
						c = nil
						continue
					}
				}
				subject := fmt.Sprintf("crash %04d", i)
				err := c.SendMail("crash@example.com", []string{"+15551234567@mms.test"},
					bytes.NewReader(e2eMessage("crash@example.com", "+15551234567@mms.test", subject, "message "+subject)))
				if err != nil {
					c.Close()
					c = nil
					continue
				}
				acked[i] = true
				if nAcked.Add(1) == killAt {
					killOnce.Do(func() { go func() { r.Kill(); close(killed) }() })
				}
			}
		}()
	}
	for i := 0; i < total; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	killOnce.Do(func() { close(killed) }) // fewer than killAt acknowledged: kill nothing
	<-killed
	r.Kill()
	// A repeated delivery rewrites its file through a rename: a new inode.
	atKill := e2eInodes(t, r)

	ready := r.Start(30 * time.Second)
	t.Logf("restarted: SMTP answered %v after the start", ready.Round(time.Millisecond))
	if ready > 3*time.Second {
		t.Errorf("the restarted relay answered SMTP after %v, want about 2s at most", ready)
	}

	want := map[string]bool{}
	for i, ok := range acked {
		if ok {
			want[fmt.Sprintf("crash %04d", i)] = true
		}
	}
	// The store makes in-flight claims due 15 s after a restart.
	deadline := time.Now().Add(60 * time.Second)
	var bySubject map[string][]string
	for {
		bySubject = map[string][]string{}
		for _, f := range r.OutboxFiles(".mms") {
			b, err := os.ReadFile(filepath.Join(r.Outbox(), f))
			if err != nil {
				continue // being renamed into place
			}
			m, err := pdu.Decode(b)
			if err != nil {
				t.Fatalf("outbox %s: %v", f, err)
			}
			s := m.Subject.String()
			bySubject[s] = append(bySubject[s], f)
		}
		missing := 0
		for s := range want {
			if bySubject[s] == nil {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged messages are not in the outbox after 60s\n%s", missing, len(want), r.LogTail(30))
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Nothing the store took stays behind.
	r.WaitQueue(30*time.Second, "every stored message delivered", func(ms []store.Message) bool {
		for _, m := range ms {
			if m.Rcpts[0].Status != store.Delivered {
				return false
			}
		}
		return len(ms) >= len(want)
	})
	files := r.OutboxFiles(".mms")
	sameSubject := 0
	for s, fs := range bySubject {
		if len(fs) > 1 {
			sameSubject++
			t.Errorf("%q is in the outbox under %d transaction ids: %v", s, len(fs), fs)
		}
	}
	repeated := 0
	for name, ino := range e2eInodes(t, r) {
		if old, ok := atKill[name]; ok && old != ino {
			repeated++
		}
	}
	t.Logf("sent %d, acknowledged %d, in the outbox at the kill %d, delivered %d distinct (%d stored though not acknowledged), "+
		"duplicates %d (delivered again under the same transaction id, overwritten), under another id %d",
		total, len(want), len(atKill), len(files), len(files)-len(want), repeated, sameSubject)
}

// e2eInodes maps the outbox's .mms files to their inode numbers.
func e2eInodes(t *testing.T, r *e2e.Relay) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for _, f := range r.OutboxFiles(".mms") {
		fi, err := os.Stat(filepath.Join(r.Outbox(), f))
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[f] = st.Ino
		}
	}
	return out
}

// TestE2ESubmission: the submission listener takes mail after STARTTLS and
// AUTH PLAIN of a [[user]] (bcrypt hash from mmsrelay hash-password);
// without TLS AUTH is not offered, and MAIL without AUTH gets 530.
func TestE2ESubmission(t *testing.T) {
	swaks := e2e.Tool(t, "swaks", "swaks")
	// swaks does TLS with Net::SSLeay, which it only recommends.
	if out, _ := exec.Command(swaks, "--support").CombinedOutput(); !bytes.Contains(out, []byte("=== TLS supported")) {
		e2e.Missing(t, "swaks cannot do TLS (apt-get install libnet-ssleay-perl): %s", bytes.TrimSpace(out))
	}
	bin := e2eBinary(t)
	cmd := exec.Command(bin, "hash-password")
	cmd.Stdin = strings.NewReader("s3cret-pass\n")
	out, err := cmd.Output()
	hash := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(hash, "$2") {
		t.Fatalf("mmsrelay hash-password = %q, %v", hash, err)
	}
	cert, key := e2e.SelfSigned(t, t.TempDir())
	r := e2e.NewRelay(t, bin, e2e.Options{Submission: true,
		SMTP:  fmt.Sprintf("tls_cert = %q\ntls_key = %q", cert, key),
		Extra: fmt.Sprintf("[[user]]\nname = \"shop\"\npassword_hash = %q\n", hash)})
	r.Start(30 * time.Second)

	base := []string{"--server", r.Submission, "--from", "shop@example.com", "--to", "15551234567@mms.test"}
	res := e2eSwaks(t, swaks, append(base, "--tls", "--auth", "PLAIN", "--auth-user", "shop", "--auth-password", "s3cret-pass",
		"--header", "Subject: submitted")...)
	if res.code != 0 || !strings.Contains(res.transcript, "<~  235 ") {
		t.Errorf("STARTTLS + AUTH PLAIN: swaks exit %d, want 0 with 235:\n%s", res.code, res.transcript)
	}
	if res.code == 0 {
		f := e2eWaitFiles(t, r, 1, 30*time.Second)
		m, _ := e2eMMS(t, filepath.Join(r.Outbox(), f[0]))
		if m.Subject.String() != "submitted" {
			t.Errorf("outbox subject %q, want submitted", m.Subject.String())
		}
	}

	// Without TLS: STARTTLS offered, AUTH not, MAIL refused.
	res = e2eSwaks(t, swaks, append(base, "--quit-after", "EHLO")...)
	ehlo := res.transcript
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO without TLS: want STARTTLS and no AUTH:\n%s", ehlo)
	}
	res = e2eSwaks(t, swaks, base...)
	if res.code != 23 || !strings.Contains(res.transcript, "* 530 5.7.0") {
		t.Errorf("MAIL without TLS and AUTH: swaks exit %d, want 23 with 530 5.7.0:\n%s", res.code, res.transcript)
	}
	// With TLS but without AUTH: MAIL refused.
	res = e2eSwaks(t, swaks, append(base, "--tls")...)
	if res.code != 23 || !strings.Contains(res.transcript, "* 530 5.7.0") {
		t.Errorf("MAIL after STARTTLS without AUTH: swaks exit %d, want 23 with 530 5.7.0:\n%s", res.code, res.transcript)
	}
	// A wrong password.
	res = e2eSwaks(t, swaks, append(base, "--tls", "--auth", "PLAIN", "--auth-user", "shop", "--auth-password", "wrong")...)
	if res.code != 28 || !strings.Contains(res.transcript, "535 5.7.8") {
		t.Errorf("a wrong password: swaks exit %d, want 28 with 535 5.7.8:\n%s", res.code, res.transcript)
	}
	if f := r.OutboxFiles(".mms"); len(f) > 1 {
		t.Errorf("outbox has %d messages, want only the authenticated one", len(f))
	}
}
