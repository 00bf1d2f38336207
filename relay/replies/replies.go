package replies

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// MMS From modes for Options.From and Options.DomainFrom.
const (
	// FromMasked sends the MMS from a reply address at Options.ReplyDomain
	// so that the handset's reply comes back to the relay.
	FromMasked = "masked"
	// FromDirect sends the MMS from the email sender's own address; replies
	// go straight to it and the relay records nothing.
	FromDirect = "direct"
)

// Policies for Options.WrongNumber and Options.Unmapped.
const (
	// PolicyRefuse refuses the reply (the relay answers with
	// ReplyError.Status).
	PolicyRefuse = "refuse"
	// PolicyQuarantine keeps a reply from a number that is not in the
	// conversation for the operator instead of delivering it.
	PolicyQuarantine = "quarantine"
	// PolicyCatchAll delivers an unmapped reply to Options.CatchAll.
	PolicyCatchAll = "catchall"
)

// Opt-out scopes for Options.OptOutScope.
const (
	// ScopeSender makes STOP opt the number out of the conversation's
	// sender only (STOPALL still covers every sender).
	ScopeSender = "sender"
	// ScopeAll makes STOP opt the number out of every sender.
	ScopeAll = "all"
)

// AllSenders is the sender of an opt-out that covers every sender.
const AllSenders = "*"

// TokenPrefix starts the local part of every reply address.
const TokenPrefix = "r-"

// DefaultTokenTTL is the token lifetime when Options.TokenTTL is 0.
const DefaultTokenTTL = 90 * 24 * time.Hour

// Default confirmation texts. They name neither the sender nor the relay:
// in masked mode the handset need not learn the sender's address.
const (
	DefaultStopText    = "You will get no more messages from this sender. Reply START to undo."
	DefaultStopAllText = "You will get no more messages from this service. Reply START to undo."
	DefaultStartText   = "You will get messages again. Reply STOP to opt out."
	DefaultHelpText    = "Replies to this thread are forwarded by email to its sender. Reply STOP to opt out, START to opt back in."
)

const (
	tokenBytes        = 10                                 // 80 random bits
	tokenLen          = 16                                 // base32 characters for tokenBytes
	tokenAlphabet     = "0123456789abcdefghjkmnpqrstvwxyz" // Crockford, lower case
	maxTokenAttempts  = 8
	maxRecordAttempts = 4
	lockStripes       = 64
	keySep            = "|"
	memberSep         = ","
	convTable         = store.Conversations
	tokenTable        = store.Tokens
	optOutTable       = store.OptOuts
)

var tokenEncoding = base32.NewEncoding(tokenAlphabet).WithPadding(base32.NoPadding)

// Errors wrapped by *ReplyError. Test with errors.Is.
var (
	// ErrUnmapped means the reply address names no live conversation: it is
	// not a reply address, its token is unknown, or it has expired.
	ErrUnmapped = errors.New("reply address unknown or expired")
	// ErrWrongNumber means the reply came from a number that is not a
	// member of the conversation its token names.
	ErrWrongNumber = errors.New("reply from a number outside the conversation")
	// ErrOptedOut is wrapped by the *OptedOutError that Check returns.
	ErrOptedOut = errors.New("number opted out")
	// ErrInvalid means an argument was empty or malformed.
	ErrInvalid = errors.New("invalid argument")
)

