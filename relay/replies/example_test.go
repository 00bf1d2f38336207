package replies_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// The way back: the relay records the thread when it sends a group MMS,
// maps a member's reply to the sender with the other members in Cc, and
// turns a STOP into an opt-out that refuses further mail at RCPT.
func Example() {
	dir, err := os.MkdirTemp("", "replies-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.OpenBolt(dir, store.Options{MinFree: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	b, err := replies.New(st, replies.Options{ReplyDomain: "reply.mms.example.net", MMSDomain: "mms.example.net"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	// Sending: the MMS goes out From the thread's reply address.
	sent, err := b.Record(ctx, replies.Thread{
		Sender:    "alice@example.com",
		Numbers:   []string{"+15551234567", "+15557654321"},
		MessageID: "<lunch@example.com>",
		Subject:   "Lunch",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(sent.From, "r-"), strings.HasSuffix(sent.From, "@reply.mms.example.net"))

	// A reply from one member.
	c, err := b.Resolve(ctx, sent.From, "+15557654321/TYPE=PLMN")
	var re *replies.ReplyError
	switch {
	case errors.As(err, &re) && re.Action == replies.PolicyRefuse:
		fmt.Println(re.Status()) // 550 5.1.1 or 550 5.7.1
		return
	case err != nil:
		log.Fatal(err) // the store: 451 4.3.0
	}
	fmt.Println(c.Sender, c.ReplySubject(), c.MessageID, c.Cc("+15557654321"))

	// The other member sends STOP.
	if k, ok := replies.ParseKeyword(" Stop "); ok {
		text, err := b.Apply(ctx, k, "+15551234567", c.Sender)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(text) // sent back to the handset
	}

	// Alice writes again: refused at RCPT.
	if err := b.Check(ctx, "+15551234567", "alice@example.com"); errors.Is(err, replies.ErrOptedOut) {
		var oe *replies.OptedOutError
		errors.As(err, &oe)
		s := oe.Status()
		fmt.Println(s.Code, s.Enhanced)
	}
	// Output:
	// true true
	// alice@example.com Re: Lunch <lunch@example.com> [+15551234567@mms.example.net]
	// You will get no more messages from this sender. Reply START to undo.
	// 550 [5 7 1]
}
