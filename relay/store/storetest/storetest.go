// Package storetest is the conformance suite of the store contracts
// (store.Queue, store.Admin, store.KV): every backend runs Run in its own
// tests, so that the relay can rely on the contracts and not on one
// implementation.
//
// The suite uses only the contracts. It needs no control of the backend's
// clock: claims are made at explicit times (ClaimRequest.Now), so a lease
// ends by claiming later rather than by sleeping. It assumes that the
// backend's clock is roughly real time (a test clock fixed in the past is
// fine) and that bodies of a few hundred kilobytes may be stored, which
// covers a spooled body in the embedded backend.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// Run runs the conformance suite. open returns a fresh, empty backend for
// one subtest; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) *store.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"AcceptGetBody", testAcceptGetBody},
		{"ClaimOrderAndGrouping", testClaimOrder},
		{"ClaimWholeMessage", testClaimWholeMessage},
		{"LeaseExpiry", testLeaseExpiry},
		{"RecordGroup", testRecordGroup},
		{"AttemptLookup", testAttemptLookup},
		{"DeferredBudget", testDeferredBudget},
		{"AnsweredBeforeDelivered", testAnsweredBefore},
		{"AwaitingAndAnswered", testAwaiting},
		{"Requeue", testRequeue},
		{"RequeueDuringAttempt", testRequeueDuringAttempt},
		{"IfAwaiting", testIfAwaiting},
		{"Counts", testCounts},
		{"NextDue", testNextDue},
		{"Admin", testAdmin},
		{"Purge", testPurge},
		{"KV", testKV},
		{"ClaimOnceConcurrent", testClaimOnce},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, &harness{t: t, b: b, q: b.Queue, ctx: context.Background()})
		})
	}
}

// harness holds one subtest's backend and helpers that fail the test on
// an unexpected error.
type harness struct {
	t   *testing.T
	b   *store.Backend
	q   store.Queue
	ctx context.Context
}

func (h *harness) check(err error, what string) {
	h.t.Helper()
	if err != nil {
		h.t.Fatalf("%s: %v", what, err)
	}
}

func env(rcpts ...string) store.Envelope {
	e := store.Envelope{From: "alice@example.org", Kind: store.KindMMS}
	for _, r := range rcpts {
		e.Recipients = append(e.Recipients, store.Recipient{Addr: r + "@mms.example.net", Number: r})
	}
	return e
}

func (h *harness) accept(body string, rcpts ...string) string {
	h.t.Helper()
	id, err := h.q.Accept(h.ctx, env(rcpts...), bytes.NewReader([]byte(body)))
	h.check(err, "Accept")
	return id
}

func (h *harness) claim(owner string, now time.Time, lease time.Duration, limit int) []store.Job {
	h.t.Helper()
	jobs, err := h.q.Claim(h.ctx, store.ClaimRequest{Owner: owner, Now: now, Lease: lease, Limit: limit})
	h.check(err, "Claim by "+owner)
	return jobs
}

func (h *harness) rcpt(ref store.RcptRef) store.Rcpt {
	h.t.Helper()
	m, err := h.q.Get(h.ctx, ref.ID)
	h.check(err, "Get")
	if ref.Index >= len(m.Rcpts) {
		h.t.Fatalf("Get(%s) has %d recipients", ref, len(m.Rcpts))
	}
	return m.Rcpts[ref.Index]
}

func (h *harness) record(u ...store.Update) {
	h.t.Helper()
	h.check(h.q.Record(h.ctx, u...), "Record")
}

func (h *harness) counts() map[store.Status]int {
	h.t.Helper()
	c, err := h.q.Counts(h.ctx)
	h.check(err, "Counts")
	return c
}

// wantCounts compares Counts with want, ignoring zero entries.
func (h *harness) wantCounts(when string, want map[store.Status]int) {
	h.t.Helper()
	got := h.counts()
	for st, n := range got {
		if n != want[st] {
			h.t.Fatalf("%s: Counts = %v, want %v", when, got, want)
		}
	}
	for st, n := range want {
		if got[st] != n {
			h.t.Fatalf("%s: Counts = %v, want %v", when, got, want)
		}
	}
}

// one claims exactly one recipient for owner at now and returns it with
// its lease.
func (h *harness) one(owner string, now time.Time, lease time.Duration) (store.RcptRef, store.Lease) {
	h.t.Helper()
	jobs := h.claim(owner, now, lease, 1)
	if len(jobs) != 1 || len(jobs[0].Rcpts) != 1 {
		h.t.Fatalf("Claim by %s at %v = %+v, want one recipient", owner, now, jobs)
	}
	j := jobs[0]
	return j.Refs()[0], j.Lease(j.Rcpts[0])
}

func wantLeaseLost(t *testing.T, err error, what string) {
	t.Helper()
	var ue *store.UpdateError
	if !errors.Is(err, store.ErrLeaseLost) || !errors.As(err, &ue) {
		t.Fatalf("%s = %v, want an *UpdateError wrapping ErrLeaseLost", what, err)
	}
}

