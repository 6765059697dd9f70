// Command quickstart runs a Sluice pipeline on sample events held in memory, with nothing to
// install or configure:
//
//	go run ./examples/quickstart [-n 100000]
//
// A producer makes JSON events (purchases and page views of a few hundred users) in chunks, as
// a stream reader would fetch them, and tracks each chunk with an [ack.Tracker]. A pool of
// processors decodes each event and routes it: purchases to the "database" batcher (batches of
// 500 or 200 ms, inserted into an in-memory table), page views to the "analytics" batcher
// (keyed by page, counted per page). A few events are malformed on purpose: they fail, a
// failure handler counts them, and they still count as done. When the input ends the pipeline
// drains, and the program prints a summary, with the committed offset: the offset after the
// last chunk whose every event was acknowledged.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// Event is a message's data: the raw JSON as produced, and its fields once a processor has
// decoded it.
type Event struct {
	Raw    []byte  `json:"-"`
	ID     int64   `json:"id"`
	User   string  `json:"user"`
	Type   string  `json:"type"`
	Page   string  `json:"page,omitempty"`
	Amount float64 `json:"amount,omitempty"`
}

func main() {
	n := flag.Int("n", 100_000, "how many events to produce")
	flag.Parse()
	if err := run(context.Background(), *n); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, n int) error {
	tracker := ack.NewTracker(0, ack.TrackerOptions{})
	src := &source{n: n, tracker: tracker}
	table := &table{rows: make(map[int64]Event, n)}
	pages := &pageCounts{counts: map[string]int{}}
	stats := &stats{batches: map[string]int{}, triggers: map[pipeline.Trigger]int{}}

	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     "quickstart",
		Producer: src,
		Processors: []pipeline.ProcessorOptions[Event]{{
			Name:    "decode",
			Handler: pipeline.HandlerFunc[Event](decodeAndRoute),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"database":  {BatchSize: 500, BatchTimeout: 200 * time.Millisecond, Concurrency: 2, Handler: table},
			"analytics": {BatchSize: 200, BatchTimeout: 200 * time.Millisecond, Handler: pages},
		},
		Failure: pipeline.FailureOptions[Event]{
			Handler: pipeline.FailureHandlerFunc[Event](func(_ context.Context, msgs []pipeline.Message[Event]) error {
				stats.failed.Add(int64(len(msgs)))
				return nil // handled: the messages count as done
			}),
		},
		Observer: stats,
	})
	if err != nil {
		return err
	}

	fmt.Printf("quickstart: %d events through 1 processor pool and 2 batchers (database, analytics)\n", n)
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)

	fmt.Printf("messages:          %d produced, %d acknowledged (%d failed)\n", stats.produced.Load(), stats.acked.Load(), stats.failed.Load())
	for _, name := range slices.Sorted(maps.Keys(stats.batches)) {
		fmt.Printf("batcher %-10s %d batches\n", name+":", stats.batches[name])
	}
	fmt.Printf("batch triggers:    %d size, %d timeout, %d flush\n",
		stats.triggers[pipeline.TriggerSize], stats.triggers[pipeline.TriggerTimeout], stats.triggers[pipeline.TriggerFlush])
	fmt.Printf("database table:    %d rows, %.2f total\n", len(table.rows), table.total)
	top := pages.top()
	fmt.Printf("analytics:         %d pages viewed; most viewed %s (%d views)\n", len(pages.counts), top, pages.counts[top])
	fmt.Printf("committed offset:  %d of %d chunks\n", tracker.Committed(), src.chunks.Load())
	fmt.Printf("elapsed:           %v (%.0f events/s)\n", elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	if got := stats.acked.Load(); got != int64(n) {
		return fmt.Errorf("acknowledged %d of %d events", got, n)
	}
	return nil
}

// source produces n sample events on demand. Each Produce call is one chunk, tracked by the
// offset tracker: chunk k ends at offset k+1. Produce is called from one goroutine at a time
// (the default producer concurrency).
type source struct {
	n       int
	next    int
	tracker *ack.Tracker[int]
	chunks  atomic.Int64
}

