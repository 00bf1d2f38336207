package replies

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseKeyword(t *testing.T) {
	cases := []struct {
		text string
		want Keyword
		ok   bool
	}{
		{"STOP", KeywordStop, true},
		{"stop", KeywordStop, true},
		{"  Stop\r\n", KeywordStop, true},
		{"Stop.", KeywordStop, true},
		{"STOP!!", KeywordStop, true},
		{"\u200bstop\ufeff", KeywordStop, true},
		{"S t o p", KeywordStop, true},
		{"unsubscribe", KeywordStop, true},
		{"Cancel", KeywordStop, true},
		{"END", KeywordStop, true},
		{"quit", KeywordStop, true},
		{"STOPALL", KeywordStopAll, true},
		{"Stop all", KeywordStopAll, true},
		{"start", KeywordStart, true},
		{"UNSTOP", KeywordStart, true},
		{"help", KeywordHelp, true},
		{"Info?", 0, false},
		{"INFO", KeywordHelp, true},
		{"", 0, false},
		{"   ", 0, false},
		{"please stop by", 0, false},
		{"STOP it", 0, false},
		{"stop?", 0, false},
		{"STOPP", 0, false},
		{"stopping", 0, false},
		{"don't stop", 0, false},
		{"STOP\nsent from my phone", 0, false},
		{"yes", 0, false},
		{"help me with the lunch order", 0, false},
		{strings.Repeat(" ", 100) + "STOP", 0, false},
	}
	for _, tc := range cases {
		got, ok := ParseKeyword(tc.text)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseKeyword(%q) = %v, %v; want %v, %v", tc.text, got, ok, tc.want, tc.ok)
		}
	}
	if s := KeywordStopAll.String(); s != "STOPALL" {
		t.Errorf("KeywordStopAll.String() = %q, want STOPALL", s)
	}
	if s := Keyword(99).String(); s != "Keyword(99)" {
		t.Errorf("Keyword(99).String() = %q", s)
	}
}

func isOptedOut(t *testing.T, b *Book, number, sender string) bool {
	t.Helper()
	out, err := b.IsOptedOut(context.Background(), number, sender)
	tcheck(t, err, "IsOptedOut")
	return out
}

func apply(t *testing.T, b *Book, k Keyword, number, sender string) string {
	t.Helper()
	text, err := b.Apply(context.Background(), k, number, sender)
	tcheck(t, err, "Apply "+k.String())
	return text
}

func TestOptOutScopeSender(t *testing.T) {
	b, clk, _ := newBook(t, nil)
	ctx := context.Background()
	if text := apply(t, b, KeywordStop, numA, alice); text != DefaultStopText {
		t.Errorf("Apply(STOP) = %q, want %q", text, DefaultStopText)
	}
	if !isOptedOut(t, b, numA, "ALICE@example.com") {
		t.Errorf("IsOptedOut(%s, alice) after STOP = false, want true", numA)
	}
	if isOptedOut(t, b, numA, bob) || isOptedOut(t, b, numB, alice) {
		t.Errorf("STOP to alice's thread opted out bob or another number")
	}

	err := b.Check(ctx, numA, alice)
	var oe *OptedOutError
	if !errors.Is(err, ErrOptedOut) || !errors.As(err, &oe) {
		t.Fatalf("Check(opted out) = %v, want ErrOptedOut", err)
	}
	st := oe.Status()
	if st.Code != 550 || st.Enhanced != [3]int{5, 7, 1} || !strings.Contains(st.Text, numA) || !strings.Contains(st.Text, "STOP") {
		t.Errorf("Status() = %+v, want 550 5.7.1 naming the number and STOP", st)
	}
	if err := b.Check(ctx, numA, bob); err != nil {
		t.Errorf("Check(not opted out) = %v, want nil", err)
	}

	// A repeated STOP keeps the first time.
	first := clk.Now()
	clk.Add(time.Hour)
	apply(t, b, KeywordStop, numA, alice)
	list, err := b.ListOptOuts(ctx, "")
	tcheck(t, err, "ListOptOuts")
	if len(list) != 1 || list[0].Number != numA || list[0].Sender != alice || list[0].Keyword != "STOP" || !list[0].Time.Equal(first) {
		t.Errorf("ListOptOuts() = %+v, want one STOP of %s for %s at %v", list, numA, alice, first)
	}

	// STOPALL covers every sender even in sender scope.
	if text := apply(t, b, KeywordStopAll, numB, alice); text != DefaultStopAllText {
		t.Errorf("Apply(STOPALL) = %q, want %q", text, DefaultStopAllText)
	}
	if !isOptedOut(t, b, numB, bob) {
		t.Errorf("IsOptedOut(%s, bob) after STOPALL = false, want true", numB)
	}
	err = b.Check(ctx, numB, bob)
	if !errors.As(err, &oe) || !strings.Contains(oe.Status().Text, "all messages") {
		t.Errorf("Check after STOPALL = %v, want an all-senders refusal", err)
	}

	// START ends the sender's opt-out and the all-senders one.
	if text := apply(t, b, KeywordStart, numA, alice); text != DefaultStartText {
		t.Errorf("Apply(START) = %q, want %q", text, DefaultStartText)
	}
	if isOptedOut(t, b, numA, alice) {
		t.Errorf("IsOptedOut(%s, alice) after START = true, want false", numA)
	}
	apply(t, b, KeywordStart, numB, bob)
	if isOptedOut(t, b, numB, alice) {
		t.Errorf("IsOptedOut(%s) after STOPALL, START = true, want false", numB)
	}
	if list, _ := b.ListOptOuts(ctx, ""); len(list) != 0 {
		t.Errorf("ListOptOuts() after START = %+v, want none", list)
	}
}

