package pipelinetest

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/pipeline"
)

// Run is a pipeline running for a test, started by [Start].
type Run struct {
	done   chan struct{}
	err    error
	waited atomic.Bool
}

// Start runs p in a goroutine, with a context carrying the test context's values. When the
// test ends, a cleanup stops p (if it is still running) and waits for Run to return, so that
// no goroutine outlives the test; an error from Run that the test did not collect with
// [Run.Wait] fails the test.
func Start[T any](t testing.TB, p *pipeline.Pipeline[T]) *Run {
	t.Helper()
	r := &Run{done: make(chan struct{})}
	ctx := context.WithoutCancel(t.Context())
	go func() {
		defer close(r.done)
		r.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		p.Stop()
		<-r.done
		if !r.waited.Load() && r.err != nil {
			t.Errorf("pipeline %s: Run: %v", p.Name(), r.err)
		}
	})
	return r
}

// Wait blocks until Run returns and returns its error.
func (r *Run) Wait() error {
	<-r.done
	r.waited.Store(true)
	return r.err
}

// Done returns a channel closed when Run has returned.
func (r *Run) Done() <-chan struct{} { return r.done }
