package replies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// OptOut is a recorded opt-out: Number gets no mail from Sender.
type OptOut struct {
	Number string `json:"number"`
	// Sender is the lower-cased sender address, or AllSenders.
	Sender string `json:"sender"`
	// Via is the sender of the conversation the opt-out came through,
	// when that differs from Sender (an opt-out for every sender).
	Via string `json:"via,omitempty"`
	// Keyword is the handset's word ("STOP", "STOPALL"); empty for an
	// opt-out made by the operator.
	Keyword string    `json:"keyword,omitempty"`
	Time    time.Time `json:"time"`
}

func optOutKey(number, sender string) string {
	return number + keySep + sender
}

// normSender lower-cases sender; "" and AllSenders mean every sender.
func normSender(sender string) string {
	s := strings.ToLower(strings.TrimSpace(sender))
	if s == "" {
		return AllSenders
	}
	return s
}

// OptOut records that number takes no more mail from sender. With
// ScopeAll, or when sender is AllSenders or empty, the opt-out covers every
// sender. It returns the opt-out in force; an existing one keeps its time.
func (b *Book) OptOut(ctx context.Context, number, sender string) (OptOut, error) {
	return b.optOut(ctx, number, sender, "", false)
}

func (b *Book) optOut(ctx context.Context, number, sender, keyword string, all bool) (OptOut, error) {
	number = strings.TrimSpace(number)
	if err := checkNumber(number); err != nil {
		return OptOut{}, fmt.Errorf("replies: opt out: %w", err)
	}
	o := OptOut{Number: number, Sender: normSender(sender), Keyword: keyword, Time: b.opts.Now()}
	if all || b.opts.OptOutScope == ScopeAll {
		if o.Sender != AllSenders {
			o.Via = o.Sender
		}
		o.Sender = AllSenders
	}
	key := optOutKey(o.Number, o.Sender)
	stored, err := b.st.PutKVIfAbsent(ctx, optOutTable, key, o)
	if err != nil {
		return OptOut{}, fmt.Errorf("replies: opt out %s: %w", key, err)
	}
	if !stored {
		if err := b.st.GetKV(ctx, optOutTable, key, &o); err != nil {
			return OptOut{}, fmt.Errorf("replies: opt out %s: %w", key, err)
		}
	}
	return o, nil
}

// OptIn ends the opt-outs that keep sender's mail from number: the one for
// sender and the one for every sender. With ScopeAll, or when sender is
// AllSenders or empty, it ends every opt-out of number. Ending none is not
// an error.
func (b *Book) OptIn(ctx context.Context, number, sender string) error {
	number = strings.TrimSpace(number)
	if err := checkNumber(number); err != nil {
		return fmt.Errorf("replies: opt in: %w", err)
	}
	s := normSender(sender)
	var keys []string
	if s == AllSenders || b.opts.OptOutScope == ScopeAll {
		entries, err := b.st.ScanKV(ctx, optOutTable, number+keySep, 0)
		if err != nil {
			return fmt.Errorf("replies: opt in %s: %w", number, err)
		}
		for _, e := range entries {
			keys = append(keys, e.Key)
		}
	} else {
		keys = []string{optOutKey(number, s), optOutKey(number, AllSenders)}
	}
	for _, k := range keys {
		if err := b.st.DeleteKV(ctx, optOutTable, k); err != nil {
			return fmt.Errorf("replies: opt in %s: %w", k, err)
		}
	}
	return nil
}

// FindOptOut returns the opt-out that keeps sender's mail from number, if any:
// one for every sender first, then one for sender. Both scopes' records
// count whatever Options.OptOutScope is now.
func (b *Book) FindOptOut(ctx context.Context, number, sender string) (o OptOut, found bool, err error) {
	number = strings.TrimSpace(number)
	keys := []string{optOutKey(number, AllSenders)}
	if s := normSender(sender); s != AllSenders {
		keys = append(keys, optOutKey(number, s))
	}
	for _, k := range keys {
		err := b.st.GetKV(ctx, optOutTable, k, &o)
		if err == nil {
			return o, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return OptOut{}, false, fmt.Errorf("replies: opt-out lookup %s: %w", k, err)
		}
	}
	return OptOut{}, false, nil
}

