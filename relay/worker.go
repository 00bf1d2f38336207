package relay

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// processor handles the claimed recipients of one kind of message. It
// settles every claimed recipient through j.settle, a group at a time, and
// records what an attempt uses on the wire with j.attempt before making it.
type processor interface {
	process(ctx context.Context, j *job)
}

// worker claims due recipients as leases, hands each job to the processor
// for its kind and records the verdicts: it holds no delivery logic and no
// retry policy of its own.
type worker struct {
	queue      store.Queue
	opts       func() *Options
	owner      string
	processors map[store.Kind]processor
	policy     *policy
	log        *slog.Logger
	metrics    *Metrics
	kick       <-chan struct{}
}

// job is one claimed message on its way through a processor: the claim,
// the one snapshot of the options it uses throughout, and its body, read
// at most once.
type job struct {
	store.Job
	o   *Options
	log *slog.Logger
	w   *worker

	raw     []byte
	rawErr  error
	rawRead bool
}

// body returns the stored body, read from the store on first use.
func (j *job) body(ctx context.Context) ([]byte, error) {
	if !j.rawRead {
		j.raw, j.rawErr = store.ReadBody(ctx, j.w.queue, j.Message.ID, j.o.SMTP.MaxMessageBytes+1<<20)
		j.rawRead = true
	}
	return j.raw, j.rawErr
}

// ref names recipient idx of the job's message.
func (j *job) ref(idx int) store.RcptRef { return store.RcptRef{ID: j.Message.ID, Index: idx} }

// bodyVerdict is the verdict on every recipient when the stored body
// cannot be read: a body over the size limit in force (lowered by a
// reload) is refused for good, anything else is tried again.
func bodyVerdict(err error) verdict {
	if errors.Is(err, store.ErrInvalid) {
		return verdict{outcome: fail, status: "5.3.4", reason: "the message is larger than this relay now takes: " + err.Error()}
	}
	return verdict{outcome: retry, reason: "cannot read the stored message: " + err.Error()}
}

// recording is the context for the store writes that end a job: they are
// made even when the job's own context is done (its deadline passed, or
// the relay is stopping), so that an outcome is recorded while the lease
// still holds rather than repeated later.
func recording(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// attempt records what the attempt on recipients idxs uses on the wire,
// before it is made, in one commit.
func (j *job) attempt(ctx context.Context, a store.Attempt, idxs []int) error {
	ups := make([]store.Update, len(idxs))
	for i, idx := range idxs {
		ups[i] = store.Update{Ref: j.ref(idx), Op: store.OpAttempt, Lease: j.Lease(idx), Attempt: a}
	}
	ctx, cancel := recording(ctx)
	defer cancel()
	return j.w.queue.Record(ctx, ups...)
}

// settle records the verdicts on a group of recipients in one commit,
// under the retry policy.
func (j *job) settle(ctx context.Context, vs ...verdict) {
	if len(vs) > 0 {
		ctx, cancel := recording(ctx)
		defer cancel()
		j.w.policy.settle(ctx, j, vs)
	}
}

// settleAll gives every claimed recipient the same verdict.
func (j *job) settleAll(ctx context.Context, v verdict) {
	vs := make([]verdict, len(j.Rcpts))
	for i, idx := range j.Rcpts {
		vs[i] = v
		vs[i].idx = idx
	}
	j.settle(ctx, vs...)
}

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		o := w.opts()
		jobs, err := w.queue.Claim(ctx, store.ClaimRequest{Owner: w.owner, Now: o.Now(), Lease: o.Queue.Lease, Limit: 1})
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("claiming work", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(jobs) == 0 {
			w.idle(ctx, o)
			continue
		}
		for _, sj := range jobs {
			w.process(ctx, &job{Job: sj, o: o, w: w, log: w.log.With("queue_id", sj.Message.ID)})
		}
	}
}

// idle waits for a kick or the next due time (at most a second, so a
// clock seam or another process's writes are noticed).
func (w *worker) idle(ctx context.Context, o *Options) {
	d := time.Second
	if t, ok, err := w.queue.NextDue(ctx); err == nil && ok {
		if wait := t.Sub(o.Now()); wait < d {
			d = max(wait, 5*time.Millisecond)
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
	case <-w.kick:
	case <-timer.C:
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// process hands j to the processor for its kind and turns a panic into a
// retry of the recipients it had not settled. The work must end well
// within the lease (at 90% of it), or another worker could take the
// recipients while this one still delivers them.
func (w *worker) process(ctx context.Context, j *job) {
	ctx, cancel := context.WithTimeout(ctx, j.o.Queue.Lease*9/10)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			j.log.Error("panic processing a message", "panic", p, "stack", string(debug.Stack()))
			// Recipients already settled are refused as ErrLeaseLost
			// and dropped.
			j.settleAll(ctx, verdict{outcome: retry, reason: "internal error", wait: j.o.Queue.RetryMax})
		}
	}()
	p, ok := w.processors[j.Message.Envelope.Kind]
	if !ok {
		j.settleAll(ctx, verdict{outcome: fail, reason: "unknown message kind " + string(j.Message.Envelope.Kind)})
		return
	}
	p.process(ctx, j)
}

// refused splits the error of Queue.Record: the updates it refused, by
// recipient (the lease was lost, or the transition is not allowed: the
// others applied), and a storage failure (nothing applied).
func refused(err error) (map[store.RcptRef]error, error) {
	if err == nil {
		return nil, nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := map[store.RcptRef]error{}
	for _, e := range errs {
		var ue *store.UpdateError
		if !errors.As(e, &ue) {
			return nil, err
		}
		out[ue.Update.Ref] = e
	}
	return out, nil
}
