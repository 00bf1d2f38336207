package relay

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// purger applies the retention settings every Queue.PurgeEvery: finished
// messages and old delivery records (store.Admin.Purge) and expired reply
// tokens (replies.Book.Purge).
type purger struct {
	admin   store.Admin // nil: no message purge
	opts    func() *Options
	log     *slog.Logger
	metrics *Metrics
}

func (p *purger) run(ctx context.Context) {
	for {
		o := p.opts()
		p.purge(ctx, o)
		t := time.NewTimer(o.Queue.PurgeEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// purge runs one round; a failure is logged and the next round tries
// again.
func (p *purger) purge(ctx context.Context, o *Options) {
	// Purge runs even when both retentions are zero (keep forever): it
	// also removes expired duplicate-detection keys.
	if p.admin != nil {
		stats, err := p.admin.Purge(ctx, o.Now(), store.PurgeOptions{Messages: o.Queue.KeepBodies, Records: o.Queue.KeepRecords})
		if err != nil && ctx.Err() == nil {
			p.log.Error("purge", "err", err)
		} else if err == nil {
			p.log.Debug("purge", "stats", fmt.Sprintf("%+v", stats))
		}
	}
	if ro := o.Replies; ro != nil && ro.Book != nil {
		n, err := ro.Book.Purge(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("purging expired reply tokens", "err", err)
		}
		if n > 0 {
			p.metrics.Add("mmsrelay_reply_tokens_purged_total", float64(n))
			p.log.Debug("purged expired reply tokens", "count", n)
		}
	}
}
