package replies

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

const (
	alice   = "alice@example.com"
	bob     = "bob@example.org"
	numA    = "+15551234567"
	numB    = "+15557654321"
	numC    = "+447700900123"
	numD    = "+15550000000"
	replyD  = "reply.mms.example.net"
	mmsD    = "mms.example.net"
	testTTL = 30 * 24 * time.Hour
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func tcheck(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func openStore(t *testing.T) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(t.TempDir(), store.Options{MinFree: -1})
	tcheck(t, err, "store.OpenBolt")
	t.Cleanup(func() { st.Close() })
	return st
}

// newBook opens a store and a Book over it with a test clock; mod, if not
// nil, adjusts the options first.
func newBook(t *testing.T, mod func(*Options)) (*Book, *clock, *store.Bolt) {
	t.Helper()
	st := openStore(t)
	clk := newClock()
	b := newBookOn(t, st, clk, mod)
	return b, clk, st
}

func newBookOn(t *testing.T, st store.KV, clk *clock, mod func(*Options)) *Book {
	t.Helper()
	opts := Options{ReplyDomain: replyD, MMSDomain: mmsD, TokenTTL: testTTL, Now: clk.Now}
	if mod != nil {
		mod(&opts)
	}
	b, err := New(st, opts)
	tcheck(t, err, "New")
	return b
}

func record(t *testing.T, b *Book, th Thread) Conversation {
	t.Helper()
	c, err := b.Record(context.Background(), th)
	tcheck(t, err, fmt.Sprintf("Record(%v)", th))
	return c
}

func TestRecordStable(t *testing.T) {
	b, _, _ := newBook(t, nil)
	c1 := record(t, b, Thread{Sender: alice, Numbers: []string{numA}, MessageID: "<1@example.com>"})
	if want := TokenPrefix + c1.Token + "@" + replyD; c1.From != want {
		t.Errorf("Record().From = %q, want %q", c1.From, want)
	}
	if c1.Sender != alice || !slices.Equal(c1.Members, []string{numA}) {
		t.Errorf("Record() = %+v, want sender %s and members [%s]", c1, alice, numA)
	}
	c2 := record(t, b, Thread{Sender: "Alice@Example.COM", Numbers: []string{" " + numA}, MessageID: "<2@example.com>"})
	if c2.Token != c1.Token {
		t.Errorf("second Record token = %q, want the first, %q", c2.Token, c1.Token)
	}

	// Every other thread gets a token of its own.
	others := []Thread{
		{Sender: alice, Numbers: []string{numB}},
		{Sender: bob, Numbers: []string{numA}},
		{Sender: alice, Numbers: []string{numA, numB}},
		{Sender: alice, Numbers: []string{numA, numB, numC}},
	}
	seen := map[string]bool{c1.Token: true}
	for _, th := range others {
		c := record(t, b, th)
		if seen[c.Token] {
			t.Errorf("Record(%v) token %q is already in use", th, c.Token)
		}
		seen[c.Token] = true
	}
	// A group is the same thread whatever the order of its numbers.
	g1 := record(t, b, Thread{Sender: alice, Numbers: []string{numC, numA, numB, numA}})
	g2 := record(t, b, Thread{Sender: alice, Numbers: []string{numB, numC, numA}})
	if g1.Token != g2.Token {
		t.Errorf("group tokens differ by member order: %q, %q", g1.Token, g2.Token)
	}
	if !slices.Equal(g1.Members, []string{numA, numB, numC}) {
		t.Errorf("group members = %v, want sorted and without duplicates", g1.Members)
	}
}

func TestTokenFormat(t *testing.T) {
	if tokenBytes*8 < 64 || tokenLen < 13 || tokenLen*5 < tokenBytes*8 {
		t.Fatalf("token of %d bytes in %d characters: want at least 64 bits in 13+ characters", tokenBytes, tokenLen)
	}
	b, _, _ := newBook(t, nil)
	seen := map[string]bool{}
	for i := range 200 {
		c := record(t, b, Thread{Sender: alice, Numbers: []string{fmt.Sprintf("+1555000%04d", i)}})
		if len(c.Token) != tokenLen {
			t.Fatalf("token %q has %d characters, want %d", c.Token, len(c.Token), tokenLen)
		}
		for _, r := range c.Token {
			if !strings.ContainsRune(tokenAlphabet, r) {
				t.Fatalf("token %q has %q, outside the alphabet %q", c.Token, r, tokenAlphabet)
			}
		}
		raw, err := tokenEncoding.DecodeString(c.Token)
		if err != nil || len(raw) != tokenBytes {
			t.Fatalf("decoding token %q = %d bytes, %v; want %d bytes", c.Token, len(raw), err, tokenBytes)
		}
		if seen[c.Token] {
			t.Fatalf("token %q issued twice", c.Token)
		}
		seen[c.Token] = true
		tok, dom, ok := ParseReplyAddr("<" + strings.ToUpper(c.From) + ">")
		if !ok || tok != c.Token || dom != replyD {
			t.Fatalf("ParseReplyAddr(%q) = %q, %q, %v; want %q, %q, true", c.From, tok, dom, ok, c.Token, replyD)
		}
	}
}

// A random source that repeats itself must not make two threads share a
// token: PutKVIfAbsent refuses the second and Record draws again.
func TestTokenCollision(t *testing.T) {
	same := bytes.Repeat([]byte{0x42}, tokenBytes)
	other := bytes.Repeat([]byte{0x17}, tokenBytes)
	src := bytes.NewReader(slices.Concat(same, same, same, other))
	b, _, _ := newBook(t, func(o *Options) { o.Rand = src })
	c1 := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
	c2 := record(t, b, Thread{Sender: alice, Numbers: []string{numB}})
	if c1.Token == c2.Token {
		t.Fatalf("two threads got token %q", c1.Token)
	}
	if want := tokenEncoding.EncodeToString(other); c2.Token != want {
		t.Errorf("second token = %q, want %q (the first unused draw)", c2.Token, want)
	}
	// An exhausted source is an error, not a reused token.
	if _, err := b.Record(context.Background(), Thread{Sender: alice, Numbers: []string{numC}}); err == nil {
		t.Errorf("Record with an exhausted random source = nil error, want one")
	}
}

func TestExpiry(t *testing.T) {
	b, clk, st := newBook(t, nil)
	ctx := context.Background()
	c1 := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})

	// Every mail on the thread pushes the expiry out.
	clk.Add(testTTL - time.Hour)
	if c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}}); c.Token != c1.Token {
		t.Fatalf("Record before expiry gave token %q, want %q", c.Token, c1.Token)
	}
	clk.Add(2 * time.Hour)
	if _, err := b.Resolve(ctx, c1.From, numA); err != nil {
		t.Fatalf("Resolve after a refresh = %v, want the conversation", err)
	}

	clk.Add(testTTL)
	_, err := b.Resolve(ctx, c1.From, numA)
	var re *ReplyError
	if !errors.Is(err, ErrUnmapped) || !errors.As(err, &re) || !strings.Contains(re.Reason, "expired") {
		t.Fatalf("Resolve after expiry = %v, want an expired ErrUnmapped", err)
	}

	// The next mail starts a new thread address; the old one stays dead.
	c2 := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
	if c2.Token == c1.Token {
		t.Fatalf("Record after expiry reused token %q", c1.Token)
	}
	if _, err := b.Resolve(ctx, c2.From, numA); err != nil {
		t.Errorf("Resolve(new token) = %v, want nil", err)
	}
	if _, err := b.Resolve(ctx, c1.From, numA); !errors.Is(err, ErrUnmapped) {
		t.Errorf("Resolve(old token) = %v, want ErrUnmapped", err)
	}
	entries, err := st.ScanKV(ctx, store.Tokens, "", 0)
	tcheck(t, err, "ScanKV")
	if len(entries) != 1 || entries[0].Key != c2.Token {
		t.Errorf("tokens table = %v, want only %s", entries, c2.Token)
	}
}