func testAcceptGetBody(t *testing.T, h *harness) {
	large := make([]byte, 300<<10) // above the embedded backend's inline limit
	for i := range large {
		large[i] = byte(i*7 + i>>9)
	}
	for _, body := range [][]byte{[]byte("Subject: hi\r\n\r\nhello\r\n"), large} {
		e := env("+15550000001", "+15550000002")
		e.EnvID = "env-1"
		// A plain io.Reader too, not only a *bytes.Reader.
		id, err := h.q.Accept(h.ctx, e, io.MultiReader(bytes.NewReader(body[:10]), bytes.NewReader(body[10:])))
		h.check(err, "Accept")
		m, err := h.q.Get(h.ctx, id)
		h.check(err, "Get")
		sum := sha256.Sum256(body)
		if m.ID != id || m.Size != int64(len(body)) || m.SHA256 != hex.EncodeToString(sum[:]) ||
			m.Envelope.EnvID != "env-1" || m.Envelope.Kind != store.KindMMS || len(m.Rcpts) != 2 {
			t.Fatalf("Get(%s) = %+v", id, m)
		}
		for i, r := range m.Rcpts {
			if r.Index != i || r.Status != store.Queued || r.Attempts != 0 || r.Addr != e.Recipients[i].Addr {
				t.Fatalf("new recipient %d = %+v", i, r)
			}
		}
		b, err := h.q.Body(h.ctx, id)
		h.check(err, "Body")
		got, err := io.ReadAll(b)
		h.check(err, "read Body")
		tail := make([]byte, 5)
		if _, err := b.ReadAt(tail, int64(len(body)-5)); err != nil && err != io.EOF {
			t.Fatalf("ReadAt: %v", err)
		}
		b.Close()
		if !bytes.Equal(got, body) || b.Size() != int64(len(body)) || !bytes.Equal(tail, body[len(body)-5:]) {
			t.Fatalf("Body of %d bytes: read %d, Size %d", len(body), len(got), b.Size())
		}
		got, err = store.ReadBody(h.ctx, h.q, id, 0)
		h.check(err, "ReadBody")
		if !bytes.Equal(got, body) {
			t.Fatalf("ReadBody: %d bytes, want %d", len(got), len(body))
		}
		if _, err := store.ReadBody(h.ctx, h.q, id, int64(len(body)-1)); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("ReadBody over the limit = %v, want ErrInvalid", err)
		}
	}
	if _, err := h.q.Get(h.ctx, "0000000000000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := h.q.Body(h.ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Body(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := h.q.Accept(h.ctx, env(), bytes.NewReader(nil)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Accept without recipients = %v, want ErrInvalid", err)
	}
}

func testClaimOrder(t *testing.T, h *harness) {
	now := time.Now()
	id1 := h.accept("one", "+1", "+2")
	id2 := h.accept("two", "+3", "+4")
	id3 := h.accept("three", "+5")
	if jobs := h.claim("A", now.Add(-time.Hour), time.Minute, 10); len(jobs) != 0 {
		t.Fatalf("Claim before anything is due = %+v", jobs)
	}
	if _, err := h.q.Claim(h.ctx, store.ClaimRequest{Now: now, Lease: time.Minute, Limit: 1}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Claim without owner = %v, want ErrInvalid", err)
	}
	at := now.Add(time.Second)
	jobs := h.claim("A", at, time.Minute, 3)
	// The limit is reached inside the second message: the rest of it
	// comes too, so that one group MMS is never split between workers.
	if len(jobs) != 2 || jobs[0].Message.ID != id1 || fmt.Sprint(jobs[0].Rcpts) != "[0 1]" ||
		jobs[1].Message.ID != id2 || fmt.Sprint(jobs[1].Rcpts) != "[0 1]" {
		t.Fatalf("Claim(limit 3) = %+v, want %s [0 1] then %s [0 1]", jobs, id1, id2)
	}
	for _, j := range jobs {
		for _, i := range j.Rcpts {
			r := j.Message.Rcpts[i]
			if r.Status != store.Delivering || r.Owner != "A" || r.Attempts != 1 ||
				!r.LastAttempt.Equal(at) || !r.NextAttempt.Equal(at.Add(time.Minute)) {
				t.Fatalf("claimed %s/%d = %+v", j.Message.ID, i, r)
			}
			if l := j.Lease(i); l != (store.Lease{Owner: "A", Attempt: 1}) {
				t.Fatalf("Lease = %+v", l)
			}
		}
	}
	jobs = h.claim("B", at, time.Minute, 10)
	if len(jobs) != 1 || jobs[0].Message.ID != id3 {
		t.Fatalf("second Claim = %+v, want %s", jobs, id3)
	}
	if jobs := h.claim("C", at.Add(time.Second), time.Minute, 10); len(jobs) != 0 {
		t.Fatalf("Claim with everything leased = %+v, want nothing", jobs)
	}
	// Attempts counts every claim.
	ref := store.RcptRef{ID: id3, Index: 0}
	h.record(store.Update{Ref: ref, Op: store.OpDeferred, Lease: store.Lease{Owner: "B", Attempt: 1}, Next: at})
	ref2, lease := h.one("C", at, time.Minute)
	if ref2 != ref || lease.Attempt != 2 || h.rcpt(ref).Attempts != 2 {
		t.Fatalf("claim after deferral = %v %+v, want %v attempt 2", ref2, lease, ref)
	}
}

