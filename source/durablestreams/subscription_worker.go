package durablestreams

import (
	"context"
	"errors"

	"github.com/sluice-go/sluice/pipeline"
)

// WorkerStats is a snapshot of a [SubscriptionProducer]'s work, per subscription, for logs
// and for a worker process's summary (it encodes to JSON as it is).
type WorkerStats struct {
	// Worker is the worker's name.
	Worker string
	// Subscriptions are the subscriptions, in the order of SubscriptionOptions.Subscriptions.
	Subscriptions []SubscriptionStats
}

// SubscriptionStats is one subscription's part of [WorkerStats].
type SubscriptionStats struct {
	// ID is the subscription's id.
	ID string
	// Held reports whether the worker holds a claim on it now, and Generation is the
	// generation of the last claim won.
	Held       bool
	Generation int64
	// StreamsLeft is how many streams of the claim held are not yet read to their tail and
	// committed.
	StreamsLeft int
	// Won counts the claims (and webhook wakes) won, and AlreadyClaimed the claim attempts
	// refused because another worker held the lease.
	Won, AlreadyClaimed uint64
	// Done, Released, Fenced, Expired and Failed count the claims ended each way (see
	// [ClaimEndReason]).
	Done, Released, Fenced, Expired, Failed uint64
	// Messages counts the messages handed to the pipeline from the subscription's streams.
	Messages uint64
}

// Stats returns a snapshot of the producer's work. Safe for concurrent use; it does not
// block on a running Produce.
func (p *SubscriptionProducer[T]) Stats() WorkerStats {
	st := WorkerStats{Worker: p.worker, Subscriptions: make([]SubscriptionStats, 0, len(p.subs))}
	for _, s := range p.subs {
		ss := SubscriptionStats{ID: s.id, Generation: s.generation.Load(), Won: s.won.Load(), AlreadyClaimed: s.refused.Load(),
			Done: s.ends[ClaimDone].Load(), Released: s.ends[ClaimReleased].Load(), Fenced: s.ends[ClaimFenced].Load(),
			Expired: s.ends[ClaimExpired].Load(), Failed: s.ends[ClaimEndFailed].Load(), Messages: s.messages.Load()}
		if cr := s.held.Load(); cr != nil {
			ss.Held = true
			cr.cmu.Lock()
			ss.StreamsLeft = cr.left
			cr.cmu.Unlock()
		}
		st.Subscriptions = append(st.Subscriptions, ss)
	}
	return st
}

// RunWorker runs one worker: a pipeline defined by pl whose producer is a
// [SubscriptionProducer] made from opts (pl.Producer must be nil). It blocks until ctx ends
// (then the pipeline drains: reads stop, the messages in flight finish, and the claims are
// acked and released) or the run fails, and returns the producer's final [WorkerStats] and
// Run's error (nil after a drain started by ctx). It is the whole of a worker process's
// main, less the signal handling:
//
//	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
//	defer stop()
//	stats, err := durablestreams.RunWorker(ctx, opts, pl)
func RunWorker[T any](ctx context.Context, opts SubscriptionOptions[T], pl pipeline.Options[T]) (WorkerStats, error) {
	if pl.Producer != nil {
		return WorkerStats{}, errors.New("durablestreams: RunWorker: pipeline.Options.Producer must be nil (the worker's producer goes there)")
	}
	src, err := NewSubscriptionProducer(opts)
	if err != nil {
		return WorkerStats{}, err
	}
	pl.Producer = src
	run, err := pipeline.New(pl)
	if err != nil {
		return src.Stats(), err
	}
	err = run.Run(ctx)
	return src.Stats(), err
}