func TestTokenNeverExpires(t *testing.T) {
	b, clk, _ := newBook(t, func(o *Options) { o.TokenTTL = -1 })
	c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
	clk.Add(10 * 365 * 24 * time.Hour)
	if _, err := b.Resolve(context.Background(), c.From, numA); err != nil {
		t.Errorf("Resolve ten years on with TokenTTL < 0 = %v, want nil", err)
	}
}

func TestResolveWrongNumber(t *testing.T) {
	for _, policy := range []string{PolicyRefuse, PolicyQuarantine} {
		t.Run(policy, func(t *testing.T) {
			b, _, _ := newBook(t, func(o *Options) { o.WrongNumber = policy })
			c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}, Subject: "hi"})
			got, err := b.Resolve(context.Background(), c.From, numB)
			var re *ReplyError
			if !errors.Is(err, ErrWrongNumber) || !errors.As(err, &re) {
				t.Fatalf("Resolve from another number = %v, want ErrWrongNumber", err)
			}
			if re.Action != policy {
				t.Errorf("ReplyError.Action = %q, want %q", re.Action, policy)
			}
			if got.Token != c.Token || got.Sender != alice {
				t.Errorf("Resolve from another number returned %+v, want the conversation for quarantine", got)
			}
			st := re.Status()
			if st.Code != 550 || st.Enhanced != [3]int{5, 7, 1} || strings.Contains(st.Text, alice) {
				t.Errorf("Status() = %+v, want 550 5.7.1 not naming the sender", st)
			}
		})
	}
}