// testClaimWholeMessage: the recipients of one message, due at slightly
// different times (jittered backoff after a retry, a lease that ended), are
// claimed together even when another message's recipient is due between
// them and the limit is 1; one not yet due stays.
func testClaimWholeMessage(t *testing.T, h *harness) {
	t0 := time.Now().Add(time.Second) // after the accepts below
	idA := h.accept("group", "+1", "+2", "+3", "+4")
	idB := h.accept("single", "+5")
	jobs := h.claim("A", t0, time.Minute, 10)
	if len(jobs) != 2 || jobs[0].Message.ID != idA || jobs[1].Message.ID != idB {
		t.Fatalf("first Claim = %+v, want %s and %s", jobs, idA, idB)
	}
	ja, jb := jobs[0], jobs[1]
	at := t0.Add(time.Minute) // A/0 stays Delivering; its lease ends at at
	h.record(
		store.Update{Ref: store.RcptRef{ID: idA, Index: 1}, Op: store.OpDeferred, Lease: ja.Lease(1), Next: at.Add(time.Millisecond)},
		store.Update{Ref: store.RcptRef{ID: idA, Index: 2}, Op: store.OpDeferred, Lease: ja.Lease(2), Next: at.Add(2 * time.Millisecond)},
		store.Update{Ref: store.RcptRef{ID: idA, Index: 3}, Op: store.OpDeferred, Lease: ja.Lease(3), Next: at.Add(time.Hour)},
		// B is due between A's recipients.
		store.Update{Ref: store.RcptRef{ID: idB, Index: 0}, Op: store.OpDeferred, Lease: jb.Lease(0), Next: at.Add(500 * time.Microsecond)},
	)
	now := at.Add(5 * time.Millisecond)
	jobs = h.claim("B", now, time.Minute, 1)
	if len(jobs) != 1 || jobs[0].Message.ID != idA || fmt.Sprint(jobs[0].Rcpts) != "[0 1 2]" {
		t.Fatalf("Claim(limit 1) at t+5ms = %+v, want %s [0 1 2] and nothing else", jobs, idA)
	}
	for _, i := range jobs[0].Rcpts {
		r := jobs[0].Message.Rcpts[i]
		if r.Status != store.Delivering || r.Owner != "B" || r.Attempts != 2 || !r.NextAttempt.Equal(now.Add(time.Minute)) {
			t.Fatalf("claimed %s/%d = %+v", idA, i, r)
		}
	}
	if r := jobs[0].Message.Rcpts[3]; r.Status != store.Deferred || !r.NextAttempt.Equal(at.Add(time.Hour)) {
		t.Fatalf("recipient not yet due = %+v, want it left Deferred", r)
	}
	jobs = h.claim("B", now, time.Minute, 10)
	if len(jobs) != 1 || jobs[0].Message.ID != idB || fmt.Sprint(jobs[0].Rcpts) != "[0]" {
		t.Fatalf("second Claim = %+v, want %s [0]", jobs, idB)
	}
	if jobs := h.claim("C", now, time.Minute, 10); len(jobs) != 0 {
		t.Fatalf("third Claim = %+v, want nothing", jobs)
	}
	if r := h.rcpt(store.RcptRef{ID: idA, Index: 3}); r.Status != store.Deferred || r.Attempts != 1 {
		t.Fatalf("%s/3 after the claims = %+v, want Deferred, one attempt", idA, r)
	}
}

func testLeaseExpiry(t *testing.T, h *harness) {
	t0 := time.Now().Add(time.Second) // after the accepts below
	id := h.accept("body", "+1", "+2", "+3")
	refA := h.claim("A", t0, time.Minute, 3)[0].Refs()
	if jobs := h.claim("B", t0.Add(30*time.Second), time.Minute, 10); len(jobs) != 0 {
		t.Fatalf("Claim by B while A's lease runs = %+v, want nothing", jobs)
	}
	t1 := t0.Add(2 * time.Minute)
	jobs := h.claim("B", t1, time.Minute, 10)
	if len(jobs) != 1 || jobs[0].Message.ID != id || len(jobs[0].Rcpts) != 3 {
		t.Fatalf("Claim by B after A's lease = %+v, want all three", jobs)
	}
	for _, i := range jobs[0].Rcpts {
		r := jobs[0].Message.Rcpts[i]
		if r.Owner != "B" || r.Attempts != 2 || !r.NextAttempt.Equal(t1.Add(time.Minute)) {
			t.Fatalf("re-claimed rcpt = %+v", r)
		}
	}
	leaseA := store.Lease{Owner: "A", Attempt: 1}
	late := []store.Update{
		{Ref: refA[0], Op: store.OpDelivered, Lease: leaseA, PeerID: "late"},
		{Ref: refA[1], Op: store.OpDeferred, Lease: leaseA, Next: t1},
		{Ref: refA[2], Op: store.OpFailed, Lease: leaseA, Reason: "late"},
		{Ref: refA[0], Op: store.OpAttempt, Lease: leaseA, Attempt: store.Attempt{TransactionID: "late"}},
	}
	for _, u := range late {
		wantLeaseLost(t, h.q.Record(h.ctx, u), "A's late "+u.Op.String())
	}
	for _, ref := range refA {
		if r := h.rcpt(ref); r.Status != store.Delivering || r.Owner != "B" || r.PeerID != "" || r.TransactionID != "" {
			t.Fatalf("after A's refused updates, %s = %+v", ref, r)
		}
	}
	leaseB := jobs[0].Lease(0)
	h.record(store.Update{Ref: refA[0], Op: store.OpDelivered, Lease: leaseB, PeerID: "b"})
	if r := h.rcpt(refA[0]); r.Status != store.Delivered || r.PeerID != "b" {
		t.Fatalf("B's OpDelivered: %+v", r)
	}
	// A lease ended by an outcome is lost too.
	wantLeaseLost(t, h.q.Record(h.ctx, store.Update{Ref: refA[0], Op: store.OpFailed, Lease: leaseB}), "OpFailed after OpDelivered")
}

