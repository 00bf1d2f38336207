package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
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
	s, err := store.Open(dir, store.Options{})
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
	id, err := s.Accept(ctx, env, []byte("Subject: hi\r\n\r\nhello\r\n"))
	if err != nil {
		log.Fatal(err) // errors.Is(err, store.ErrDiskFull): 452 4.3.1, else 451 4.3.0
	}

	// Queue worker.
	jobs, err := s.Claim(ctx, time.Now(), 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, job := range jobs {
		for _, ref := range job.Refs() {
			a := store.Attempt{Route: "mm4-carrier", TransactionID: "T-" + ref.String(), MessageID: "<" + id + "@relay>"}
			if err := s.RecordAttempt(ctx, ref, a); err != nil {
				log.Fatal(err)
			}
			// ... convert and send; the peer accepts ...
			if err := s.MarkDelivered(ctx, ref, "peer-42"); err != nil {
				log.Fatal(err)
			}
		}
	}
	m, err := s.Get(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Rcpts[0].Status, m.Rcpts[0].Attempts, m.Rcpts[0].PeerID, m.Done())
	// Output: delivered 1 peer-42 true
}