func TestResolveUnmapped(t *testing.T) {
	cases := []struct{ name, addr string }{
		{"unknown token", TokenPrefix + "0123456789abcdef@" + replyD},
		{"not a token", "alice@" + replyD},
		{"short token", TokenPrefix + "0123@" + replyD},
		{"bad alphabet", TokenPrefix + "0123456789abcdeu@" + replyD},
		{"key separator", TokenPrefix + "0123456789abcd|e@" + replyD},
		{"empty", ""},
	}
	for _, policy := range []string{PolicyRefuse, PolicyCatchAll} {
		b, _, _ := newBook(t, func(o *Options) { o.Unmapped = policy; o.CatchAll = "replies@example.com" })
		c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
		otherDomain := TokenPrefix + c.Token + "@elsewhere.example"
		for _, tc := range append(cases, struct{ name, addr string }{"other domain", otherDomain}) {
			_, err := b.Resolve(context.Background(), tc.addr, numA)
			var re *ReplyError
			if !errors.Is(err, ErrUnmapped) || !errors.As(err, &re) {
				t.Errorf("%s: Resolve(%q) = %v, want ErrUnmapped", policy, tc.addr, err)
				continue
			}
			if re.Action != policy {
				t.Errorf("%s: Resolve(%q).Action = %q, want %q", policy, tc.addr, re.Action, policy)
			}
			if policy == PolicyCatchAll && re.CatchAll != "replies@example.com" {
				t.Errorf("%s: Resolve(%q).CatchAll = %q, want the mailbox", policy, tc.addr, re.CatchAll)
			}
			if st := re.Status(); st.Code != 550 || st.Enhanced != [3]int{5, 1, 1} {
				t.Errorf("Status() = %+v, want 550 5.1.1", st)
			}
		}
		// The local part alone, in upper case, and a PLMN sender resolve.
		if _, err := b.Resolve(context.Background(), strings.ToUpper(TokenPrefix+c.Token), numA+"/TYPE=PLMN"); err != nil {
			t.Errorf("Resolve(local part, PLMN number) = %v, want nil", err)
		}
	}
}

func TestNewestMessageID(t *testing.T) {
	b, clk, _ := newBook(t, nil)
	t1 := clk.Now()
	record(t, b, Thread{Sender: alice, Numbers: []string{numA}, MessageID: "<1@example.com>", Subject: "Lunch", Time: t1})
	clk.Add(time.Minute)
	t2 := clk.Now()
	record(t, b, Thread{Sender: alice, Numbers: []string{numA}, MessageID: "<2@example.com>", Subject: "Re: Lunch", Time: t2})
	clk.Add(time.Minute)
	// A retry of the first email must not take the thread back.
	c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}, MessageID: "<1@example.com>", Subject: "Lunch", Time: t1})

	got, err := b.Resolve(context.Background(), c.From, numA)
	tcheck(t, err, "Resolve")
	if got.MessageID != "<2@example.com>" || got.Subject != "Re: Lunch" {
		t.Errorf("Resolve() Message-ID, Subject = %q, %q; want <2@example.com>, Re: Lunch", got.MessageID, got.Subject)
	}
	if s := got.ReplySubject(); s != "Re: Lunch" {
		t.Errorf("ReplySubject() = %q, want %q", s, "Re: Lunch")
	}
	if !got.Created.Equal(t1) || !got.Updated.Equal(clk.Now()) || !got.Expires.Equal(clk.Now().Add(testTTL)) {
		t.Errorf("Created, Updated, Expires = %v, %v, %v; want %v, %v, %v", got.Created, got.Updated, got.Expires, t1, clk.Now(), clk.Now().Add(testTTL))
	}
}