// Options configures a Book. The zero value of each field is a usable
// default except ReplyDomain, which masked mode needs.
type Options struct {
	// ReplyDomain is the domain of masked reply addresses, e.g.
	// "reply.mms.example.net". Empty disables masked mode.
	ReplyDomain string
	// From is the MMS From mode, FromMasked or FromDirect. Empty means
	// FromMasked when ReplyDomain is set and FromDirect otherwise.
	From string
	// DomainFrom overrides From for individual MMS domains (the domain the
	// numbers were addressed at, Thread.MMSDomain), compared
	// case-insensitively.
	DomainFrom map[string]string
	// MMSDomain is the domain of the Cc addresses of group members
	// ("+15551234567@mms.example.net") when Thread.MMSDomain is empty.
	MMSDomain string
	// TokenTTL is how long a reply address stays valid after the last
	// mail recorded on its thread. 0 means DefaultTokenTTL; negative means
	// forever.
	TokenTTL time.Duration
	// WrongNumber is what happens to a reply from a number outside the
	// conversation: PolicyRefuse (the default) or PolicyQuarantine.
	WrongNumber string
	// Unmapped is what happens to a reply to an unknown or expired
	// address: PolicyRefuse (the default) or PolicyCatchAll.
	Unmapped string
	// CatchAll is the mailbox for PolicyCatchAll.
	CatchAll string
	// OptOutScope is what STOP covers: ScopeSender (the default) or
	// ScopeAll.
	OptOutScope string
	// HelpText, StopText and StartText are the answers to HELP, STOP (and
	// STOPALL) and START. Empty means DefaultHelpText, DefaultStopText (or
	// DefaultStopAllText when the opt-out covers every sender) and
	// DefaultStartText.
	HelpText, StopText, StartText string
	// Now returns the current time; nil means time.Now. A test seam.
	Now func() time.Time
	// Rand is the source of token bits; nil means crypto/rand.Reader. A
	// test seam.
	Rand io.Reader
}

// Book records conversations and opt-outs in a store and answers the
// relay's questions about them. It is safe for concurrent use.
type Book struct {
	st    store.KV
	opts  Options
	locks [lockStripes]sync.Mutex
}