func TestOptOutScopeAll(t *testing.T) {
	b, _, _ := newBook(t, func(o *Options) { o.OptOutScope = ScopeAll })
	ctx := context.Background()
	if text := apply(t, b, KeywordStop, numA, alice); text != DefaultStopAllText {
		t.Errorf("Apply(STOP) in scope all = %q, want %q", text, DefaultStopAllText)
	}
	for _, s := range []string{alice, bob, "carol@example.net"} {
		if !isOptedOut(t, b, numA, s) {
			t.Errorf("IsOptedOut(%s, %s) after STOP in scope all = false, want true", numA, s)
		}
	}
	list, err := b.ListOptOuts(ctx, numA)
	tcheck(t, err, "ListOptOuts")
	if len(list) != 1 || list[0].Sender != AllSenders || list[0].Via != alice {
		t.Errorf("ListOptOuts(%s) = %+v, want one for every sender via %s", numA, list, alice)
	}
	// START through any thread re-enables the number for everyone.
	apply(t, b, KeywordStart, numA, bob)
	if isOptedOut(t, b, numA, alice) {
		t.Errorf("IsOptedOut after START in scope all = true, want false")
	}
}

func TestOptOutOperator(t *testing.T) {
	b, _, _ := newBook(t, nil)
	ctx := context.Background()
	_, err := b.OptOut(ctx, numA, alice)
	tcheck(t, err, "OptOut")
	_, err = b.OptOut(ctx, numA, bob)
	tcheck(t, err, "OptOut")
	_, err = b.OptOut(ctx, numB, "")
	tcheck(t, err, "OptOut")
	_, err = b.OptOut(ctx, numC, bob)
	tcheck(t, err, "OptOut")

	list, err := b.ListOptOuts(ctx, "")
	tcheck(t, err, "ListOptOuts")
	var got []string
	for _, o := range list {
		got = append(got, o.Number+" "+o.Sender)
	}
	want := []string{numA + " " + alice, numA + " " + bob, numB + " *", numC + " " + bob}
	if strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("ListOptOuts() = %v, want %v", got, want)
	}
	err = b.Check(ctx, numA, alice)
	var oe *OptedOutError
	if !errors.As(err, &oe) || !strings.Contains(oe.Status().Text, "at their request") {
		t.Errorf("Check of an operator opt-out = %v, want one made at the number's request", err)
	}

	// OptIn for every sender ends all of a number's opt-outs.
	tcheck(t, b.OptIn(ctx, numA, AllSenders), "OptIn")
	if isOptedOut(t, b, numA, alice) || isOptedOut(t, b, numA, bob) {
		t.Errorf("IsOptedOut after OptIn(all) = true, want false")
	}
	if !isOptedOut(t, b, numC, bob) {
		t.Errorf("OptIn(%s) ended the opt-out of %s", numA, numC)
	}
	// A number key cannot reach another number's entries.
	if list, _ := b.ListOptOuts(ctx, "+1555"); len(list) != 0 {
		t.Errorf("ListOptOuts(prefix of a number) = %+v, want none", list)
	}
	if _, err := b.OptOut(ctx, "", alice); !errors.Is(err, ErrInvalid) {
		t.Errorf("OptOut(empty number) = %v, want ErrInvalid", err)
	}
}

func TestApplyTexts(t *testing.T) {
	b, _, _ := newBook(t, func(o *Options) {
		o.HelpText, o.StopText, o.StartText = "help text", "stop text", "start text"
	})
	for _, tc := range []struct {
		k    Keyword
		want string
	}{{KeywordHelp, "help text"}, {KeywordStop, "stop text"}, {KeywordStopAll, "stop text"}, {KeywordStart, "start text"}} {
		if got := apply(t, b, tc.k, numA, alice); got != tc.want {
			t.Errorf("Apply(%v) = %q, want %q", tc.k, got, tc.want)
		}
	}
	if isOptedOut(t, b, numA, alice) {
		t.Errorf("HELP or the last START left an opt-out")
	}
	if _, err := b.Apply(context.Background(), Keyword(0), numA, alice); !errors.Is(err, ErrInvalid) {
		t.Errorf("Apply(Keyword(0)) = %v, want ErrInvalid", err)
	}
	d, _, _ := newBook(t, nil)
	if got := apply(t, d, KeywordHelp, numA, alice); got != DefaultHelpText || len(got) > 160 {
		t.Errorf("Apply(HELP) = %q, want the default of at most 160 characters", got)
	}
}

func FuzzParseKeyword(f *testing.F) {
	for _, s := range []string{"STOP", " stop all! ", "please stop by", "\u200bINFO.", "unsubscribe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		k, ok := ParseKeyword(text)
		if !ok {
			return
		}
		if k2, ok2 := ParseKeyword(k.String()); !ok2 || k2 != k {
			t.Fatalf("ParseKeyword(%q) = %v, but ParseKeyword(%q) = %v, %v", text, k, k.String(), k2, ok2)
		}
	})
}
