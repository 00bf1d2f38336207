package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func tcheck(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// testOwner and testLease are what the tests below claim with. The lease
// outlasts every move of the clock while a claim of these tests is open, so
// a claim holds until its outcome is recorded or the store is reopened.
const (
	testOwner = "test"
	testLease = 2 * time.Hour
)

// claimAt is the ClaimRequest of testOwner for up to limit recipients due
// at now.
func claimAt(now time.Time, limit int) ClaimRequest {
	return ClaimRequest{Owner: testOwner, Now: now, Lease: testLease, Limit: limit}
}

func openTest(t *testing.T, dir string, clk *clock) *Bolt {
	t.Helper()
	opts := Options{}
	if clk != nil {
		opts.Now = clk.Now
	}
	s, err := OpenBolt(dir, opts)
	tcheck(t, err, "Open")
	t.Cleanup(func() { s.Close() })
	return s
}

func testEnv(rcpts ...string) Envelope {
	env := Envelope{From: "alice@example.org", Kind: KindMMS, RemoteIP: "192.0.2.1", HELO: "mx.example.org", Ret: "HDRS", EnvID: "env1"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, Recipient{Addr: r, Notify: []string{"FAILURE", "DELAY"}, ORCPT: "rfc822;" + r})
	}
	return env
}

func readBody(t *testing.T, s Queue, id string) []byte {
	t.Helper()
	b, err := s.Body(context.Background(), id)
	tcheck(t, err, "Body")
	defer b.Close()
	data, err := io.ReadAll(b)
	tcheck(t, err, "read body")
	if int64(len(data)) != b.Size() {
		t.Fatalf("Body(%s).Size() = %d, read %d bytes", id, b.Size(), len(data))
	}
	return data
}

func TestAcceptGet(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, t.TempDir(), clk)
	raw := []byte("From: alice@example.org\r\nSubject: hi\r\n\r\nhello\r\n")
	env := testEnv("+15551230001@mms.example", "+15551230002@mms.example")
	id, err := s.Accept(ctx, env, bytes.NewReader(raw))
	tcheck(t, err, "Accept")
	if !validID(id) {
		t.Fatalf("Accept id %q is not a valid id", id)
	}
	m, err := s.Get(ctx, id)
	tcheck(t, err, "Get")
	sum := sha256.Sum256(raw)
	if m.ID != id || m.Size != int64(len(raw)) || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("Get = id %s size %d sha %s, want %s %d %x", m.ID, m.Size, m.SHA256, id, len(raw), sum)
	}
	if m.Envelope.From != env.From || len(m.Envelope.Recipients) != 2 ||
		m.Envelope.Recipients[1].ORCPT != env.Recipients[1].ORCPT || m.Envelope.EnvID != "env1" ||
		!m.Envelope.ReceivedAt.Equal(clk.Now()) {
		t.Fatalf("Get envelope = %+v, want %+v", m.Envelope, env)
	}
	if len(m.Rcpts) != 2 {
		t.Fatalf("Get rcpts = %d, want 2", len(m.Rcpts))
	}
	for i, r := range m.Rcpts {
		if r.Index != i || r.Status != Queued || r.Attempts != 0 || !r.NextAttempt.Equal(clk.Now()) || r.Addr != env.Recipients[i].Addr {
			t.Fatalf("rcpt %d = %+v", i, r)
		}
	}
	if got := readBody(t, s, id); !bytes.Equal(got, raw) {
		t.Fatalf("Body = %q, want %q", got, raw)
	}
	// Body also reads at offsets.
	b, err := s.Body(ctx, id)
	tcheck(t, err, "Body")
	p := make([]byte, 5)
	_, err = b.ReadAt(p, int64(len(raw)-7))
	tcheck(t, err, "ReadAt")
	b.Close()
	if string(p) != "hello" {
		t.Fatalf("ReadAt = %q, want hello", p)
	}

	if _, err := s.Get(ctx, "00000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.Body(ctx, "../store.db"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Body(../store.db) = %v, want ErrNotFound", err)
	}
	if _, err := s.Accept(ctx, Envelope{From: "a@b"}, bytes.NewReader(raw)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Accept(no rcpts) = %v, want ErrInvalid", err)
	}
	// Null sender is kept as empty.
	env.From = ""
	id2, err := s.Accept(ctx, env, bytes.NewReader(nil))
	tcheck(t, err, "Accept null sender, empty body")
	m2, err := s.Get(ctx, id2)
	tcheck(t, err, "Get")
	if m2.Envelope.From != "" || m2.Size != 0 || id2 <= id {
		t.Fatalf("Get(%s) = from %q size %d; ids %s then %s, want increasing", id2, m2.Envelope.From, m2.Size, id, id2)
	}
}

func TestIDs(t *testing.T) {
	var g idGen
	now := time.Now()
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 10000; i++ {
		id := g.next(now) // same instant: the counter keeps ids increasing
		if !validID(id) || len(id) != idLen {
			t.Fatalf("id %q invalid", id)
		}
		if seen[id] || id <= prev {
			t.Fatalf("id %q repeated or not after %q", id, prev)
		}
		seen[id] = true
		prev = id
	}
	var b [12]byte
	if got := encodeID(b); got != strings.Repeat("0", 20) {
		t.Fatalf("encodeID(zero) = %q", got)
	}
	for i := range b {
		b[i] = 0xff
	}
	// 96 one bits then 4 zero bits: 19 × 'z' and 0b1000 = 16 = 'g'.
	if got := encodeID(b); got != strings.Repeat("z", 19)+"g" {
		t.Fatalf("encodeID(ones) = %q", got)
	}
	for _, bad := range []string{"", "../../etc/passwd000", "0000000000000000000I", "000000000000000000000"} {
		if validID(bad) {
			t.Fatalf("validID(%q) = true", bad)
		}
	}
}

func TestQueueLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openTest(t, dir, clk)
	id, err := s.Accept(ctx, testEnv("+15550000001", "+15550000002"), bytes.NewReader([]byte("body")))
	tcheck(t, err, "Accept")

	if jobs, err := s.Claim(ctx, claimAt(clk.Now().Add(-time.Second), 10)); err != nil || len(jobs) != 0 {
		t.Fatalf("Claim(before due) = %v, %v; want nothing", jobs, err)
	}
	now := clk.Add(time.Second)
	jobs, err := s.Claim(ctx, claimAt(now, 10))
	tcheck(t, err, "Claim")
	if len(jobs) != 1 || jobs[0].Message.ID != id || fmt.Sprint(jobs[0].Rcpts) != "[0 1]" {
		t.Fatalf("Claim = %+v, want one job for %s with [0 1]", jobs, id)
	}
	// NextAttempt of a claimed recipient is the end of its lease.
	for _, r := range jobs[0].Message.Rcpts {
		if r.Status != Delivering || r.Attempts != 1 || !r.LastAttempt.Equal(now) || r.Owner != testOwner ||
			!r.NextAttempt.Equal(now.Add(testLease)) {
			t.Fatalf("claimed rcpt = %+v", r)
		}
	}
	// Not claimed again while the lease runs.
	if jobs, _ := s.Claim(ctx, claimAt(now.Add(time.Hour), 10)); len(jobs) != 0 {
		t.Fatalf("second Claim = %+v, want nothing", jobs)
	}
	r0, r1 := RcptRef{id, 0}, RcptRef{id, 1}
	l0, l1 := jobs[0].Lease(0), jobs[0].Lease(1)
	a := Attempt{Route: "mm4-a", TransactionID: "T1", MessageID: "<m1@relay>", Size: 1234}
	tcheck(t, s.Record(ctx, Update{Ref: r0, Op: OpAttempt, Lease: l0, Attempt: a}), "OpAttempt 0")
	tcheck(t, s.Record(ctx, Update{Ref: r1, Op: OpAttempt, Lease: l1, Attempt: a}), "OpAttempt 1")
	refs, err := s.Lookup(ctx, RefTransactionID, "T1")
	tcheck(t, err, "Lookup")
	if fmt.Sprint(refs) != fmt.Sprint([]RcptRef{r0, r1}) {
		t.Fatalf("Lookup(T1) = %v, want [%v %v]", refs, r0, r1)
	}
	tcheck(t, s.Record(ctx, Update{Ref: r0, Op: OpDelivered, Lease: l0, PeerID: "peer-9"}), "OpDelivered")
	if refs, _ := s.Lookup(ctx, RefPeerID, "peer-9"); len(refs) != 1 || refs[0] != r0 {
		t.Fatalf("Lookup(peer-9) = %v, want [%v]", refs, r0)
	}
	if refs, _ := s.Lookup(ctx, RefMessageID, "<m1@relay>"); len(refs) != 2 {
		t.Fatalf("Lookup(mid) = %v, want 2", refs)
	}
	// A second outcome is refused: by the state without a lease, and as a
	// lost lease with the claim that ended.
	if err := s.Record(ctx, Update{Ref: r0, Op: OpDelivered, PeerID: "again"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("OpDelivered(delivered) = %v, want ErrInvalid", err)
	}
	if err := s.Record(ctx, Update{Ref: r0, Op: OpDelivered, Lease: l0, PeerID: "again"}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("OpDelivered(delivered) with its ended lease = %v, want ErrLeaseLost", err)
	}
	if err := s.Record(ctx, Update{Ref: RcptRef{id, 7}, Op: OpDelivered, Lease: l0}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpDelivered(no such rcpt) = %v, want ErrNotFound", err)
	}
	tcheck(t, s.Record(ctx, Update{Ref: r0, Op: OpReport, Report: "Retrieved"}), "OpReport")
	// Nothing waits: what is due next is the end of r1's lease.
	if due, ok, err := s.NextDue(ctx); !ok || err != nil || !due.Equal(now.Add(testLease)) {
		t.Fatalf("NextDue with nothing waiting = %v, %v, %v; want the end of r1's lease %v", due, ok, err, now.Add(testLease))
	}
	next := now.Add(time.Minute)
	tcheck(t, s.Record(ctx, Update{Ref: r1, Op: OpDeferred, Lease: l1, Next: next, Reason: "451 try later"}), "OpDeferred")
	if due, ok, err := s.NextDue(ctx); !ok || err != nil || !due.Equal(next) {
		t.Fatalf("NextDue = %v, %v, %v; want %v", due, ok, err, next)
	}
	if jobs, _ := s.Claim(ctx, claimAt(next.Add(-time.Nanosecond), 10)); len(jobs) != 0 {
		t.Fatalf("Claim before next attempt = %+v, want nothing", jobs)
	}
	jobs, err = s.Claim(ctx, claimAt(next, 10))
	tcheck(t, err, "Claim retry")
	if len(jobs) != 1 || fmt.Sprint(jobs[0].Rcpts) != "[1]" {
		t.Fatalf("Claim retry = %+v, want rcpt 1", jobs)
	}
	r := jobs[0].Message.Rcpts[1]
	if r.Attempts != 2 || r.TransactionID != "T1" || r.MessageID != "<m1@relay>" || r.LastError != "451 try later" {
		t.Fatalf("retried rcpt = %+v: want attempt 2 with the first attempt's ids", r)
	}
	tcheck(t, s.Record(ctx, Update{Ref: r1, Op: OpFailed, Lease: jobs[0].Lease(1), Reason: "550 no such number"}), "OpFailed")
	m, err := s.Get(ctx, id)
	tcheck(t, err, "Get")
	if !m.Done() || m.Rcpts[0].Status != Delivered || m.Rcpts[0].PeerID != "peer-9" || m.Rcpts[0].Report != "Retrieved" ||
		m.Rcpts[1].Status != Failed || m.Rcpts[1].LastError != "550 no such number" {
		t.Fatalf("final message = %+v", m.Rcpts)
	}

	// The records reach records.jsonl by Close at the latest.
	tcheck(t, s.Close(), "Close")
	recs := readRecords(t, dir)
	if len(recs) != 2 || recs[0].Status != Delivered || recs[0].PeerID != "peer-9" || recs[0].Route != "mm4-a" ||
		recs[0].Size != 1234 || recs[0].From != "alice@example.org" || recs[0].To != "+15550000001" ||
		recs[1].Status != Failed || recs[1].Attempts != 2 || recs[1].QueueID != id {
		t.Fatalf("records = %+v", recs)
	}
}

