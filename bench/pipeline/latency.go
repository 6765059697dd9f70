package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// latencyResult is one live run: the latencies from each append's send time to the call of
// the batch handler that got its event, sorted.
type latencyResult struct {
	sorted []time.Duration
}

func (r latencyResult) p(q float64) time.Duration { return dsload.Percentile(r.sorted, q) }

// runLatency creates an empty JSON stream at streamURL, starts a pipeline following it in
// mode (the producer from the beginning, 4 processors, a batcher of batch size 1 so that no
// batch waits for its timeout), then appends n single events, one POST each, at rate per
// second on a fixed schedule. Each event carries the time its append was sent; the batch
// handler records the time elapsed since. The warm-up event (id -1), appended and handled
// before the measured ones, is not counted. Every event must arrive exactly once.
func runLatency(ctx context.Context, streamURL string, mode dsclient.LiveMode, n int, rate float64) (latencyResult, error) {
	readHTTP, writeHTTP := httpClient(), httpClient()
	defer readHTTP.CloseIdleConnections()
	defer writeHTTP.CloseIdleConnections()
	w := dsclient.NewStream(streamURL, dsclient.WithHTTPClient(writeHTTP))
	if _, err := w.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		return latencyResult{}, err
	}
	p, err := ds.NewProducer(ds.ProducerOptions[dsload.Event]{Stream: dsclient.NewStream(streamURL, dsclient.WithHTTPClient(readHTTP)), Live: mode})
	if err != nil {
		return latencyResult{}, err
	}
	t := newTally(n)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	warm := make(chan struct{})
	all := make(chan struct{})
	pl, err := pipeline.New(pipeline.Options[dsload.Event]{
		Name:     "bench-live",
		Producer: p,
		Processors: []pipeline.ProcessorOptions[dsload.Event]{{Concurrency: 4,
			Handler: pipeline.HandlerFunc[dsload.Event](func(ctx context.Context, m *pipeline.Message[dsload.Event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[dsload.Event]{"sink": {BatchSize: 1, BatchTimeout: time.Second,
			Handler: pipeline.BatchHandlerFunc[dsload.Event](func(ctx context.Context, ms []pipeline.Message[dsload.Event], _ pipeline.BatchInfo) error {
				now := time.Now().UnixNano()
				for i := range ms {
					e := &ms[i].Data
					if e.ID == -1 {
						close(warm)
						continue
					}
					t.add(e)
					mu.Lock()
					lat = append(lat, time.Duration(now-e.Sent))
					if len(lat) == n {
						close(all)
					}
					mu.Unlock()
				}
				return nil
			})}},
		DefaultBatcher:  "sink",
		ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		return latencyResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	stop := func() error { pl.Stop(); return <-done }

	appendOne := func(e dsload.Event) error {
		e.Sent = time.Now().UnixNano()
		_, err := w.AppendJSON(ctx, e, dsclient.AppendOptions{})
		return err
	}
	if err := appendOne(dsload.NewEvent(-1)); err != nil {
		return latencyResult{}, fmt.Errorf("warm-up append: %w (run: %v)", err, stop())
	}
	select {
	case <-warm:
	case <-time.After(10 * time.Second):
		return latencyResult{}, fmt.Errorf("the warm-up event did not arrive within 10s (run: %v)", stop())
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // the append schedule
		}
		if err := appendOne(dsload.NewEvent(int64(i))); err != nil {
			return latencyResult{}, fmt.Errorf("append %d: %w (run: %v)", i, err, stop())
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		return latencyResult{}, fmt.Errorf("%d of %d events arrived within 10s of the last append (run: %v)", t.total(), n, stop())
	}
	if err := stop(); err != nil {
		return latencyResult{}, err
	}
	if err := t.verdict(); err != nil {
		return latencyResult{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	return latencyResult{sorted: lat}, nil
}