func TestReplySubject(t *testing.T) {
	for subj, want := range map[string]string{"Lunch": "Re: Lunch", "RE: Lunch": "RE: Lunch", "": "Re:", " re:x ": "re:x"} {
		c := Conversation{Subject: subj}
		if got := c.ReplySubject(); got != want {
			t.Errorf("ReplySubject(%q) = %q, want %q", subj, got, want)
		}
	}
}

func TestGroupCc(t *testing.T) {
	b, _, _ := newBook(t, nil)
	ctx := context.Background()
	g := record(t, b, Thread{Sender: alice, Numbers: []string{numA, numB, numC}, MMSDomain: "MMS.carrier.example"})
	for _, from := range []string{numA, numB, numC} {
		c, err := b.Resolve(ctx, g.From, from)
		tcheck(t, err, "Resolve from "+from)
		var want []string
		for _, n := range []string{numA, numB, numC} {
			if n != from {
				want = append(want, n+"@MMS.carrier.example")
			}
		}
		if got := c.Cc(from); !slices.Equal(got, want) {
			t.Errorf("Cc(%s) = %v, want %v", from, got, want)
		}
	}
	if _, err := b.Resolve(ctx, g.From, numD); !errors.Is(err, ErrWrongNumber) {
		t.Errorf("Resolve(group) from a non-member = %v, want ErrWrongNumber", err)
	}
	// The group and the one-to-one thread are different threads.
	one := record(t, b, Thread{Sender: alice, Numbers: []string{numB}})
	c, err := b.Resolve(ctx, one.From, numB)
	tcheck(t, err, "Resolve one-to-one")
	if cc := c.Cc(numB); cc != nil {
		t.Errorf("Cc of a one-to-one thread = %v, want nil", cc)
	}
	if c.MMSDomain != mmsD {
		t.Errorf("MMSDomain = %q, want the default %q", c.MMSDomain, mmsD)
	}
}

func TestDirectMode(t *testing.T) {
	b, _, st := newBook(t, func(o *Options) {
		o.From = FromDirect
		o.DomainFrom = map[string]string{"Masked.Example": FromMasked}
	})
	ctx := context.Background()
	c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
	if c.From != alice || c.Token != "" {
		t.Errorf("direct Record() From, Token = %q, %q; want %q, none", c.From, c.Token, alice)
	}
	entries, err := st.ScanKV(ctx, store.Tokens, "", 0)
	tcheck(t, err, "ScanKV")
	if len(entries) != 0 {
		t.Errorf("direct mode stored tokens %v, want none", entries)
	}
	m := record(t, b, Thread{Sender: alice, Numbers: []string{numA}, MMSDomain: "masked.example"})
	if !strings.HasPrefix(m.From, TokenPrefix) {
		t.Errorf("Record() for a masked domain From = %q, want a reply address", m.From)
	}
	// Without a reply domain, direct is the default.
	d, err := New(st, Options{})
	tcheck(t, err, "New")
	if c := record(t, d, Thread{Sender: bob, Numbers: []string{numA}}); c.From != bob {
		t.Errorf("default mode without a reply domain: From = %q, want %q", c.From, bob)
	}
}

