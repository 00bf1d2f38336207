package imappoll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// testMessage returns a small RFC 5322 message with Message-ID <id@test>.
func testMessage(id string) []byte {
	return []byte("From: +15550001111@mms.example.net\r\n" +
		"To: reply-token@relay.example.org\r\n" +
		"Subject: reply " + id + "\r\n" +
		"Message-ID: <" + id + "@test>\r\n" +
		"Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Reply body " + id + "\r\n")
}

// openStore opens a real store in a temp dir, closed at cleanup.
func openStore(t *testing.T, dir string) store.KV {
	t.Helper()
	st, err := store.OpenBolt(dir, store.Options{MinFree: -1})
	if err != nil {
		t.Fatalf("store.OpenBolt(%q) = %v", dir, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// recorder is a Handler that counts hand-overs by Message-ID.
type recorder struct {
	mu     sync.Mutex
	counts map[string]int
	order  []string
	// fail, if set, is called first; a non-nil result is returned instead
	// of recording.
	fail func(id string, n int) error
	// after, if set, runs after a message was recorded.
	after func(id string, n int)
	calls map[string]int
}

func newRecorder() *recorder {
	return &recorder{counts: make(map[string]int), calls: make(map[string]int)}
}

func (r *recorder) handle(ctx context.Context, raw []byte) error {
	id := messageID(raw)
	r.mu.Lock()
	r.calls[id]++
	n := r.calls[id]
	fail, after := r.fail, r.after
	r.mu.Unlock()
	if fail != nil {
		if err := fail(id, n); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.counts[id]++
	r.order = append(r.order, id)
	total := len(r.order)
	r.mu.Unlock()
	if after != nil {
		after(id, total)
	}
	return nil
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.counts))
	for k, v := range r.counts {
		m[k] = v
	}
	return m
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// waitFor polls cond every 20 ms until it is true or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// imapUser is a test client's view of one account.
type imapUser struct {
	addr, user, pass string
}

func (u imapUser) dial(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(u.addr, nil)
	if err != nil {
		t.Fatalf("DialInsecure(%s) = %v", u.addr, err)
	}
	if err := c.Login(u.user, u.pass).Wait(); err != nil {
		c.Close()
		t.Fatalf("Login(%s) = %v", u.user, err)
	}
	return c
}

// appendMsg APPENDs raw to folder with flags.
func (u imapUser) appendMsg(t *testing.T, folder string, raw []byte, flags ...imap.Flag) {
	t.Helper()
	c := u.dial(t)
	defer c.Close()
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("Append write = %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("Append close = %v", err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatalf("Append(%s) = %v", folder, err)
	}
	c.Logout().Wait()
}

// folderMsg is one message of a folder as seen by list.
type folderMsg struct {
	UID       imap.UID
	MessageID string
	Flags     []imap.Flag
}

func (m folderMsg) has(f imap.Flag) bool { return slices.Contains(m.Flags, f) }

// list returns folder's messages (EXAMINE, so nothing changes); a missing
// folder is empty.
func (u imapUser) list(t *testing.T, folder string) []folderMsg {
	t.Helper()
	c := u.dial(t)
	defer c.Close()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil
	}
	if sel.NumMessages == 0 {
		return nil
	}
	bs := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{bs}}).Collect()
	if err != nil {
		t.Fatalf("Fetch(%s) = %v", folder, err)
	}
	var out []folderMsg
	for _, m := range msgs {
		id := ""
		for _, b := range m.BodySection {
			id = messageID(append(b.Bytes, "\r\n"...))
		}
		out = append(out, folderMsg{UID: m.UID, MessageID: id, Flags: m.Flags})
	}
	c.Logout().Wait()
	return out
}

func ids(msgs []folderMsg) []string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.MessageID)
	}
	slices.Sort(s)
	return s
}

// testLogger logs to t at debug level.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runPoller starts p.Run and returns a stop func that cancels and waits.
func runPoller(t *testing.T, p *Poller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run() = %v, want context.Canceled", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10 s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// checkOnce fails unless every id was handed over exactly once and nothing
// else was.
func checkOnce(t *testing.T, rec *recorder, want []string) {
	t.Helper()
	got := rec.snapshot()
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("message %s handed over %d times, want 1", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("handed over %v, want exactly %v", got, want)
	}
}

func msgIDs(prefix string, n int) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("<%s%d@test>", prefix, i))
	}
	return s
}

// bare strips the angle brackets and domain: "<a1@test>" → "a1".
func bare(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(id, "<"), "@test>")
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