// TestRecordGroupRecords makes several recipients of two messages final in
// one Record (and the rest by Drop), which reads each message once per
// transaction for their delivery records: every record still carries its
// own message's facts and its own recipient's.
func TestRecordGroupRecords(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openTest(t, dir, clk)
	envB := testEnv("+21", "+22", "+23")
	envB.From, envB.Kind = "bob@example.org", KindEmail
	idA, err := s.Accept(ctx, testEnv("+11", "+12", "+13"), bytes.NewReader([]byte("message A")))
	tcheck(t, err, "Accept A")
	idB, err := s.Accept(ctx, envB, bytes.NewReader([]byte("the message B")))
	tcheck(t, err, "Accept B")
	jobs, err := s.Claim(ctx, claimAt(clk.Now(), 10))
	tcheck(t, err, "Claim")
	if len(jobs) != 2 {
		t.Fatalf("Claim = %+v, want both messages", jobs)
	}
	ja, jb := jobs[0], jobs[1]
	refA, refB := ja.Refs(), jb.Refs()
	tcheck(t, s.Record(ctx,
		Update{Ref: refA[2], Op: OpAttempt, Lease: ja.Lease(2), Attempt: Attempt{Route: "mm4", Size: 777}},
		Update{Ref: refA[0], Op: OpDelivered, Lease: ja.Lease(0), PeerID: "pa0"},
		Update{Ref: refB[0], Op: OpDelivered, Lease: jb.Lease(0), PeerID: "pb0"},
		Update{Ref: refA[1], Op: OpFailed, Lease: ja.Lease(1), Reason: "550 a1"},
		Update{Ref: refB[1], Op: OpDeferred, Lease: jb.Lease(1), Next: clk.Now().Add(time.Hour)},
		Update{Ref: refA[2], Op: OpDelivered, Lease: ja.Lease(2), PeerID: "pa2"},
	), "Record")
	tcheck(t, s.Drop(ctx, idB), "Drop B")
	tcheck(t, s.Close(), "Close")
	type rec struct {
		id     string
		rcpt   int
		st     Status
		from   string
		kind   Kind
		to     string
		size   int64
		peer   string
		errMsg string
	}
	want := []rec{
		{idA, 0, Delivered, "alice@example.org", KindMMS, "+11", 9, "pa0", ""},
		{idB, 0, Delivered, "bob@example.org", KindEmail, "+21", 13, "pb0", ""},
		{idA, 1, Failed, "alice@example.org", KindMMS, "+12", 9, "", "550 a1"},
		{idA, 2, Delivered, "alice@example.org", KindMMS, "+13", 777, "pa2", ""},
		{idB, 1, Dropped, "bob@example.org", KindEmail, "+22", 13, "", ""},
		{idB, 2, Dropped, "bob@example.org", KindEmail, "+23", 13, "", ""},
	}
	var got []rec
	for _, r := range readRecords(t, dir) {
		got = append(got, rec{r.QueueID, r.Rcpt, r.Status, r.From, r.Kind, r.To, r.Size, r.PeerID, r.Error})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records =\n%v\nwant\n%v", got, want)
	}
}