var pageNames = []string{"/", "/pricing", "/docs", "/blog", "/signup", "/checkout"}

func (s *source) Produce(ctx context.Context, msgs []pipeline.Message[Event]) (int, error) {
	k := min(len(msgs), s.n-s.next)
	if k == 0 {
		return 0, pipeline.ErrEndOfInput
	}
	chunk, err := s.tracker.Track(ctx, k, int(s.chunks.Load())+1)
	if err != nil {
		return 0, err
	}
	s.chunks.Add(1)
	for i := range k {
		id := s.next + i
		msgs[i].Data = Event{Raw: sampleJSON(id)}
		msgs[i].SetAcknowledger(s.tracker, ack.Ref{Ptr: chunk, N: uint64(i)})
		msgs[i].Metadata.Index = i
	}
	s.next += k
	if s.next == s.n {
		return k, pipeline.ErrEndOfInput
	}
	return k, nil
}

// sampleJSON returns event id as JSON: one purchase in five, the rest page views, and one
// malformed event in 10,000.
func sampleJSON(id int) []byte {
	b := make([]byte, 0, 96)
	if id%10_000 == 9_999 {
		return append(b, `{"id":`...)
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, `,"user":"u`...)
	b = strconv.AppendInt(b, int64(id*7919%300), 10)
	if id%5 == 0 {
		b = append(b, `","type":"purchase","amount":`...)
		b = strconv.AppendFloat(b, float64(id%100)+0.5, 'f', 2, 64)
		return append(b, '}')
	}
	b = append(b, `","type":"page_view","page":"`...)
	b = append(b, pageNames[id*31%len(pageNames)]...)
	return append(b, `"}`...)
}

// decodeAndRoute decodes an event and sends it to its batcher.
func decodeAndRoute(_ context.Context, m *pipeline.Message[Event]) error {
	if err := json.Unmarshal(m.Data.Raw, &m.Data); err != nil {
		return fmt.Errorf("event %d of its chunk: %w", m.Metadata.Index, err)
	}
	switch m.Data.Type {
	case "purchase":
		m.SetBatcher("database")
	case "page_view":
		m.SetBatcher("analytics")
		m.SetBatchKey(m.Data.Page)
	default:
		return errors.New("unknown event type " + strconv.Quote(m.Data.Type))
	}
	return nil
}

// table stands in for a database table, written one batch at a time.
type table struct {
	mu    sync.Mutex
	rows  map[int64]Event
	total float64
}

func (t *table) HandleBatch(_ context.Context, batch []pipeline.Message[Event], _ pipeline.BatchInfo) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		e := batch[i].Data
		if _, dup := t.rows[e.ID]; !dup {
			e.Raw = nil
			t.rows[e.ID] = e
			t.total += e.Amount
		}
	}
	return nil
}

// pageCounts aggregates page views per page; each batch holds the views of one page.
type pageCounts struct {
	mu     sync.Mutex
	counts map[string]int
}

func (p *pageCounts) HandleBatch(_ context.Context, batch []pipeline.Message[Event], info pipeline.BatchInfo) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[info.Key] += len(batch)
	return nil
}

func (p *pageCounts) top() string {
	best := ""
	for _, page := range slices.Sorted(maps.Keys(p.counts)) {
		if best == "" || p.counts[page] > p.counts[best] {
			best = page
		}
	}
	return best
}

// stats is the pipeline's observer: it counts what the summary prints.
type stats struct {
	pipeline.NopObserver
	produced, acked, failed atomic.Int64

	mu       sync.Mutex
	batches  map[string]int
	triggers map[pipeline.Trigger]int
}

func (s *stats) Produced(e pipeline.ProducedEvent) { s.produced.Add(int64(e.Messages)) }

func (s *stats) Acked(e pipeline.AckEvent) { s.acked.Add(int64(e.Successful + e.Failed)) }

func (s *stats) BatchHandled(e pipeline.BatchEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches[e.Info.Batcher]++
	s.triggers[e.Info.Trigger]++
}

var _ pipeline.Observer = (*stats)(nil)