func testRecordGroup(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	id := h.accept("body", "+1", "+2", "+3")
	j := h.claim("A", now, time.Minute, 3)[0]
	refs := j.Refs()
	wrong := store.Lease{Owner: "A", Attempt: 7}
	err := h.q.Record(h.ctx,
		store.Update{Ref: refs[0], Op: store.OpDelivered, Lease: j.Lease(0), PeerID: "p0"},
		store.Update{Ref: refs[1], Op: store.OpDelivered, Lease: wrong, PeerID: "p1"},
		store.Update{Ref: refs[2], Op: store.OpFailed, Lease: j.Lease(2), Reason: "550 no"},
		store.Update{Ref: store.RcptRef{ID: id, Index: 9}, Op: store.OpReport, Report: "x"},
	)
	wantLeaseLost(t, err, "Record with one wrong lease")
	var ue *store.UpdateError
	errors.As(err, &ue)
	if ue.Update.Ref != refs[1] {
		t.Fatalf("refused update = %v, want %v", ue.Update.Ref, refs[1])
	}
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Record naming no such recipient = %v, want it to wrap ErrNotFound too", err)
	}
	m, err := h.q.Get(h.ctx, id)
	h.check(err, "Get")
	if m.Rcpts[0].Status != store.Delivered || m.Rcpts[0].PeerID != "p0" ||
		m.Rcpts[1].Status != store.Delivering ||
		m.Rcpts[2].Status != store.Failed || m.Rcpts[2].LastError != "550 no" {
		t.Fatalf("after the group: %+v", m.Rcpts)
	}
	// Without a lease, the state still has to allow the transition.
	if err := h.q.Record(h.ctx, store.Update{Ref: refs[0], Op: store.OpDeferred}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OpDeferred of a delivered recipient = %v, want ErrInvalid", err)
	}
	h.check(h.q.Record(h.ctx), "Record of nothing")
}

func testAttemptLookup(t *testing.T, h *harness) {
	now := time.Now()
	h.accept("other", "+9")
	id := h.accept("body", "+1", "+2")
	var refs []store.RcptRef
	var leases []store.Lease
	for _, j := range h.claim("A", now.Add(time.Second), time.Minute, 10) {
		for _, i := range j.Rcpts {
			if j.Message.ID == id {
				refs = append(refs, store.RcptRef{ID: id, Index: i})
				leases = append(leases, j.Lease(i))
			}
		}
	}
	if len(refs) != 2 {
		t.Fatalf("claimed %v of %s", refs, id)
	}
	for i, ref := range refs {
		a := store.Attempt{Route: "mm4", TransactionID: fmt.Sprint("T-", i), MessageID: "<m@relay>", Size: 1234}
		h.record(store.Update{Ref: ref, Op: store.OpAttempt, Lease: leases[i], Attempt: a})
	}
	if r := h.rcpt(refs[1]); r.Status != store.Delivering || r.Route != "mm4" || r.TransactionID != "T-1" || r.Size != 1234 {
		t.Fatalf("after OpAttempt: %+v", r)
	}
	lookup := func(kind store.RefKind, v string, want ...store.RcptRef) {
		t.Helper()
		got, err := h.q.Lookup(h.ctx, kind, v)
		h.check(err, "Lookup")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Lookup(%v, %q) = %v, want %v", kind, v, got, want)
		}
	}
	lookup(store.RefTransactionID, "T-0", refs[0])
	lookup(store.RefMessageID, "<m@relay>", refs...)
	lookup(store.RefTransactionID, "T-9")
	h.record(store.Update{Ref: refs[0], Op: store.OpDelivered, Lease: leases[0], PeerID: "peer-7"})
	lookup(store.RefPeerID, "peer-7", refs[0])
	if _, err := h.q.Lookup(h.ctx, store.RefPeerID, ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("Lookup of an empty value = %v, want ErrInvalid", err)
	}
}

func testDeferredBudget(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	h.accept("body", "+1")
	ref, lease := h.one("A", now, time.Minute)
	next := now.Add(10 * time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpDeferred, Lease: lease, Next: next, Budget: 5000, Reason: "552 too big"})
	if r := h.rcpt(ref); r.Status != store.Deferred || r.Budget != 5000 || !r.NextAttempt.Equal(next) ||
		r.LastError != "552 too big" || r.Owner != "" {
		t.Fatalf("after OpDeferred: %+v", r)
	}
	if jobs := h.claim("A", next.Add(-time.Nanosecond), time.Minute, 10); len(jobs) != 0 {
		t.Fatalf("Claim before Next = %+v", jobs)
	}
	ref, lease = h.one("A", next, time.Minute)
	if j := h.rcpt(ref); j.Budget != 5000 {
		t.Fatalf("Budget lost by the claim: %+v", j)
	}
	h.record(store.Update{Ref: ref, Op: store.OpDeferred, Lease: lease, Next: next})
	if r := h.rcpt(ref); r.Budget != 0 {
		t.Fatalf("OpDeferred without Budget left %d", r.Budget)
	}
}

func testAnsweredBefore(t *testing.T, h *harness) {
	// The claim is made at the current time: the answer is recorded after
	// it, during the attempt.
	h.accept("body", "+1")
	ref, lease := h.one("A", time.Now(), time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpAnswered, Report: "Ok"})
	by := time.Now().Add(time.Hour)
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease, PeerID: "p", AnswerBy: by})
	if r := h.rcpt(ref); r.Status != store.Delivered || !r.AnswerBy.IsZero() || r.Report != "Ok" {
		t.Fatalf("answered before delivered: %+v", r)
	}
	got, err := h.q.Awaiting(h.ctx, by.Add(time.Hour), 0)
	h.check(err, "Awaiting")
	if len(got) != 0 {
		t.Fatalf("Awaiting = %v, want nothing: the answer came during the attempt", got)
	}
}

