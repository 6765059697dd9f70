package pipeline

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// Pipeline is a validated pipeline definition, ready to run once. Create it with [New], run it
// with [Pipeline.Run], stop it with [Pipeline.Stop] or by cancelling Run's context. Its
// methods are safe for concurrent use.
type Pipeline[T any] struct {
	opts     Options[T] // resolved: every default filled in
	limiter  rateLimiter
	ran      atomic.Bool
	stopOnce sync.Once
	stop     chan struct{}
}

// New validates opts and returns a pipeline ready to [Pipeline.Run]. It starts nothing. When
// opts are invalid it returns an [*OptionsError] listing every problem by field path.
func New[T any](opts Options[T]) (*Pipeline[T], error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	p := &Pipeline[T]{opts: o, stop: make(chan struct{})}
	p.limiter.init(o.RateLimit)
	return p, nil
}

// Name returns the pipeline's name.
func (p *Pipeline[T]) Name() string { return p.opts.Name }

// MaxInFlight returns the bound on messages fetched and not yet acknowledged: the configured
// [Options.MaxInFlight] or its computed default.
func (p *Pipeline[T]) MaxInFlight() int { return p.opts.MaxInFlight }

// Run starts the pipeline's goroutines and blocks until the run is over: until ctx ends,
// [Pipeline.Stop] is called, the producer reports [ErrEndOfInput] or fails, or a failure
// halts the pipeline. Then it drains (see the package documentation), bounded by
// [Options.ShutdownTimeout], and returns once every goroutine it started has ended.
//
// Run returns nil after a clean drain, whatever started it (a cancelled ctx included). It
// returns the producer's error (wrapped) when the producer failed, a [*HaltError] when the
// pipeline halted, a [*ShutdownTimeoutError] when draining took too long, and the producer's
// Close error; several of these are joined. Handlers run with a context that keeps ctx's
// values but not its cancellation: they are cancelled only at the shutdown timeout.
//
// A Pipeline runs once: a second call returns [ErrRunning].
func (p *Pipeline[T]) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	r := newRun(p, ctx)
	r.start()
	select {
	case <-ctx.Done():
	case <-p.stop:
	case <-r.drainReq:
	}
	return r.drain(ctx)
}

// Stop asks the pipeline to drain and stop; Run returns when the drain is over. Stop does not
// block and may be called any number of times, before or during Run.
func (p *Pipeline[T]) Stop() {
	p.stopOnce.Do(func() { close(p.stop) })
}

// SetRateLimit replaces the producer's rate limit, effective at once, even while running (a
// producer waiting for the next interval is woken to apply the new limit). The zero
// RateLimit removes the limit. An invalid limit is reported as an [*OptionsError] and
// ignored.
func (p *Pipeline[T]) SetRateLimit(l RateLimit) error {
	if ps := l.problems("RateLimit"); len(ps) > 0 {
		return optcheck.Of("pipeline", nil, ps)
	}
	p.limiter.set(l.withDefaults())
	return nil
}

// RateLimit returns the producer's current rate limit.
func (p *Pipeline[T]) RateLimit() RateLimit { return p.limiter.get() }