// New returns a Book over st. It applies the defaults of opts and returns
// every problem with them at once.
func New(st store.KV, opts Options) (*Book, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("replies: "+format, args...))
	}
	if st == nil {
		bad("no store")
	}
	opts.ReplyDomain = strings.ToLower(strings.TrimSpace(opts.ReplyDomain))
	if opts.From == "" {
		opts.From = FromDirect
		if opts.ReplyDomain != "" {
			opts.From = FromMasked
		}
	}
	checkFrom := func(what, mode string) {
		switch mode {
		case FromMasked:
			if opts.ReplyDomain == "" {
				bad("%s: %q needs a reply domain", what, mode)
			}
		case FromDirect:
		default:
			bad("%s: %q: use %q or %q", what, mode, FromMasked, FromDirect)
		}
	}
	checkFrom("from", opts.From)
	if len(opts.DomainFrom) > 0 {
		m := make(map[string]string, len(opts.DomainFrom))
		for d, mode := range opts.DomainFrom {
			checkFrom("from for "+d, mode)
			m[strings.ToLower(d)] = mode
		}
		opts.DomainFrom = m
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.WrongNumber == "" {
		opts.WrongNumber = PolicyRefuse
	}
	if opts.WrongNumber != PolicyRefuse && opts.WrongNumber != PolicyQuarantine {
		bad("wrong number: %q: use %q or %q", opts.WrongNumber, PolicyRefuse, PolicyQuarantine)
	}
	if opts.Unmapped == "" {
		opts.Unmapped = PolicyRefuse
	}
	switch opts.Unmapped {
	case PolicyRefuse:
	case PolicyCatchAll:
		if opts.CatchAll == "" {
			bad("unmapped: %q needs a catch-all mailbox", opts.Unmapped)
		}
	default:
		bad("unmapped: %q: use %q or %q", opts.Unmapped, PolicyRefuse, PolicyCatchAll)
	}
	if opts.OptOutScope == "" {
		opts.OptOutScope = ScopeSender
	}
	if opts.OptOutScope != ScopeSender && opts.OptOutScope != ScopeAll {
		bad("opt-out scope: %q: use %q or %q", opts.OptOutScope, ScopeSender, ScopeAll)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Book{st: st, opts: opts}, nil
}

// Thread describes one MMS the relay sends: who wrote it and who receives
// it together.
type Thread struct {
	// Sender is the email address replies go to.
	Sender string
	// Numbers are the E.164 numbers that receive this one MMS: one number,
	// or every visible member of a group MMS. Order and duplicates do not
	// matter.
	Numbers []string
	// MMSDomain is the domain the numbers were addressed at; it picks the
	// From mode (Options.DomainFrom) and forms the Cc addresses of group
	// members. Empty means Options.MMSDomain.
	MMSDomain string
	// MessageID is the email's Message-ID, Subject its subject.
	MessageID, Subject string
	// Time is when the email arrived; it orders Message-IDs so that a
	// retry of an older message does not replace a newer one. Zero means
	// now.
	Time time.Time
}

// Conversation is a recorded thread, as Record and Resolve return it.
type Conversation struct {
	// Token is the random part of the reply address; empty in direct mode.
	Token string `json:"token,omitempty"`
	// From is the MMS From to send with: the reply address in masked mode
	// ("r-<token>@<reply domain>"), the sender in direct mode.
	From string `json:"from"`
	// Sender is the email address replies go to, as first recorded.
	Sender string `json:"sender"`
	// Members are the thread's numbers, sorted.
	Members []string `json:"members"`
	// MMSDomain forms the Cc addresses of the members.
	MMSDomain string `json:"mms_domain,omitempty"`
	// MessageID and Subject are those of the newest email on the thread,
	// for In-Reply-To and "Re: <subject>".
	MessageID   string    `json:"message_id,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	MessageTime time.Time `json:"message_time,omitzero"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Expires is when the reply address stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether the conversation's reply address has expired at
// now.
func (c *Conversation) Expired(now time.Time) bool {
	return !c.Expires.IsZero() && !now.Before(c.Expires)
}

// Member reports whether number is one of the conversation's members.
func (c *Conversation) Member(number string) bool {
	return slices.Contains(c.Members, number)
}

// Cc returns the members other than from as email addresses
// "<number>@<MMSDomain>", for the Cc of a group reply. It returns nil for a
// one-to-one conversation.
func (c *Conversation) Cc(from string) []string {
	var cc []string
	for _, n := range c.Members {
		if n != from {
			cc = append(cc, n+"@"+c.MMSDomain)
		}
	}
	return cc
}

// ReplySubject returns "Re: <Subject>", without doubling an existing "Re:".
func (c *Conversation) ReplySubject() string {
	s := strings.TrimSpace(c.Subject)
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	if s == "" {
		return "Re:"
	}
	return "Re: " + s
}

// convRef is the value of a conversations entry.
type convRef struct {
	Token string `json:"token"`
}

// mode returns the From mode for an MMS domain.
func (b *Book) mode(mmsDomain string) string {
	if m, ok := b.opts.DomainFrom[strings.ToLower(mmsDomain)]; ok {
		return m
	}
	return b.opts.From
}

// Record notes that t.Sender is sending one MMS to t.Numbers and returns
// the conversation, whose From the MMS must carry.
//
// In masked mode it creates the thread's token, or refreshes it: the same
// sender and numbers get the same token for as long as it has not expired,
// and every call pushes the expiry to now + TokenTTL. The thread keeps the
// Message-ID and Subject of the newest email (by t.Time). Concurrent calls
// for one thread, from this Book or another on the same store, return one
// token. In direct mode Record stores nothing and returns a Conversation
// whose From is t.Sender.
func (b *Book) Record(ctx context.Context, t Thread) (Conversation, error) {
	sender := strings.TrimSpace(t.Sender)
	if sender == "" {
		return Conversation{}, fmt.Errorf("replies: record: %w: empty sender", ErrInvalid)
	}
	members, err := normMembers(t.Numbers)
	if err != nil {
		return Conversation{}, fmt.Errorf("replies: record: %w", err)
	}
	domain := t.MMSDomain
	if domain == "" {
		domain = b.opts.MMSDomain
	}
	now := b.opts.Now()
	if b.mode(domain) == FromDirect {
		return Conversation{From: sender, Sender: sender, Members: members, MMSDomain: domain,
			MessageID: t.MessageID, Subject: t.Subject, MessageTime: t.Time, Created: now, Updated: now}, nil
	}
	if domain == "" && len(members) > 1 {
		return Conversation{}, fmt.Errorf("replies: record: %w: a group needs an MMS domain for its Cc addresses", ErrInvalid)
	}
	if t.Time.IsZero() {
		t.Time = now
	}
	key := strings.Join(members, memberSep) + keySep + strings.ToLower(sender)
	mu := b.lock(key)
	mu.Lock()
	defer mu.Unlock()
	for range maxRecordAttempts {
		c, done, err := b.record(ctx, key, sender, members, domain, t, now)
		if err != nil {
			return Conversation{}, fmt.Errorf("replies: record %s: %w", key, err)
		}
		if done {
			return c, nil
		}
	}
	return Conversation{}, fmt.Errorf("replies: record %s: conversation changed %d times while recording", key, maxRecordAttempts)
}

// record makes one attempt of Record. done is false when another Book
// claimed the conversation key first: the caller tries again and finds it.
func (b *Book) record(ctx context.Context, key, sender string, members []string, domain string, t Thread, now time.Time) (c Conversation, done bool, err error) {
	var ref convRef
	err = b.st.GetKV(ctx, convTable, key, &ref)
	switch {
	case err == nil:
		err = b.st.GetKV(ctx, tokenTable, ref.Token, &c)
		if err == nil && !c.Expired(now) {
			if !t.Time.Before(c.MessageTime) {
				c.MessageID, c.Subject, c.MessageTime = t.MessageID, t.Subject, t.Time
			}
			c.MMSDomain, c.Updated, c.Expires = domain, now, b.expires(now)
			if err := b.st.PutKV(ctx, tokenTable, c.Token, c); err != nil {
				return Conversation{}, false, err
			}
			return c, true, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Conversation{}, false, err
		}
		// Expired, or its token record is gone: start afresh. Another
		// Book replacing it at the same moment can win the PutKV below;
		// its token then stands and ours expires unused.
		c, err = b.newConversation(ctx, sender, members, domain, t, now)
		if err != nil {
			return Conversation{}, false, err
		}
		if err := b.st.PutKV(ctx, convTable, key, convRef{Token: c.Token}); err != nil {
			b.st.DeleteKV(context.WithoutCancel(ctx), tokenTable, c.Token)
			return Conversation{}, false, err
		}
		if ref.Token != "" {
			if err := b.st.DeleteKV(ctx, tokenTable, ref.Token); err != nil {
				return Conversation{}, false, err
			}
		}
		return c, true, nil
	case errors.Is(err, store.ErrNotFound):
		c, err = b.newConversation(ctx, sender, members, domain, t, now)
		if err != nil {
			return Conversation{}, false, err
		}
		stored, err := b.st.PutKVIfAbsent(ctx, convTable, key, convRef{Token: c.Token})
		if err != nil || !stored {
			// Lost the race (or failed): release the token.
			if derr := b.st.DeleteKV(context.WithoutCancel(ctx), tokenTable, c.Token); err == nil {
				err = derr
			}
			return Conversation{}, false, err
		}
		return c, true, nil
	default:
		return Conversation{}, false, err
	}
}

// newConversation allocates a fresh token and stores the conversation
// under it.
func (b *Book) newConversation(ctx context.Context, sender string, members []string, domain string, t Thread, now time.Time) (Conversation, error) {
	c := Conversation{Sender: sender, Members: members, MMSDomain: domain,
		MessageID: t.MessageID, Subject: t.Subject, MessageTime: t.Time,
		Created: now, Updated: now, Expires: b.expires(now)}
	for range maxTokenAttempts {
		tok, err := b.newToken()
		if err != nil {
			return Conversation{}, err
		}
		c.Token, c.From = tok, TokenPrefix+tok+"@"+b.opts.ReplyDomain
		stored, err := b.st.PutKVIfAbsent(ctx, tokenTable, tok, c)
		if err != nil {
			return Conversation{}, err
		}
		if stored {
			return c, nil
		}
	}
	return Conversation{}, fmt.Errorf("no unused token after %d attempts: is the random source broken?", maxTokenAttempts)
}

func (b *Book) expires(now time.Time) time.Time {
	if b.opts.TokenTTL < 0 {
		return time.Time{}
	}
	return now.Add(b.opts.TokenTTL)
}

// newToken returns tokenLen characters of base32 holding tokenBytes random
// bytes.
func (b *Book) newToken() (string, error) {
	var buf [tokenBytes]byte
	if _, err := io.ReadFull(b.opts.Rand, buf[:]); err != nil {
		return "", fmt.Errorf("reading random bits: %w", err)
	}
	return tokenEncoding.EncodeToString(buf[:]), nil
}

// lock returns the mutex that serialises Record for key.
func (b *Book) lock(key string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &b.locks[h.Sum32()%lockStripes]
}

// normMembers sorts and de-duplicates numbers and checks that none can
// break a key.
func normMembers(numbers []string) ([]string, error) {
	var m []string
	for _, n := range numbers {
		n = strings.TrimSpace(n)
		if err := checkNumber(n); err != nil {
			return nil, err
		}
		m = append(m, n)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: no numbers", ErrInvalid)
	}
	slices.Sort(m)
	return slices.Compact(m), nil
}

func checkNumber(n string) error {
	if n == "" || strings.ContainsAny(n, keySep+memberSep+"@ ") {
		return fmt.Errorf("%w: number %q", ErrInvalid, n)
	}
	return nil
}

// ParseReplyAddr returns the token of a reply address such as
// "r-7k3m9qz2x4c8h1dw@reply.mms.example.net" or its local part alone, with
// or without angle brackets, in any case. ok is false if it is not one.
func ParseReplyAddr(addr string) (token string, domain string, ok bool) {
	a := strings.TrimSpace(addr)
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	local, domain, _ := strings.Cut(a, "@")
	local = strings.ToLower(local)
	if !strings.HasPrefix(local, TokenPrefix) {
		return "", "", false
	}
	token = local[len(TokenPrefix):]
	if len(token) != tokenLen {
		return "", "", false
	}
	for i := 0; i < len(token); i++ {
		if strings.IndexByte(tokenAlphabet, token[i]) < 0 {
			return "", "", false
		}
	}
	return token, strings.ToLower(domain), true
}

// ReplyError says why Resolve did not map a reply to a conversation, and
// what the configured policy does with it.
type ReplyError struct {
	Addr   string // reply address as given
	From   string // number the reply came from, as given
	Err    error  // ErrUnmapped or ErrWrongNumber
	Reason string // detail for logs: "unknown token", "expired at ..."
	// Action is PolicyRefuse, PolicyCatchAll (deliver to CatchAll) or
	// PolicyQuarantine (keep for the operator).
	Action   string
	CatchAll string // the mailbox, when Action is PolicyCatchAll
}

// Error returns a message such as
// `replies: "r-…@reply.example": reply address unknown or expired: unknown token`.
func (e *ReplyError) Error() string {
	s := fmt.Sprintf("replies: %q: %v", e.Addr, e.Err)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns Err.
func (e *ReplyError) Unwrap() error { return e.Err }

// Status is an SMTP reply: code, enhanced status code and text.
type Status struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// Status returns the SMTP refusal for e: 550 5.1.1 for an unmapped
// address, 550 5.7.1 for a wrong number. The text reveals neither the
// conversation nor its sender.
func (e *ReplyError) Status() Status {
	if errors.Is(e.Err, ErrWrongNumber) {
		return Status{550, [3]int{5, 7, 1}, fmt.Sprintf("This reply address does not take replies from %s", e.From)}
	}
	return Status{550, [3]int{5, 1, 1}, "This reply address is unknown or has expired; write to the sender directly"}
}

// Resolve maps a reply sent to replyAddr by fromNumber (E.164; a
// "/TYPE=PLMN" suffix is ignored) to its conversation.
//
// It returns a *ReplyError wrapping ErrUnmapped when replyAddr is not a
// reply address at Options.ReplyDomain (an address without a domain is
// taken as its local part), names an unknown token, or has expired; its
// Action is Options.Unmapped. It returns the conversation and a
// *ReplyError wrapping ErrWrongNumber when fromNumber is not one of the
// members; its Action is Options.WrongNumber. Any other error is the
// store's: a temporary failure.
func (b *Book) Resolve(ctx context.Context, replyAddr, fromNumber string) (Conversation, error) {
	from := strings.TrimSpace(fromNumber)
	if len(from) > len("/type=plmn") && strings.EqualFold(from[len(from)-len("/type=plmn"):], "/type=plmn") {
		from = from[:len(from)-len("/type=plmn")]
	}
	unmapped := func(reason string) error {
		e := &ReplyError{Addr: replyAddr, From: fromNumber, Err: ErrUnmapped, Reason: reason, Action: b.opts.Unmapped}
		if e.Action == PolicyCatchAll {
			e.CatchAll = b.opts.CatchAll
		}
		return e
	}
	tok, domain, ok := ParseReplyAddr(replyAddr)
	if !ok {
		return Conversation{}, unmapped("not a reply address")
	}
	if domain != "" && domain != b.opts.ReplyDomain {
		return Conversation{}, unmapped("not at the reply domain")
	}
	var c Conversation
	if err := b.st.GetKV(ctx, tokenTable, tok, &c); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Conversation{}, unmapped("unknown token")
		}
		return Conversation{}, fmt.Errorf("replies: resolve %s: %w", tok, err)
	}
	if c.Expired(b.opts.Now()) {
		return Conversation{}, unmapped("expired at " + c.Expires.UTC().Format(time.RFC3339))
	}
	if !c.Member(from) {
		return c, &ReplyError{Addr: replyAddr, From: fromNumber, Err: ErrWrongNumber,
			Reason: "not a member of the conversation", Action: b.opts.WrongNumber}
	}
	return c, nil
}

// Purge removes expired reply tokens and the conversation entries that
// name them, and returns how many tokens it removed. Replies to them were
// already unmapped; Purge only frees space.
func (b *Book) Purge(ctx context.Context) (int, error) {
	now := b.opts.Now()
	n := 0
	// One scan per leading character keeps each result a fraction of the
	// table.
	for i := 0; i < len(tokenAlphabet); i++ {
		entries, err := b.st.ScanKV(ctx, tokenTable, tokenAlphabet[i:i+1], 0)
		if err != nil {
			return n, fmt.Errorf("replies: purge: %w", err)
		}
		for _, e := range entries {
			var c Conversation
			if err := json.Unmarshal(e.Value, &c); err != nil || !c.Expired(now) {
				continue
			}
			key := strings.Join(c.Members, memberSep) + keySep + strings.ToLower(c.Sender)
			mu := b.lock(key)
			mu.Lock()
			err := b.purgeOne(ctx, key, e.Key)
			mu.Unlock()
			if err != nil {
				return n, fmt.Errorf("replies: purge: %w", err)
			}
			n++
		}
	}
	return n, nil
}

func (b *Book) purgeOne(ctx context.Context, key, tok string) error {
	var ref convRef
	err := b.st.GetKV(ctx, convTable, key, &ref)
	switch {
	case err == nil && ref.Token == tok:
		if err := b.st.DeleteKV(ctx, convTable, key); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	return b.st.DeleteKV(ctx, tokenTable, tok)
}