func testAwaiting(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	h.accept("one", "+1")
	h.accept("two", "+2")
	h.accept("three", "+3")
	var refs []store.RcptRef
	for i := range 3 {
		ref, lease := h.one("A", now, time.Minute)
		by := time.Time{}
		if i < 2 {
			by = now.Add(time.Duration(2-i) * time.Hour) // the second is due first
		}
		h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease, AnswerBy: by})
		refs = append(refs, ref)
	}
	awaiting := func(before time.Time, limit int, want ...store.RcptRef) {
		t.Helper()
		got, err := h.q.Awaiting(h.ctx, before, limit)
		h.check(err, "Awaiting")
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Awaiting(%v, %d) = %v, want %v", before.Sub(now), limit, got, want)
		}
	}
	if r := h.rcpt(refs[0]); !r.AnswerBy.Equal(now.Add(2 * time.Hour)) {
		t.Fatalf("AnswerBy = %v", r.AnswerBy)
	}
	awaiting(now, 0)
	awaiting(now.Add(time.Hour-time.Nanosecond), 0)
	awaiting(now.Add(time.Hour), 0, refs[1])
	awaiting(now.Add(3*time.Hour), 0, refs[1], refs[0])
	awaiting(now.Add(3*time.Hour), 1, refs[1])
	h.record(store.Update{Ref: refs[1], Op: store.OpAnswered, Report: "Ok"})
	if r := h.rcpt(refs[1]); !r.AnswerBy.IsZero() || r.Report != "Ok" || r.Status != store.Delivered {
		t.Fatalf("after OpAnswered: %+v", r)
	}
	awaiting(now.Add(3*time.Hour), 0, refs[0])
	// OpReport records a report but leaves the wait.
	h.record(store.Update{Ref: refs[0], Op: store.OpReport, Report: "Retrieved"})
	awaiting(now.Add(3*time.Hour), 0, refs[0])
	if r := h.rcpt(refs[0]); r.Report != "Retrieved" {
		t.Fatalf("after OpReport: %+v", r)
	}
}

func testRequeue(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	h.accept("body", "+1")
	ref, lease := h.one("A", now, time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpAttempt, Lease: lease, Attempt: store.Attempt{TransactionID: "T1"}})
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease, AnswerBy: now.Add(time.Minute)})
	next := now.Add(5 * time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpRequeue, Next: next, Reason: "no answer"})
	if r := h.rcpt(ref); r.Status != store.Deferred || !r.NextAttempt.Equal(next) || !r.AnswerBy.IsZero() ||
		r.LastError != "no answer" || r.TransactionID != "T1" {
		t.Fatalf("after OpRequeue: %+v", r)
	}
	if got, _ := h.q.Awaiting(h.ctx, next, 0); len(got) != 0 {
		t.Fatalf("Awaiting after OpRequeue = %v", got)
	}
	if err := h.q.Record(h.ctx, store.Update{Ref: ref, Op: store.OpRequeue, Next: next}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OpRequeue of a deferred recipient = %v, want ErrInvalid", err)
	}
	ref2, lease := h.one("B", next, time.Minute)
	if ref2 != ref || lease.Attempt != 2 {
		t.Fatalf("claim after requeue = %v %+v", ref2, lease)
	}
	if r := h.rcpt(ref); r.TransactionID != "T1" {
		t.Fatalf("requeued recipient lost its identifiers: %+v", r)
	}
}

// testRequeueDuringAttempt: an answer asking for another attempt that
// comes before the worker records the delivery (OpRequeue on a Delivering
// recipient) makes that OpDelivered a deferral, due when the answer said;
// the next claim starts clean.
func testRequeueDuringAttempt(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	h.accept("body", "+1")
	ref, lease := h.one("A", now, time.Minute)
	next := now.Add(3 * time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpAnswered, Report: "forward.res: Error-network-problem"})
	h.record(store.Update{Ref: ref, Op: store.OpRequeue, Next: next, Reason: "the peer asked for a retry"})
	if r := h.rcpt(ref); r.Status != store.Delivering || r.Owner != "A" {
		t.Fatalf("after OpRequeue during the attempt: %+v, want still Delivering by A", r)
	}
	h.wantCounts("requeue pending", map[store.Status]int{store.Delivering: 1})
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease, AnswerBy: now.Add(time.Hour)})
	r := h.rcpt(ref)
	if r.Status != store.Deferred || !r.NextAttempt.Equal(next) || !r.AnswerBy.IsZero() || r.LastError != "the peer asked for a retry" {
		t.Fatalf("after OpDelivered: %+v, want Deferred due at %v, not awaiting", r, next)
	}
	h.wantCounts("deferred", map[store.Status]int{store.Deferred: 1})
	if got, _ := h.q.Awaiting(h.ctx, now.Add(2*time.Hour), 0); len(got) != 0 {
		t.Fatalf("Awaiting = %v, want nothing", got)
	}
	// The next attempt is delivered normally.
	ref2, lease2 := h.one("B", next, time.Minute)
	if ref2 != ref {
		t.Fatalf("claim at %v = %v", next, ref2)
	}
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease2})
	if r := h.rcpt(ref); r.Status != store.Delivered {
		t.Fatalf("second attempt: %+v, want Delivered", r)
	}
	// IfAwaiting (the watcher) never touches an attempt under way.
	h.accept("body", "+2")
	ref3, _ := h.one("C", now.Add(time.Hour), time.Minute)
	if err := h.q.Record(h.ctx, store.Update{Ref: ref3, Op: store.OpRequeue, IfAwaiting: true, Next: next}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OpRequeue IfAwaiting on a Delivering recipient = %v, want ErrInvalid", err)
	}
}