func readRecords(t *testing.T, dir string) []Record {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, recordsName))
	tcheck(t, err, "open records")
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestRetryDropList(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, t.TempDir(), clk)
	id1, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("one")))
	tcheck(t, err, "Accept")
	env := testEnv("+2", "+3")
	env.Kind = KindEmail
	id2, err := s.Accept(ctx, env, bytes.NewReader([]byte("two")))
	tcheck(t, err, "Accept")

	jobs, err := s.Claim(ctx, claimAt(clk.Now(), 1))
	tcheck(t, err, "Claim")
	if len(jobs) != 1 || jobs[0].Message.ID != id1 {
		t.Fatalf("Claim(limit 1) = %+v, want %s (oldest first)", jobs, id1)
	}
	tcheck(t, s.Record(ctx, Update{Ref: RcptRef{id1, 0}, Op: OpDeferred, Lease: jobs[0].Lease(0),
		Next: clk.Now().Add(24 * time.Hour), Reason: "busy"}), "OpDeferred")
	tcheck(t, s.Retry(ctx, id1), "Retry")
	jobs, err = s.Claim(ctx, claimAt(clk.Now(), 1))
	tcheck(t, err, "Claim")
	if len(jobs) != 1 || jobs[0].Message.ID != id1 {
		t.Fatalf("Claim after Retry = %+v, want %s", jobs, id1)
	}
	tcheck(t, s.Record(ctx, Update{Ref: RcptRef{id1, 0}, Op: OpFailed, Lease: jobs[0].Lease(0), Reason: "bad"}), "OpFailed")
	tcheck(t, s.Retry(ctx, id1), "Retry failed")
	if m, _ := s.Get(ctx, id1); m.Rcpts[0].Status != Queued {
		t.Fatalf("after Retry of failed: %v, want queued", m.Rcpts[0].Status)
	}

	list, err := s.List(ctx, ListOptions{Kind: KindEmail})
	tcheck(t, err, "List")
	if len(list) != 1 || list[0].ID != id2 {
		t.Fatalf("List(kind email) = %v, want [%s]", ids(list), id2)
	}
	list, _ = s.List(ctx, ListOptions{})
	if fmt.Sprint(ids(list)) != fmt.Sprint([]string{id1, id2}) {
		t.Fatalf("List() = %v, want [%s %s]", ids(list), id1, id2)
	}
	list, _ = s.List(ctx, ListOptions{After: id1})
	if fmt.Sprint(ids(list)) != fmt.Sprint([]string{id2}) {
		t.Fatalf("List(after) = %v, want [%s]", ids(list), id2)
	}

	tcheck(t, s.Drop(ctx, id2), "Drop")
	m, _ := s.Get(ctx, id2)
	if !m.Done() || m.Rcpts[0].Status != Dropped || m.Rcpts[1].Status != Dropped {
		t.Fatalf("after Drop: %+v", m.Rcpts)
	}
	list, _ = s.List(ctx, ListOptions{Status: Dropped})
	if len(list) != 1 || list[0].ID != id2 {
		t.Fatalf("List(dropped) = %v, want [%s]", ids(list), id2)
	}
	jobs, _ = s.Claim(ctx, claimAt(clk.Now().Add(time.Hour), 10))
	if len(jobs) != 1 || jobs[0].Message.ID != id1 {
		t.Fatalf("Claim after Drop = %+v, want only %s", jobs, id1)
	}
	if err := s.Drop(ctx, "nonexistent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Drop(unknown) = %v, want ErrNotFound", err)
	}
}

func ids(ms []*Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestRecoveryAfterReopen(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openTest(t, dir, clk)
	var want []string
	for i := 0; i < 3; i++ {
		id, err := s.Accept(ctx, testEnv("+1", "+2"), bytes.NewReader([]byte(fmt.Sprint("body ", i))))
		tcheck(t, err, "Accept")
		want = append(want, id)
	}
	jobs, err := s.Claim(ctx, claimAt(clk.Now(), 4)) // claims 4 of the 6 recipients
	tcheck(t, err, "Claim")
	if len(jobs) != 2 {
		t.Fatalf("Claim = %d jobs, want 2", len(jobs))
	}
	tcheck(t, s.Record(ctx, Update{Ref: RcptRef{want[0], 0}, Op: OpDelivered, Lease: jobs[0].Lease(0), PeerID: "p"}), "OpDelivered")
	tcheck(t, s.Close(), "Close") // "crash" with 3 recipients still claimed

	s = openTest(t, dir, clk)
	// Interrupted attempts wait for their backoff (15 s ± 10 %, sooner than
	// the end of their lease)...
	jobs, err = s.Claim(ctx, claimAt(clk.Now().Add(time.Second), 100))
	tcheck(t, err, "Claim")
	if len(jobs) != 1 || jobs[0].Message.ID != want[2] {
		t.Fatalf("Claim just after reopen = %+v, want only the unclaimed %s", jobs, want[2])
	}
	tcheck(t, s.Close(), "Close")
	// ... and are due after it. The claim of want[2] above is interrupted too.
	clk.Add(time.Minute)
	s = openTest(t, dir, clk)
	list, err := s.List(ctx, ListOptions{})
	tcheck(t, err, "List")
	if fmt.Sprint(ids(list)) != fmt.Sprint(want) {
		t.Fatalf("List after reopen = %v, want %v", ids(list), want)
	}
	for _, m := range list {
		for _, r := range m.Rcpts {
			if r.Status == Delivering {
				t.Fatalf("%s/%d still delivering after reopen", m.ID, r.Index)
			}
		}
	}
	jobs, err = s.Claim(ctx, claimAt(clk.Now(), 100))
	tcheck(t, err, "Claim after reopen")
	got := map[string]int{}
	for _, j := range jobs {
		for _, i := range j.Rcpts {
			got[fmt.Sprintf("%s/%d", j.Message.ID, i)] = j.Message.Rcpts[i].Attempts
		}
	}
	wantAttempts := map[string]int{
		want[0] + "/1": 2, want[1] + "/0": 2, want[1] + "/1": 2,
		want[2] + "/0": 2, want[2] + "/1": 2,
	}
	if fmt.Sprint(got) != fmt.Sprint(wantAttempts) {
		t.Fatalf("Claim after reopen = %v, want %v", got, wantAttempts)
	}
	if got := readBody(t, s, want[2]); string(got) != "body 2" {
		t.Fatalf("Body after reopen = %q", got)
	}
}

// TestRecoveryDueAt checks when OpenBolt makes the claims of a dead process
// due: at the end of the lease or at LastAttempt + Backoff(Attempts),
// whichever comes first.
func TestRecoveryDueAt(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	opts := Options{Now: clk.Now, MinFree: -1, Backoff: func(n int) time.Duration { return time.Duration(n) * time.Minute }}
	s, err := OpenBolt(dir, opts)
	tcheck(t, err, "Open")
	// Three messages of one recipient each, so that each claim takes one.
	var ids []string
	for _, n := range []string{"+1", "+2", "+3"} {
		id, err := s.Accept(ctx, testEnv(n), bytes.NewReader([]byte("body")))
		tcheck(t, err, "Accept")
		ids = append(ids, id)
		clk.Add(time.Millisecond)
	}
	t0 := clk.Now()
	// Message 0: lease (30 s) shorter than the backoff (1 min).
	_, err = s.Claim(ctx, ClaimRequest{Owner: "A", Now: t0, Lease: 30 * time.Second, Limit: 1})
	tcheck(t, err, "Claim 0")
	// Message 1: backoff (1 min) shorter than the lease (1 h).
	_, err = s.Claim(ctx, ClaimRequest{Owner: "A", Now: t0, Lease: time.Hour, Limit: 1})
	tcheck(t, err, "Claim 1")
	// Message 2: a second attempt, backoff 2 min, lease 1 h.
	jobs, err := s.Claim(ctx, ClaimRequest{Owner: "A", Now: t0, Lease: time.Hour, Limit: 1})
	tcheck(t, err, "Claim 2")
	tcheck(t, s.Record(ctx, Update{Ref: RcptRef{ids[2], 0}, Op: OpDeferred, Lease: jobs[0].Lease(0), Next: t0}), "OpDeferred")
	_, err = s.Claim(ctx, ClaimRequest{Owner: "A", Now: t0, Lease: time.Hour, Limit: 1})
	tcheck(t, err, "Claim 2 again")
	tcheck(t, s.Close(), "Close") // the owner "dies" with three claims open

	s, err = OpenBolt(dir, opts)
	tcheck(t, err, "reopen")
	defer s.Close()
	for i, want := range []time.Time{t0.Add(30 * time.Second), t0.Add(time.Minute), t0.Add(2 * time.Minute)} {
		m, err := s.Get(ctx, ids[i])
		tcheck(t, err, "Get")
		if r := m.Rcpts[0]; r.Status != Queued || r.Owner != "" || !r.NextAttempt.Equal(want) {
			t.Fatalf("message %d after reopen = %+v, want queued, due at %v", i, r, want)
		}
	}
	if due, ok, err := s.NextDue(ctx); !ok || err != nil || !due.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("NextDue after reopen = %v, %v, %v; want %v", due, ok, err, t0.Add(30*time.Second))
	}
	// The restarted store resumes: each is claimable by a new owner once due.
	for i, at := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		jobs, err := s.Claim(ctx, ClaimRequest{Owner: "B", Now: t0.Add(at), Lease: time.Hour, Limit: 10})
		tcheck(t, err, "Claim after reopen")
		if len(jobs) != 1 || jobs[0].Message.ID != ids[i] || jobs[0].Lease(0).Owner != "B" {
			t.Fatalf("Claim at t0+%v after reopen = %+v, want message %d", at, jobs, i)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, 15 * time.Second}, {2, 30 * time.Second}, {3, time.Minute}, {9, time.Hour}, {100, time.Hour}} {
		for range 20 {
			if got := DefaultBackoff(c.n); got < c.want*9/10 || got > c.want*11/10 {
				t.Fatalf("DefaultBackoff(%d) = %v, want %v ± 10 %%", c.n, got, c.want)
			}
		}
	}
}

func TestOrphansRemoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenBolt(dir, Options{InlineMax: -1}) // every body in the spool
	tcheck(t, err, "Open")
	id, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("kept")))
	tcheck(t, err, "Accept")
	inline, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("inline")))
	tcheck(t, err, "Accept")
	tcheck(t, s.Close(), "Close")
	// Make the second body inline, as a store with the default InlineMax would.
	s, err = OpenBolt(dir, Options{})
	tcheck(t, err, "Open")
	tcheck(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bBody).Put([]byte(inline), []byte("\x00inline"))
	}), "make inline")
	tcheck(t, s.Close(), "Close")
	spool := filepath.Join(dir, spoolName)
	tcheck(t, os.Remove(filepath.Join(spool, inline)), "remove")
	orphan := (&idGen{}).next(time.Now())
	for _, name := range []string{orphan, tmpPrefix + "123", "README"} {
		tcheck(t, os.WriteFile(filepath.Join(spool, name), []byte("partial"), 0o600), "write")
	}
	s = openTest(t, dir, nil)
	ents, err := os.ReadDir(spool)
	tcheck(t, err, "ReadDir")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if want := []string{id, "README"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("spool after reopen = %v, want %v", names, want)
	}
	if got := readBody(t, s, id); string(got) != "kept" {
		t.Fatalf("Body = %q", got)
	}
	if got := readBody(t, s, inline); string(got) != "inline" {
		t.Fatalf("Body(inline) = %q", got)
	}
}

func TestConcurrentAccept(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	const workers, each = 16, 25
	var mu sync.Mutex
	sums := map[string][32]byte{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := bytes.Repeat([]byte(fmt.Sprintf("w%d-i%d ", w, i)), 100+w*i)
				id, err := s.Accept(ctx, testEnv(fmt.Sprintf("+1555%04d", w)), bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := sums[id]; dup {
					errs <- fmt.Errorf("duplicate id %s", id)
				}
				sums[id] = sha256.Sum256(body)
				mu.Unlock()
			}
		}()
	}
	// Claims and marks run alongside the accepts.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			jobs, err := s.Claim(ctx, claimAt(time.Now(), 10))
			if err != nil {
				errs <- err
				return
			}
			for _, j := range jobs {
				for _, ref := range j.Refs() {
					if err := s.Record(ctx, Update{Ref: ref, Op: OpDelivered, Lease: j.Lease(ref.Index)}); err != nil {
						errs <- err
						return
					}
				}
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	list, err := s.List(ctx, ListOptions{Limit: 10000})
	tcheck(t, err, "List")
	if len(list) != workers*each {
		t.Fatalf("List = %d messages, want %d", len(list), workers*each)
	}
	for _, m := range list {
		want := sums[m.ID]
		if m.SHA256 != hex.EncodeToString(want[:]) {
			t.Fatalf("%s: sha %s, want %x", m.ID, m.SHA256, want)
		}
	}
	commits, writes := s.CommitStats()
	t.Logf("%d writes in %d commits (%.1f per fsync)", writes, commits, float64(writes)/float64(commits))
	if commits >= writes {
		t.Errorf("CommitStats = %d commits for %d writes: no group commit happened", commits, writes)
	}
}