// IsOptedOut reports whether number has opted out of mail from sender.
func (b *Book) IsOptedOut(ctx context.Context, number, sender string) (bool, error) {
	_, found, err := b.FindOptOut(ctx, number, sender)
	return found, err
}

// OptedOutError is the error Check returns for a number that opted out.
type OptedOutError struct {
	OptOut OptOut
}

// Error returns a message such as
// `replies: +15551234567 opted out of mail from alice@example.com`.
func (e *OptedOutError) Error() string {
	if e.OptOut.Sender == AllSenders {
		return fmt.Sprintf("replies: %s opted out of all mail", e.OptOut.Number)
	}
	return fmt.Sprintf("replies: %s opted out of mail from %s", e.OptOut.Number, e.OptOut.Sender)
}

// Unwrap returns ErrOptedOut.
func (e *OptedOutError) Unwrap() error { return ErrOptedOut }

// Status returns the RCPT refusal, 550 5.7.1 with a text the sender can
// act on.
func (e *OptedOutError) Status() Status {
	how := "by replying STOP"
	if e.OptOut.Keyword == "" {
		how = "at their request"
	}
	text := fmt.Sprintf("%s has opted out of messages from you %s; mail to this number is refused", e.OptOut.Number, how)
	if e.OptOut.Sender == AllSenders {
		text = fmt.Sprintf("%s has opted out of all messages through this relay %s; mail to this number is refused", e.OptOut.Number, how)
	}
	return Status{550, [3]int{5, 7, 1}, text}
}

// Check returns an *OptedOutError (wrapping ErrOptedOut) if number has
// opted out of mail from sender, nil if not, and a store error otherwise.
// The SMTP layer calls it at RCPT and answers a refusal with its Status.
func (b *Book) Check(ctx context.Context, number, sender string) error {
	o, found, err := b.FindOptOut(ctx, number, sender)
	if err != nil {
		return err
	}
	if found {
		return &OptedOutError{OptOut: o}
	}
	return nil
}

// ListOptOuts returns the opt-outs of number, or of every number when
// number is empty, ordered by number and then sender.
func (b *Book) ListOptOuts(ctx context.Context, number string) ([]OptOut, error) {
	prefix := ""
	if number = strings.TrimSpace(number); number != "" {
		prefix = number + keySep
	}
	entries, err := b.st.ScanKV(ctx, optOutTable, prefix, 0)
	if err != nil {
		return nil, fmt.Errorf("replies: list opt-outs: %w", err)
	}
	out := make([]OptOut, 0, len(entries))
	for _, e := range entries {
		var o OptOut
		if err := json.Unmarshal(e.Value, &o); err != nil {
			return nil, fmt.Errorf("replies: list opt-outs: %s: %w", e.Key, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Apply carries out keyword k sent by number in a conversation with sender
// and returns the text of the confirmation MMS to send back to number:
// STOP opts out (of sender, or of everyone with ScopeAll), STOPALL opts out
// of everyone, START opts back in (OptIn), HELP changes nothing. The relay
// sends the confirmation although the number has just opted out.
func (b *Book) Apply(ctx context.Context, k Keyword, number, sender string) (string, error) {
	switch k {
	case KeywordStop, KeywordStopAll:
		o, err := b.optOut(ctx, number, sender, k.String(), k == KeywordStopAll)
		if err != nil {
			return "", err
		}
		switch {
		case b.opts.StopText != "":
			return b.opts.StopText, nil
		case o.Sender == AllSenders:
			return DefaultStopAllText, nil
		}
		return DefaultStopText, nil
	case KeywordStart:
		if err := b.OptIn(ctx, number, sender); err != nil {
			return "", err
		}
		return textOr(b.opts.StartText, DefaultStartText), nil
	case KeywordHelp:
		return textOr(b.opts.HelpText, DefaultHelpText), nil
	}
	return "", fmt.Errorf("replies: apply: %w: keyword %v", ErrInvalid, k)
}

func textOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