// testIfAwaiting: the answer watcher's OpRequeue and OpAnswered with
// IfAwaiting apply only while the recipient still awaits an answer, so an
// answer recorded after Awaiting listed it is not undone.
func testIfAwaiting(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accept below
	id := h.accept("body", "+1", "+2", "+3", "+4", "+5")
	j := h.claim("A", now, time.Minute, 10)[0]
	refs := j.Refs()
	by := now.Add(time.Minute)
	var ups []store.Update
	for i, ref := range refs[:4] {
		ups = append(ups, store.Update{Ref: ref, Op: store.OpDelivered, Lease: j.Lease(i), PeerID: fmt.Sprint("p", i), AnswerBy: by})
	}
	h.record(ups...)
	listed, err := h.q.Awaiting(h.ctx, by, 0)
	h.check(err, "Awaiting")
	if fmt.Sprint(listed) != fmt.Sprint(refs[:4]) {
		t.Fatalf("Awaiting = %v, want %v", listed, refs[:4])
	}
	// The answers to 1 and 3 arrive after the watcher listed them.
	h.record(
		store.Update{Ref: refs[1], Op: store.OpAnswered, Report: "Ok"},
		store.Update{Ref: refs[3], Op: store.OpAnswered, Report: "Ok"},
	)
	next := by.Add(time.Minute)
	err = h.q.Record(h.ctx,
		store.Update{Ref: refs[0], Op: store.OpRequeue, IfAwaiting: true, Next: next, Reason: "no answer"},
		store.Update{Ref: refs[1], Op: store.OpRequeue, IfAwaiting: true, Next: next, Reason: "no answer"},
		store.Update{Ref: refs[2], Op: store.OpAnswered, IfAwaiting: true, Report: "timeout"},
		store.Update{Ref: refs[3], Op: store.OpAnswered, IfAwaiting: true, Report: "timeout"},
		// Not delivered, so awaiting nothing.
		store.Update{Ref: refs[4], Op: store.OpRequeue, IfAwaiting: true, Next: next},
		store.Update{Ref: refs[4], Op: store.OpAnswered, IfAwaiting: true, Report: "timeout"},
	)
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Record with refusals = %v, want the refusals joined", err)
	}
	var refused []string
	for _, e := range joined.Unwrap() {
		var ue *store.UpdateError
		if !errors.As(e, &ue) || !errors.Is(e, store.ErrInvalid) {
			t.Fatalf("refusal %v is not an *UpdateError wrapping ErrInvalid", e)
		}
		refused = append(refused, fmt.Sprint(ue.Update.Ref.Index, ue.Update.Op))
	}
	if want := "[1 requeue 3 answered 4 requeue 4 answered]"; fmt.Sprint(refused) != want {
		t.Fatalf("refused %v (%v), want %s", refused, err, want)
	}
	m, err := h.q.Get(h.ctx, id)
	h.check(err, "Get")
	r := m.Rcpts
	if r[0].Status != store.Deferred || !r[0].NextAttempt.Equal(next) || !r[0].AnswerBy.IsZero() || r[0].LastError != "no answer" {
		t.Fatalf("requeued while awaiting: %+v", r[0])
	}
	if r[1].Status != store.Delivered || r[1].Report != "Ok" || !r[1].AnswerBy.IsZero() || r[1].LastError != "" {
		t.Fatalf("requeue after the answer changed the recipient: %+v", r[1])
	}
	if r[2].Status != store.Delivered || r[2].Report != "timeout" || !r[2].AnswerBy.IsZero() {
		t.Fatalf("answered while awaiting: %+v", r[2])
	}
	if r[3].Status != store.Delivered || r[3].Report != "Ok" {
		t.Fatalf("answer after the answer changed the recipient: %+v", r[3])
	}
	if r[4].Status != store.Delivering || r[4].Report != "" {
		t.Fatalf("refused updates changed a claimed recipient: %+v", r[4])
	}
	if got, _ := h.q.Awaiting(h.ctx, next, 0); len(got) != 0 {
		t.Fatalf("Awaiting after the watcher = %v, want nothing", got)
	}
	// Only the requeued one is claimable again.
	jobs := h.claim("B", next, time.Minute, 10)
	if len(jobs) != 1 || fmt.Sprint(jobs[0].Rcpts) != "[0 4]" {
		t.Fatalf("Claim after the watcher = %+v, want [0 4] (4's lease ended)", jobs)
	}
	// IfAwaiting means nothing to other ops: refused.
	if err := h.q.Record(h.ctx, store.Update{Ref: refs[1], Op: store.OpReport, IfAwaiting: true, Report: "x"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("OpReport with IfAwaiting = %v, want ErrInvalid", err)
	}
}

func testCounts(t *testing.T, h *harness) {
	now := time.Now().Add(time.Second) // after the accepts below
	type m = map[store.Status]int
	h.wantCounts("empty", m{})
	id := h.accept("body", "+1", "+2", "+3")
	id2 := h.accept("body", "+4")
	h.wantCounts("accepted", m{store.Queued: 4})
	j := h.claim("A", now, time.Minute, 3)[0]
	h.wantCounts("claimed", m{store.Queued: 1, store.Delivering: 3})
	refs := j.Refs()
	h.record(
		store.Update{Ref: refs[0], Op: store.OpDelivered, Lease: j.Lease(0)},
		store.Update{Ref: refs[1], Op: store.OpDeferred, Lease: j.Lease(1), Next: now},
		store.Update{Ref: refs[2], Op: store.OpFailed, Lease: j.Lease(2)},
	)
	h.wantCounts("recorded", m{store.Queued: 1, store.Deferred: 1, store.Delivered: 1, store.Failed: 1})
	h.record(store.Update{Ref: refs[0], Op: store.OpRequeue, Next: now})
	h.wantCounts("requeued", m{store.Queued: 1, store.Deferred: 2, store.Failed: 1})
	h.check(h.b.Admin.Retry(h.ctx, id), "Retry")
	h.wantCounts("retried", m{store.Queued: 4})
	h.claim("A", now.Add(time.Hour), time.Minute, 1)
	h.check(h.b.Admin.Drop(h.ctx, id), "Drop")
	h.check(h.b.Admin.Drop(h.ctx, id2), "Drop")
	h.wantCounts("dropped", m{store.Dropped: 4})
}