func TestClaimOnce(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := openTest(t, t.TempDir(), clk)
	key := "alice@example.org\x00<abc@example.org>\x00+15550001"
	for i, want := range []bool{true, false, false} {
		first, err := s.ClaimOnce(ctx, key, time.Hour)
		tcheck(t, err, "ClaimOnce")
		if first != want {
			t.Fatalf("ClaimOnce #%d = %v, want %v", i, first, want)
		}
	}
	if first, _ := s.ClaimOnce(ctx, key+"2", time.Hour); !first {
		t.Fatal("ClaimOnce(other key) = false, want true")
	}
	clk.Add(time.Hour + time.Second)
	if first, _ := s.ClaimOnce(ctx, key, time.Hour); !first {
		t.Fatal("ClaimOnce after ttl = false, want true")
	}
	clk.Add(2 * time.Hour)
	st, err := s.Purge(ctx, clk.Now(), PurgeOptions{})
	tcheck(t, err, "Purge")
	if st.Keys != 2 {
		t.Fatalf("Purge keys = %d, want 2", st.Keys)
	}
}

func TestKV(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	type conv struct {
		Number string
		Email  string
	}
	tcheck(t, s.PutKV(ctx, Conversations, "c/1", conv{"+1", "a@x"}), "PutKV")
	tcheck(t, s.PutKV(ctx, Conversations, "c/2", conv{"+2", "b@x"}), "PutKV")
	tcheck(t, s.PutKV(ctx, Conversations, "d/1", conv{"+3", "c@x"}), "PutKV")
	tcheck(t, s.PutKV(ctx, Tokens, "c/1", "token"), "PutKV")
	if ok, err := s.PutKVIfAbsent(ctx, Tokens, "c/1", "other"); ok || err != nil {
		t.Fatalf("PutKVIfAbsent(existing) = %v, %v; want false", ok, err)
	}
	if ok, err := s.PutKVIfAbsent(ctx, Tokens, "c/9", "nine"); !ok || err != nil {
		t.Fatalf("PutKVIfAbsent(new) = %v, %v; want true", ok, err)
	}
	var c conv
	tcheck(t, s.GetKV(ctx, Conversations, "c/2", &c), "GetKV")
	if c != (conv{"+2", "b@x"}) {
		t.Fatalf("GetKV = %+v", c)
	}
	if err := s.GetKV(ctx, OptOuts, "c/2", &c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetKV(empty table) = %v, want ErrNotFound", err)
	}
	ents, err := s.ScanKV(ctx, Conversations, "c/", 0)
	tcheck(t, err, "ScanKV")
	if len(ents) != 2 || ents[0].Key != "c/1" || ents[1].Key != "c/2" || string(ents[0].Value) != `{"Number":"+1","Email":"a@x"}` {
		t.Fatalf("Scan = %v", ents)
	}
	if ents, _ := s.ScanKV(ctx, Conversations, "", 1); len(ents) != 1 {
		t.Fatalf("Scan(limit 1) = %d entries", len(ents))
	}
	tcheck(t, s.DeleteKV(ctx, Conversations, "c/1"), "DeleteKV")
	tcheck(t, s.DeleteKV(ctx, IMAPState, "nothing"), "DeleteKV missing")
	tcheck(t, s.Close(), "Close")

	s = openTest(t, dir, nil)
	ents, _ = s.ScanKV(ctx, Conversations, "", 0)
	if len(ents) != 2 || ents[0].Key != "c/2" || ents[1].Key != "d/1" {
		t.Fatalf("Scan after reopen = %v", ents)
	}
	var tok string
	tcheck(t, s.GetKV(ctx, Tokens, "c/1", &tok), "GetKV")
	if tok != "token" {
		t.Fatalf("token = %q", tok)
	}
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	s := openTest(t, dir, clk)
	done, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("done")))
	tcheck(t, err, "Accept")
	pending, err := s.Accept(ctx, testEnv("+2"), bytes.NewReader([]byte("pending")))
	tcheck(t, err, "Accept")
	jobs, err := s.Claim(ctx, claimAt(clk.Now(), 10))
	tcheck(t, err, "Claim")
	for _, j := range jobs {
		for _, ref := range j.Refs() {
			lease := j.Lease(ref.Index)
			tcheck(t, s.Record(ctx, Update{Ref: ref, Op: OpAttempt, Lease: lease, Attempt: Attempt{TransactionID: "tid-" + ref.ID}}), "OpAttempt")
			if ref.ID == done {
				tcheck(t, s.Record(ctx, Update{Ref: ref, Op: OpDelivered, Lease: lease, PeerID: "peer"}), "OpDelivered")
			} else {
				tcheck(t, s.Record(ctx, Update{Ref: ref, Op: OpDeferred, Lease: lease, Next: clk.Now().Add(100 * 24 * time.Hour), Reason: "later"}), "OpDeferred")
			}
		}
	}
	// Let the recorder write the record before the purge.
	waitFor(t, func() bool { return fileSize(filepath.Join(dir, recordsName)) > 0 })

	clk.Add(10 * 24 * time.Hour)
	later, err := s.Accept(ctx, testEnv("+3"), bytes.NewReader([]byte("later")))
	tcheck(t, err, "Accept")
	jobs, _ = s.Claim(ctx, claimAt(clk.Now(), 10))
	tcheck(t, s.Record(ctx, Update{Ref: jobs[0].Refs()[0], Op: OpFailed, Lease: jobs[0].Lease(jobs[0].Rcpts[0]), Reason: "no"}), "OpFailed")
	waitFor(t, func() bool { return len(readRecords(t, dir)) == 2 })

	st, err := s.Purge(ctx, clk.Now(), PurgeOptions{Messages: 7 * 24 * time.Hour, Records: 7 * 24 * time.Hour})
	tcheck(t, err, "Purge")
	if st.Messages != 1 || st.Records != 1 {
		t.Fatalf("Purge = %+v, want 1 message, 1 record", st)
	}
	if _, err := s.Get(ctx, done); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(purged) = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, spoolName, done)); !os.IsNotExist(err) {
		t.Fatalf("purged body still there: %v", err)
	}
	if refs, _ := s.Lookup(ctx, RefTransactionID, "tid-"+done); len(refs) != 0 {
		t.Fatalf("Lookup(purged) = %v", refs)
	}
	for _, id := range []string{pending, later} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("Get(%s) after purge: %v", id, err)
		}
	}
	if recs := readRecords(t, dir); len(recs) != 1 || recs[0].QueueID != later {
		t.Fatalf("records after purge = %+v", recs)
	}
	// The records file is still appended to after the rewrite.
	tcheck(t, s.Drop(ctx, pending), "Drop")
	tcheck(t, s.Close(), "Close")
	if recs := readRecords(t, dir); len(recs) != 2 || recs[1].Status != Dropped {
		t.Fatalf("records after drop = %+v", recs)
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5 s")
}

