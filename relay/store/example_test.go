package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// The life of a message: accepted by the SMTP session, claimed by a queue
// worker, attempted with recorded identifiers, and delivered.
func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := store.Open(store.Config{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	// SMTP DATA: answer 250 only after Accept returns nil.
	env := store.Envelope{
		From:       "alice@example.org",
		Recipients: []store.Recipient{{Addr: "+15550001111@mms.example.net"}},
		Kind:       store.KindMMS,
	}
	id, err := s.Queue.Accept(ctx, env, strings.NewReader("Subject: hi\r\n\r\nhello\r\n"))
	if err != nil {
		log.Fatal(err) // errors.Is(err, store.ErrDiskFull): 452 4.3.1, else 451 4.3.0
	}

	// Queue worker.
	jobs, err := s.Queue.Claim(ctx, store.ClaimRequest{Owner: "host-1234", Now: time.Now(), Lease: 5 * time.Minute, Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range jobs {
		for _, ref := range job.Refs() {
			lease := job.Lease(ref.Index)
			a := store.Attempt{Route: "mm4-carrier", TransactionID: "T-" + ref.String(), MessageID: "<" + id + "@relay>"}
			if err := s.Queue.Record(ctx, store.Update{Ref: ref, Op: store.OpAttempt, Lease: lease, Attempt: a}); err != nil {
				log.Fatal(err)
			}
			// ... convert and send; the peer accepts ...
			err := s.Queue.Record(ctx, store.Update{Ref: ref, Op: store.OpDelivered, Lease: lease, PeerID: "peer-42"})
			if errors.Is(err, store.ErrLeaseLost) {
				continue // another instance took it over; its outcome counts
			} else if err != nil {
				log.Fatal(err)
			}
		}
	}
	m, err := s.Queue.Get(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Rcpts[0].Status, m.Rcpts[0].Attempts, m.Rcpts[0].PeerID, m.Done())
	// Output: delivered 1 peer-42 true
}