func testNextDue(t *testing.T, h *harness) {
	nextDue := func() (time.Time, bool) {
		t.Helper()
		due, ok, err := h.q.NextDue(h.ctx)
		h.check(err, "NextDue")
		return due, ok
	}
	if _, ok := nextDue(); ok {
		t.Fatal("NextDue of an empty queue is ok")
	}
	before := time.Now()
	h.accept("body", "+1")
	if due, ok := nextDue(); !ok || due.After(time.Now()) || due.Before(before.Add(-time.Minute)) {
		t.Fatalf("NextDue after Accept = %v, %v; want about now", due, ok)
	}
	now := time.Now().Add(time.Second)
	ref, lease := h.one("A", now, time.Minute)
	if due, ok := nextDue(); !ok || !due.Equal(now.Add(time.Minute)) {
		t.Fatalf("NextDue with a lease = %v, %v; want its end %v", due, ok, now.Add(time.Minute))
	}
	next := now.Add(time.Hour)
	h.record(store.Update{Ref: ref, Op: store.OpDeferred, Lease: lease, Next: next})
	if due, ok := nextDue(); !ok || !due.Equal(next) {
		t.Fatalf("NextDue after OpDeferred = %v, %v; want %v", due, ok, next)
	}
	ref, lease = h.one("A", next, time.Minute)
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease})
	if due, ok := nextDue(); ok {
		t.Fatalf("NextDue with nothing waiting or leased = %v", due)
	}
}

func testAdmin(t *testing.T, h *harness) {
	a := h.b.Admin
	now := time.Now().Add(time.Second) // after the accepts below
	id1 := h.accept("one", "+1")
	e := env("+2", "+3")
	e.Kind = store.KindEmail
	id2, err := h.q.Accept(h.ctx, e, bytes.NewReader([]byte("two")))
	h.check(err, "Accept")
	id3 := h.accept("three", "+4")
	list := func(opts store.ListOptions, want ...string) {
		t.Helper()
		ms, err := a.List(h.ctx, opts)
		h.check(err, "List")
		var got []string
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("List(%+v) = %v, want %v", opts, got, want)
		}
	}
	list(store.ListOptions{}, id1, id2, id3)
	list(store.ListOptions{Limit: 2}, id1, id2)
	list(store.ListOptions{After: id1}, id2, id3)
	list(store.ListOptions{Kind: store.KindEmail}, id2)
	ref, lease := h.one("A", now, time.Minute) // id1
	h.record(store.Update{Ref: ref, Op: store.OpFailed, Lease: lease, Reason: "550"})
	list(store.ListOptions{Status: store.Failed}, id1)
	list(store.ListOptions{Status: store.Queued}, id2, id3)

	// Drop takes a claimed recipient too; its owner's update is refused.
	j := h.claim("B", time.Now().Add(time.Second), time.Minute, 2)
	if len(j) != 1 || j[0].Message.ID != id2 {
		t.Fatalf("claim of %s = %+v", id2, j)
	}
	h.check(a.Drop(h.ctx, id2), "Drop")
	m, err := h.q.Get(h.ctx, id2)
	h.check(err, "Get")
	for _, r := range m.Rcpts {
		if r.Status != store.Dropped {
			t.Fatalf("after Drop: %+v", r)
		}
	}
	if err := h.q.Record(h.ctx, store.Update{Ref: j[0].Refs()[0], Op: store.OpDelivered, Lease: j[0].Lease(0)}); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("update after Drop = %v, want ErrLeaseLost", err)
	}

	h.check(a.Retry(h.ctx, id1), "Retry")
	if r := h.rcpt(ref); r.Status != store.Queued {
		t.Fatalf("after Retry: %+v", r)
	}
	j = h.claim("A", time.Now().Add(time.Second), time.Minute, 10)
	if len(j) != 2 || j[0].Message.ID != id3 || j[1].Message.ID != id1 {
		t.Fatalf("claim after Retry = %+v, want %s then %s", j, id3, id1)
	}
	list(store.ListOptions{Status: store.Dropped}, id2)
	if err := a.Retry(h.ctx, "0000000000000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Retry(unknown) = %v, want ErrNotFound", err)
	}
}

func testPurge(t *testing.T, h *harness) {
	a := h.b.Admin
	done := h.accept("done", "+1")
	open := h.accept("open", "+2")
	ref, lease := h.one("A", time.Now(), time.Minute)
	if ref.ID != done {
		t.Fatalf("claimed %v, want %s", ref, done)
	}
	h.record(store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease})
	st, err := a.Purge(h.ctx, time.Now(), store.PurgeOptions{Messages: time.Hour})
	h.check(err, "Purge")
	if st.Messages != 0 {
		t.Fatalf("Purge of recent messages = %+v", st)
	}
	st, err = a.Purge(h.ctx, time.Now().Add(2*time.Hour), store.PurgeOptions{Messages: time.Hour})
	h.check(err, "Purge")
	if st.Messages != 1 {
		t.Fatalf("Purge = %+v, want one message", st)
	}
	if _, err := h.q.Get(h.ctx, done); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(purged) = %v, want ErrNotFound", err)
	}
	if _, err := h.q.Body(h.ctx, done); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Body(purged) = %v, want ErrNotFound", err)
	}
	if _, err := h.q.Get(h.ctx, open); err != nil {
		t.Fatalf("Get(unfinished) after Purge: %v", err)
	}
	h.wantCounts("after Purge", map[store.Status]int{store.Queued: 1})
}