func TestDiskFull(t *testing.T) {
	ctx := context.Background()
	if f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err == nil {
		_, werr := f.Write([]byte("x"))
		f.Close()
		if err := wrapErr("write body", werr); !errors.Is(err, ErrDiskFull) {
			t.Fatalf("wrapErr(%v) = %v, want ErrDiskFull", werr, err)
		}
	}
	if err := wrapErr("x", os.ErrPermission); errors.Is(err, ErrDiskFull) {
		t.Fatalf("wrapErr(EPERM) is ErrDiskFull")
	}

	dir := t.TempDir()
	s, err := OpenBolt(dir, Options{MinFree: 1 << 62})
	tcheck(t, err, "Open")
	defer s.Close()
	free, err := s.FreeSpace()
	tcheck(t, err, "FreeSpace")
	if free <= 0 {
		t.Fatalf("FreeSpace = %d", free)
	}
	if err := s.CheckSpace(ctx, 1000); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("CheckSpace with a huge reserve = %v, want ErrDiskFull", err)
	}
	if _, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("x"))); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Accept with a huge reserve = %v, want ErrDiskFull", err)
	}
	s2 := openTest(t, t.TempDir(), nil)
	tcheck(t, s2.CheckSpace(ctx, 1<<20), "CheckSpace(1 MiB)")
	if err := s2.CheckSpace(ctx, free*2); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("CheckSpace(2×free) = %v, want ErrDiskFull", err)
	}
}

func TestLargeBody(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB body")
	}
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	const size = 50 << 20
	h := sha256.New()
	r := io.TeeReader(io.LimitReader(newPattern(7), size), h)
	id, err := s.Accept(ctx, testEnv("+1"), r) // a reader that does not tell its length
	tcheck(t, err, "Accept")
	want := hex.EncodeToString(h.Sum(nil))
	m, err := s.Get(ctx, id)
	tcheck(t, err, "Get")
	if m.Size != size || m.SHA256 != want {
		t.Fatalf("Get = size %d sha %s, want %d %s", m.Size, m.SHA256, size, want)
	}
	b, err := s.Body(ctx, id)
	tcheck(t, err, "Body")
	defer b.Close()
	h2 := sha256.New()
	n, err := io.Copy(h2, b)
	tcheck(t, err, "read body")
	if n != size || hex.EncodeToString(h2.Sum(nil)) != want {
		t.Fatalf("Body = %d bytes sha %x, want %d %s", n, h2.Sum(nil), size, want)
	}
}

// pattern is a cheap deterministic byte stream (xorshift64) for bodies.
type pattern struct {
	x   uint64
	buf [8]byte
	n   int // unread bytes at the end of buf
}

func newPattern(seed uint64) *pattern { return &pattern{x: seed*0x9e3779b97f4a7c15 + 1} }

func (p *pattern) Read(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		if p.n == 0 {
			p.x ^= p.x << 13
			p.x ^= p.x >> 7
			p.x ^= p.x << 17
			if len(b) >= 8 {
				binary.LittleEndian.PutUint64(b, p.x)
				b = b[8:]
				continue
			}
			binary.LittleEndian.PutUint64(p.buf[:], p.x)
			p.n = 8
		}
		c := copy(b, p.buf[8-p.n:])
		p.n -= c
		b = b[c:]
	}
	return total, nil
}

func TestClosedAndLocked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := OpenBolt(dir, Options{LockTimeout: 50 * time.Millisecond}); err == nil {
		t.Fatal("second Open of an open store succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Accept(cctx, testEnv("+1"), bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept(canceled) = %v, want context.Canceled", err)
	}
	tcheck(t, s.Close(), "Close")
	tcheck(t, s.Close(), "second Close")
	if _, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("x"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept after Close = %v, want ErrClosed", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, spoolName)); len(ents) != 0 {
		t.Fatalf("spool after failed accepts = %v, want empty", ents)
	}
}