func TestRecordInvalid(t *testing.T) {
	b, _, _ := newBook(t, func(o *Options) { o.MMSDomain = "" })
	for _, th := range []Thread{
		{Sender: "", Numbers: []string{numA}},
		{Sender: alice},
		{Sender: alice, Numbers: []string{""}},
		{Sender: alice, Numbers: []string{numA + "|x"}},
		{Sender: alice, Numbers: []string{numA + "," + numB}},
		{Sender: alice, Numbers: []string{numA, numB}}, // a group needs an MMS domain
	} {
		if _, err := b.Record(context.Background(), th); !errors.Is(err, ErrInvalid) {
			t.Errorf("Record(%+v) = %v, want ErrInvalid", th, err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	st := openStore(t)
	_, err := New(st, Options{From: FromMasked, WrongNumber: "drop", Unmapped: PolicyCatchAll, OptOutScope: "everyone",
		DomainFrom: map[string]string{"x.example": "sometimes"}})
	if err == nil {
		t.Fatal("New(bad options) = nil error")
	}
	for _, want := range []string{"needs a reply domain", `"drop"`, "catch-all mailbox", `"everyone"`, `"sometimes"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(bad options) = %v, want it to mention %s", err, want)
		}
	}
	b, err := New(st, Options{ReplyDomain: " Reply.Example "})
	tcheck(t, err, "New")
	if b.opts.From != FromMasked || b.opts.TokenTTL != DefaultTokenTTL || b.opts.WrongNumber != PolicyRefuse ||
		b.opts.Unmapped != PolicyRefuse || b.opts.OptOutScope != ScopeSender || b.opts.ReplyDomain != "reply.example" {
		t.Errorf("New defaults = %+v", b.opts)
	}
}

// Many goroutines in two Books (two relay instances on one store) record
// the same thread at once: one token wins and no stray token is left.
func TestRecordConcurrent(t *testing.T) {
	st := openStore(t)
	clk := newClock()
	books := []*Book{newBookOn(t, st, clk, nil), newBookOn(t, st, clk, nil)}
	const n = 32
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := books[i%2].Record(context.Background(), Thread{Sender: alice, Numbers: []string{numA, numB},
				MessageID: fmt.Sprintf("<%d@example.com>", i)})
			tokens[i], errs[i] = c.Token, err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Record #%d: %v", i, errs[i])
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("Record #%d token = %q, want %q like #0", i, tokens[i], tokens[0])
		}
	}
	entries, err := st.ScanKV(context.Background(), store.Tokens, "", 0)
	tcheck(t, err, "ScanKV")
	if len(entries) != 1 || entries[0].Key != tokens[0] {
		t.Errorf("tokens table has %d entries, want only %s", len(entries), tokens[0])
	}
}

func TestPurge(t *testing.T) {
	b, clk, st := newBook(t, nil)
	ctx := context.Background()
	old := record(t, b, Thread{Sender: alice, Numbers: []string{numA}})
	record(t, b, Thread{Sender: bob, Numbers: []string{numA}})
	clk.Add(testTTL / 2)
	live := record(t, b, Thread{Sender: alice, Numbers: []string{numB}})
	clk.Add(testTTL/2 + time.Second)

	n, err := b.Purge(ctx)
	tcheck(t, err, "Purge")
	if n != 2 {
		t.Errorf("Purge() = %d, want 2", n)
	}
	toks, err := st.ScanKV(ctx, store.Tokens, "", 0)
	tcheck(t, err, "ScanKV tokens")
	convs, err := st.ScanKV(ctx, store.Conversations, "", 0)
	tcheck(t, err, "ScanKV conversations")
	if len(toks) != 1 || toks[0].Key != live.Token || len(convs) != 1 {
		t.Errorf("after Purge: tokens %v, conversations %v; want only %s", toks, convs, live.Token)
	}
	if c := record(t, b, Thread{Sender: alice, Numbers: []string{numA}}); c.Token == old.Token {
		t.Errorf("Record after Purge reused token %q", old.Token)
	}
}

func FuzzParseReplyAddr(f *testing.F) {
	for _, s := range []string{"r-7k3m9qz2x4c8h1dw@reply.mms.example.net", "<R-0123456789ABCDEF>", "r-@", "alice@example.com", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		tok, dom, ok := ParseReplyAddr(addr)
		if !ok {
			return
		}
		if len(tok) != tokenLen || strings.ContainsAny(tok, keySep+memberSep) {
			t.Fatalf("ParseReplyAddr(%q) token = %q", addr, tok)
		}
		if _, err := tokenEncoding.DecodeString(tok); err != nil {
			t.Fatalf("ParseReplyAddr(%q) token %q does not decode: %v", addr, tok, err)
		}
		tok2, dom2, ok2 := ParseReplyAddr(TokenPrefix + tok + "@" + dom)
		if !ok2 || tok2 != tok || dom2 != dom {
			t.Fatalf("round trip of %q = %q, %q, %v", addr, tok2, dom2, ok2)
		}
	})
}
