package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	ds "github.com/sluice-go/sluice/source/durablestreams"

	"github.com/sluice-go/sluice/pipeline"
)

// counter is the pipeline's observer: it counts what progress and the summary show.
type counter struct {
	pipeline.NopObserver
	acked, failed atomic.Int64

	mu  sync.Mutex
	per map[string]int
}

func newCounter() *counter { return &counter{per: map[string]int{}} }

func (c *counter) Acked(e pipeline.AckEvent) {
	c.acked.Add(int64(e.Successful + e.Failed))
	c.failed.Add(int64(e.Failed))
}

func (c *counter) BatchHandled(e pipeline.BatchEvent) {
	c.mu.Lock()
	c.per[e.Info.Batcher]++
	c.mu.Unlock()
}

func (c *counter) batches(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.per[name]
}

// showProgress prints progress every cfg.Progress until the returned function is called: on a
// terminal one line rewritten in place, otherwise a line each time.
func showProgress(out io.Writer, cfg Config, c *counter, prod *ds.Producer[Event], start time.Time) (stop func()) {
	if cfg.Progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	line := func() string {
		n := c.acked.Load()
		el := time.Since(start)
		st := prod.Stats()
		return fmt.Sprintf("%7d/%d acknowledged  %5.1f%%  %8.0f events/s  %d pending  database %d / analytics %d batches",
			n, cfg.N, 100*float64(n)/float64(cfg.N), float64(n)/el.Seconds(), st.Pending, c.batches("database"), c.batches("analytics"))
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				if cfg.Terminal {
					fmt.Fprintf(out, "\r%s\n", line())
				}
				return
			case <-t.C:
				if cfg.Terminal {
					fmt.Fprintf(out, "\r%s", line())
				} else {
					fmt.Fprintln(out, line())
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