func TestStatusText(t *testing.T) {
	for s := Queued; s <= Dropped; s++ {
		b, err := s.MarshalText()
		tcheck(t, err, "MarshalText")
		var back Status
		tcheck(t, back.UnmarshalText(b), "UnmarshalText")
		if back != s {
			t.Fatalf("round trip %v = %v", s, back)
		}
	}
	if _, err := Status(0).MarshalText(); err == nil {
		t.Fatal("MarshalText(0) succeeded")
	}
	if _, err := ParseStatus("bounced"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ParseStatus(bounced) = %v", err)
	}
}

func TestGroupFailureIsolated(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	bad := errors.New("bad write")
	var ops []*writeOp
	for i := range 5 {
		key := []byte(fmt.Sprint("k", i))
		op := &writeOp{done: make(chan error, 1), fn: func(tx *bolt.Tx) error {
			if i == 2 {
				return bad
			}
			if i == 3 {
				panic("boom")
			}
			return tx.Bucket(bOnce).Put(key, make([]byte, 8))
		}}
		ops = append(ops, op)
	}
	s.commit(slices.Clone(ops)) // one group, as the committer forms it; commit reuses the slice
	for i, op := range ops {
		err := <-op.done
		switch i {
		case 2:
			if !errors.Is(err, bad) {
				t.Fatalf("op 2 = %v, want %v", err, bad)
			}
		case 3:
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Fatalf("op 3 = %v, want the panic as an error", err)
			}
		default:
			tcheck(t, err, fmt.Sprint("op ", i))
		}
	}
	tcheck(t, s.db.View(func(tx *bolt.Tx) error {
		for i := range 5 {
			got := tx.Bucket(bOnce).Get([]byte(fmt.Sprint("k", i))) != nil
			if want := i != 2 && i != 3; got != want {
				return fmt.Errorf("key k%d stored = %v, want %v", i, got, want)
			}
		}
		return nil
	}), "check")
}

func TestRecordsPartialLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	id, err := s.Accept(ctx, testEnv("+1"), bytes.NewReader([]byte("x")))
	tcheck(t, err, "Accept")
	tcheck(t, s.Close(), "Close")
	// A crash cut an append short.
	tcheck(t, os.WriteFile(filepath.Join(dir, recordsName), []byte(`{"time":"2026-`), 0o600), "write")
	s = openTest(t, dir, nil)
	tcheck(t, s.Drop(ctx, id), "Drop")
	tcheck(t, s.Close(), "Close")
	data, err := os.ReadFile(filepath.Join(dir, recordsName))
	tcheck(t, err, "read")
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var r Record
	if len(lines) != 2 || lines[0] != `{"time":"2026-` || json.Unmarshal([]byte(lines[1]), &r) != nil || r.QueueID != id {
		t.Fatalf("records.jsonl = %q, want the cut line, then the record on its own line", data)
	}
}

// TestConcurrentClaims checks that concurrent claimers never get the same
// recipient and that concurrent ClaimOnce calls let exactly one through.
func TestConcurrentClaims(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), nil)
	const msgs = 60
	for i := range msgs {
		_, err := s.Accept(ctx, testEnv("+1", "+2"), bytes.NewReader([]byte(fmt.Sprint(i))))
		tcheck(t, err, "Accept")
	}
	var mu sync.Mutex
	claimed := map[RcptRef]int{}
	firsts := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				jobs, err := s.Claim(ctx, claimAt(time.Now(), 3))
				if err != nil {
					t.Error(err)
					return
				}
				first, err := s.ClaimOnce(ctx, "same-key", time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if first {
					firsts++
				}
				for _, j := range jobs {
					for _, ref := range j.Refs() {
						claimed[ref]++
					}
				}
				mu.Unlock()
				if len(jobs) == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 2*msgs {
		t.Fatalf("claimed %d recipients, want %d", len(claimed), 2*msgs)
	}
	for ref, n := range claimed {
		if n != 1 {
			t.Fatalf("%v claimed %d times", ref, n)
		}
	}
	if firsts != 1 {
		t.Fatalf("ClaimOnce returned first = true %d times, want once", firsts)
	}
}

func TestRequeue(t *testing.T) {
	ctx := context.Background()
	s, err := OpenBolt(t.TempDir(), Options{MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.Accept(ctx, Envelope{From: "a@example.com", Recipients: []Recipient{{Addr: "+15551234567@mms.test"}}, Kind: KindMMS}, bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	ref := RcptRef{ID: id, Index: 0}
	if err := s.Record(ctx, Update{Ref: ref, Op: OpRequeue, Next: time.Now(), Reason: "no"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpRequeue of a queued recipient = %v, want ErrInvalid", err)
	}
	jobs, err := s.Claim(ctx, claimAt(time.Now().Add(time.Minute), 10))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim = %v, %v", jobs, err)
	}
	if err := s.Record(ctx, Update{Ref: ref, Op: OpDelivered, Lease: jobs[0].Lease(0), PeerID: "p1"}); err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(time.Hour)
	if err := s.Record(ctx, Update{Ref: ref, Op: OpRequeue, Next: next, Reason: "no MM4_forward.RES"}); err != nil {
		t.Fatal(err)
	}
	m, err := s.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Rcpts[0]; r.Status != Deferred || !r.NextAttempt.Equal(next) || r.LastError != "no MM4_forward.RES" {
		t.Errorf("after OpRequeue: %+v", r)
	}
	if due, ok, _ := s.NextDue(ctx); !ok || !due.Equal(next) {
		t.Errorf("NextDue = %v, %v; want %v", due, ok, next)
	}
}
