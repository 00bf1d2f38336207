package imappoll_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/imappoll"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// The relay polls the carrier gateway's reply mailbox and queues each reply
// through its own handler.
func ExampleNew() {
	st, err := store.OpenBolt("/var/lib/mmsrelay", store.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	p, err := imappoll.New(imappoll.Options{
		Mailboxes: []imappoll.Mailbox{{
			Name:      "carrier-replies",
			Addr:      "imap.example.net:993",
			TLS:       imappoll.TLSImplicit,
			Username:  "replies",
			Password:  os.Getenv("IMAP_PASSWORD"),
			Processed: "Processed",
			Interval:  time.Minute,
		}},
		Handler: func(ctx context.Context, raw []byte) error {
			// Parse the MM3 email and queue the outgoing reply durably;
			// return nil only once it is queued.
			return nil
		},
		State:  st,
		Logger: slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p.Run(ctx) // returns when ctx is done
}