func testKV(t *testing.T, h *harness) {
	kv := h.b.KV
	type val struct{ N int }
	tb := store.Table("test")
	h.check(kv.PutKV(h.ctx, tb, "a1", val{1}), "PutKV")
	h.check(kv.PutKV(h.ctx, tb, "a2", val{2}), "PutKV")
	h.check(kv.PutKV(h.ctx, tb, "b1", val{3}), "PutKV")
	h.check(kv.PutKV(h.ctx, store.Tokens, "a1", val{9}), "PutKV other table")
	var v val
	h.check(kv.GetKV(h.ctx, tb, "a2", &v), "GetKV")
	if v.N != 2 {
		t.Fatalf("GetKV = %+v", v)
	}
	if err := kv.GetKV(h.ctx, tb, "zz", &v); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKV(missing) = %v, want ErrNotFound", err)
	}
	if err := kv.GetKV(h.ctx, "no-table", "a1", &v); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKV(missing table) = %v, want ErrNotFound", err)
	}
	stored, err := kv.PutKVIfAbsent(h.ctx, tb, "a1", val{100})
	h.check(err, "PutKVIfAbsent")
	if stored {
		t.Fatal("PutKVIfAbsent over an existing key stored")
	}
	h.check(kv.GetKV(h.ctx, tb, "a1", &v), "GetKV")
	if v.N != 1 {
		t.Fatalf("PutKVIfAbsent overwrote: %+v", v)
	}
	if stored, err := kv.PutKVIfAbsent(h.ctx, tb, "c1", val{4}); err != nil || !stored {
		t.Fatalf("PutKVIfAbsent(new) = %v, %v", stored, err)
	}
	h.check(kv.PutKV(h.ctx, tb, "a1", val{5}), "PutKV overwrite")
	h.check(kv.GetKV(h.ctx, tb, "a1", &v), "GetKV")
	if v.N != 5 {
		t.Fatalf("PutKV did not overwrite: %+v", v)
	}
	scan := func(prefix string, limit int, want string) {
		t.Helper()
		es, err := kv.ScanKV(h.ctx, tb, prefix, limit)
		h.check(err, "ScanKV")
		var got []string
		for _, e := range es {
			got = append(got, e.Key+"="+string(e.Value))
		}
		if fmt.Sprint(got) != want {
			t.Fatalf("ScanKV(%q, %d) = %v, want %v", prefix, limit, got, want)
		}
	}
	scan("a", 0, `[a1={"N":5} a2={"N":2}]`)
	scan("", 2, `[a1={"N":5} a2={"N":2}]`)
	scan("", 0, `[a1={"N":5} a2={"N":2} b1={"N":3} c1={"N":4}]`)
	scan("x", 0, `[]`)
	h.check(kv.DeleteKV(h.ctx, tb, "a1"), "DeleteKV")
	h.check(kv.DeleteKV(h.ctx, tb, "a1"), "DeleteKV of a missing key")
	h.check(kv.DeleteKV(h.ctx, "no-table", "a1"), "DeleteKV in a missing table")
	scan("a", 0, `[a2={"N":2}]`)
	h.check(kv.GetKV(h.ctx, store.Tokens, "a1", &v), "GetKV other table")
	if v.N != 9 {
		t.Fatalf("tables not separate: %+v", v)
	}
}

func testClaimOnce(t *testing.T, h *harness) {
	kv := h.b.KV
	for round := range 3 {
		key := fmt.Sprint("sender|<mid@x>|+1555000000", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts, errs := 0, 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, err := kv.ClaimOnce(h.ctx, key, time.Hour)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs++
				} else if first {
					firsts++
				}
			}()
		}
		wg.Wait()
		if firsts != 1 || errs != 0 {
			t.Fatalf("8 concurrent ClaimOnce: %d first, %d errors; want exactly 1 first", firsts, errs)
		}
		if first, err := kv.ClaimOnce(h.ctx, key, time.Hour); first || err != nil {
			t.Fatalf("ClaimOnce again = %v, %v", first, err)
		}
	}
}

func testCancelled(t *testing.T, h *harness) {
	id := h.accept("body", "+1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.q.Accept(ctx, env("+2"), bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept with a cancelled context = %v", err)
	}
	if _, err := h.q.Claim(ctx, store.ClaimRequest{Owner: "A", Now: time.Now().Add(time.Second), Lease: time.Minute, Limit: 10}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim with a cancelled context = %v", err)
	}
	ref := store.RcptRef{ID: id, Index: 0}
	if err := h.q.Record(ctx, store.Update{Ref: ref, Op: store.OpFailed}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record with a cancelled context = %v", err)
	}
	if err := h.b.Admin.Drop(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drop with a cancelled context = %v", err)
	}
	if err := h.b.KV.PutKV(ctx, "t", "k", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("PutKV with a cancelled context = %v", err)
	}
	if _, err := h.b.KV.ClaimOnce(ctx, "k", time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("ClaimOnce with a cancelled context = %v", err)
	}
	ms, err := h.b.Admin.List(h.ctx, store.ListOptions{})
	h.check(err, "List")
	if len(ms) != 1 || ms[0].Rcpts[0].Status != store.Queued || ms[0].Rcpts[0].Attempts != 0 {
		t.Fatalf("after cancelled writes: %+v", ms)
	}
	h.wantCounts("after cancelled writes", map[store.Status]int{store.Queued: 1})
	var v int
	if err := h.b.KV.GetKV(h.ctx, "t", "k", &v); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetKV after a cancelled PutKV = %v, want ErrNotFound", err)
	}
	if first, err := h.b.KV.ClaimOnce(h.ctx, "k", time.Hour); !first || err != nil {
		t.Fatalf("ClaimOnce after a cancelled one = %v, %v; want first", first, err)
	}
}
