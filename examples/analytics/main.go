package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/dssink"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Config is what the flags set.
type Config struct {
	URL      string        // base URL of a server's streams; empty: the in-process server
	Duration time.Duration // how long the generator appends
	Rate     int           // events per second
	Window   time.Duration // tumbling window length
	Live     dsclient.LiveMode
	Metrics  string // address of /metrics; empty: none
}

// Event is one generated event.
type Event struct {
	ID      int64   `json:"id"`
	Type    string  `json:"type"`
	User    string  `json:"user"`
	Latency float64 `json:"latency_ms"`
	TS      int64   `json:"ts"` // event time, Unix milliseconds
}

// Window is one emitted result: the aggregates of one key over one window.
type Window struct {
	Key   string  `json:"key"`
	Start int64   `json:"start"` // Unix milliseconds, inclusive
	End   int64   `json:"end"`   // exclusive
	Count int     `json:"count"`
	Sum   float64 `json:"sum"`
	P95   float64 `json:"p95"`
}

func main() {
	cfg := Config{}
	live := "sse"
	flag.StringVar(&cfg.URL, "url", "", "base URL of a Durable Streams server's streams, such as http://127.0.0.1:4437/v1/stream/ (default: the in-process server)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long the generator appends events")
	flag.IntVar(&cfg.Rate, "rate", 2000, "events per second")
	flag.DurationVar(&cfg.Window, "window", time.Second, "tumbling window length")
	flag.StringVar(&live, "live", live, "live mode: sse or long-poll")
	flag.StringVar(&cfg.Metrics, "metrics", "127.0.0.1:9464", "loopback address serving /metrics (empty: none)")
	flag.Parse()
	switch live {
	case "sse":
		cfg.Live = dsclient.LiveSSE
	case "long-poll":
		cfg.Live = dsclient.LiveLongPoll
	default:
		log.Fatalf("-live %q: want sse or long-poll", live)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Result is what a run did.
type Result struct {
	Stream, Output string
	Generated      []Event
	Windows        []Window
	MetricsAddr    string
}

func run(ctx context.Context, cfg Config, out io.Writer) (Result, error) {
	var res Result
	if cfg.Rate <= 0 || cfg.Window <= 0 || cfg.Duration <= 0 {
		return res, fmt.Errorf("-rate, -window and -duration must be > 0, got %d, %v, %v", cfg.Rate, cfg.Window, cfg.Duration)
	}
	base := cfg.URL
	if base == "" {
		srv, err := dstest.NewServer(dstest.Options{})
		if err != nil {
			return res, err
		}
		defer srv.Close()
		base = srv.StreamURL("")
	}
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "analytics"})
	if err != nil {
		return res, err
	}
	name := fmt.Sprintf("analytics-%d", time.Now().UnixNano())
	res.Stream = strings.TrimSuffix(base, "/") + "/" + name
	res.Output = res.Stream + "-windows"
	in := dsclient.NewStream(res.Stream, dsclient.WithContentType("application/json"), dsclient.WithObserver(m))
	outS := dsclient.NewStream(res.Output, dsclient.WithContentType("application/json"), dsclient.WithObserver(m))
	for _, s := range []*dsclient.Stream{in, outS} {
		if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
			return res, fmt.Errorf("create %s: %w", s.URL(), err)
		}
	}

	// A window is appended to the output stream with the event that closes it, through
	// sink/dssink: a batch delivered again after a crash appends nothing twice.
	win := newWindower(cfg.Window, func(w Window) {
		fmt.Fprintf(out, "window %-12s [%s, %s)  count %5d  sum %10.1f  p95 %6.1f ms\n", w.Key,
			time.UnixMilli(w.Start).Format("15:04:05.000"), time.UnixMilli(w.End).Format("15:04:05.000"), w.Count, w.Sum, w.P95)
	})
	sink, err := dssink.New(dssink.Options[Event]{Stream: outS, ID: "analytics-windows", Value: win.closedBy})
	if err != nil {
		return res, err
	}
	win.sink = sink
	prod, err := ds.NewProducer(ds.ProducerOptions[Event]{Stream: in, Name: "analytics", Live: cfg.Live, Observer: m})
	if err != nil {
		return res, err
	}
	m.WatchProducer(prod)
	// /metrics is served once everything it reports is registered.
	if cfg.Metrics != "" {
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			return res, fmt.Errorf("-metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler(reg))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		res.MetricsAddr = ln.Addr().String()
		fmt.Fprintf(out, "metrics: http://%s/metrics\n", res.MetricsAddr)
	}
	p, err := pipeline.New(pipeline.Options[Event]{
		Name:     "analytics",
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[Event]{{
			Name:        "key",
			Concurrency: 2,
			PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[Event]) string { return m.Data.Type }), // a key stays on one goroutine
			Handler: pipeline.HandlerFunc[Event](func(_ context.Context, m *pipeline.Message[Event]) error {
				if m.Data.TS <= 0 {
					return pipeline.Permanent(fmt.Errorf("event %d has no timestamp", m.Data.ID))
				}
				m.SetBatchKey(m.Data.Type)
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"windows": {BatchSize: 500, BatchTimeout: cfg.Window / 4, Concurrency: 2, Ordered: true, Handler: win},
		},
		DefaultBatcher: "windows",
		Observer:       m,
	})
	if err != nil {
		return res, err
	}

	// The generator appends for cfg.Duration (or until ctx ends), then closes the stream,
	// which ends the pipeline's run.
	genDone := make(chan error, 1)
	go func() { genDone <- generate(ctx, in, cfg, &res.Generated) }()
	fmt.Fprintf(out, "reading %s live (%s), windows of %v, results to %s\n", res.Stream, cfg.Live, cfg.Window, res.Output)
	runErr := p.Run(context.WithoutCancel(ctx)) // the close of the stream ends it, also on Ctrl-C
	genErr := <-genDone
	if err := errors.Join(runErr, genErr); err != nil {
		return res, err
	}
	if err := win.flush(context.WithoutCancel(ctx), outS); err != nil { // the windows still open at the end of the stream
		return res, err
	}
	res.Windows, _, err = dsclient.ReadJSON[Window](context.WithoutCancel(ctx), outS, dsclient.ReadOptions{})
	if err != nil {
		return res, err
	}
	total := 0
	for _, w := range res.Windows {
		total += w.Count
	}
	fmt.Fprintf(out, "generated %d events; %d windows appended to the output stream, counting %d events\n", len(res.Generated), len(res.Windows), total)
	return res, nil
}

var eventTypes = []string{"page_view", "add_to_cart", "purchase"}

// generate appends events at cfg.Rate through an idempotent Writer until cfg.Duration has
// passed or ctx ends, records them in *gen, then closes the stream.
func generate(ctx context.Context, s *dsclient.Stream, cfg Config, gen *[]Event) error {
	w, err := dsclient.NewWriter(s, dsclient.DefaultWriterOptions("analytics-generator"))
	if err != nil {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	end := time.After(cfg.Duration)
	start := time.Now()
	var id int64
	var werr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(cfg.Rate))
			for ; id < due; id++ {
				e := Event{ID: id, Type: eventTypes[id%3], User: fmt.Sprintf("u%d", id*7919%300),
					Latency: float64(id%100) + 1, TS: now.UnixMilli()}
				if werr = w.AppendJSON(ctx, e); werr != nil {
					break loop
				}
				*gen = append(*gen, e)
			}
		}
	}
	cctx := context.WithoutCancel(ctx)
	if _, err := w.CloseStream(cctx, nil); err != nil && werr == nil {
		werr = err
	}
	if err := w.Close(cctx); err != nil && werr == nil && !errors.Is(err, dsclient.ErrWriterClosed) {
		werr = err
	}
	return werr
}

// windower is the batch handler: it folds each key's events into tumbling windows of event
// time; an event at or after a window's end closes it, and the window is appended to the
// output stream with that event, through the sink. The batcher is ordered and the
// processors partitioned by key, so each key's events arrive in stream order.
//
// The windows live in memory: after a crash the run resumes at the committed position, and
// the windows open at the crash are recomputed from the events after it only. What the sink
// guarantees is that no window is appended twice when a batch is delivered again.
type windower struct {
	size time.Duration
	show func(Window)
	sink *dssink.Sink[Event]

	mu     sync.Mutex
	keys   map[string]*keyWindows
	folded map[string]int64      // per key, the position of the last event folded in
	closes map[int64]dssink.Many // per event position, the windows that event closed
}

type keyWindows struct {
	open map[int64]*acc // by window start
}

type acc struct {
	count  int
	sum    float64
	values []float64
}

func newWindower(size time.Duration, show func(Window)) *windower {
	return &windower{size: size, show: show, keys: map[string]*keyWindows{}, folded: map[string]int64{}, closes: map[int64]dssink.Many{}}
}

// HandleBatch folds the batch's events into their windows, then appends the windows they
// closed through the sink. A batch tried again (the output stream was unreachable) is not
// folded twice: events at or before a key's last folded position are skipped.
func (w *windower) HandleBatch(ctx context.Context, batch []pipeline.Message[Event], info pipeline.BatchInfo) error {
	w.mu.Lock()
	kw := w.keys[info.Key]
	if kw == nil {
		kw = &keyWindows{open: map[int64]*acc{}}
		w.keys[info.Key] = kw
	}
	size := w.size.Milliseconds()
	for i := range batch {
		m := &batch[i]
		if last, ok := w.folded[info.Key]; ok && m.Metadata.Position <= last {
			continue
		}
		w.folded[info.Key] = m.Metadata.Position
		e := &m.Data
		start := e.TS - e.TS%size
		a := kw.open[start]
		if a == nil {
			a = &acc{}
			kw.open[start] = a
		}
		a.count++
		a.sum += e.Latency
		a.values = append(a.values, e.Latency)
		// The windows of the key that end at or before this event are complete.
		if closed := w.emitLocked(info.Key, kw, func(s int64) bool { return s+size <= e.TS }); len(closed) > 0 {
			w.closes[m.Metadata.Position] = closed
		}
	}
	w.mu.Unlock()
	err := w.sink.HandleBatch(ctx, batch, info)
	w.mu.Lock()
	for i := range batch {
		if !batch[i].Failed() {
			delete(w.closes, batch[i].Metadata.Position) // appended
		}
	}
	w.mu.Unlock()
	return err
}

// closedBy is the sink's Value: the windows an event closed, appended with it.
func (w *windower) closedBy(m *pipeline.Message[Event]) (any, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ws := w.closes[m.Metadata.Position]; len(ws) > 0 {
		return ws, nil
	}
	return nil, nil
}

// flush appends every window still open, at the end of the stream, through a Writer (no
// event closes them).
func (w *windower) flush(ctx context.Context, s *dsclient.Stream) error {
	wr, err := dsclient.NewWriter(s, dsclient.WriterOptions{ID: "analytics-final-windows"})
	if err != nil {
		return err
	}
	w.mu.Lock()
	for key, kw := range w.keys {
		for _, win := range w.emitLocked(key, kw, func(int64) bool { return true }) {
			if err := wr.AppendJSON(ctx, win); err != nil {
				w.mu.Unlock()
				wr.Close(ctx)
				return err
			}
		}
	}
	w.mu.Unlock()
	return wr.Close(ctx)
}

// emitLocked closes the key's windows whose start passes closed, in order, and returns them.
func (w *windower) emitLocked(key string, kw *keyWindows, closed func(start int64) bool) dssink.Many {
	var starts []int64
	for s := range kw.open {
		if closed(s) {
			starts = append(starts, s)
		}
	}
	sortInt64(starts)
	size := w.size.Milliseconds()
	var out dssink.Many
	for _, s := range starts {
		a := kw.open[s]
		win := Window{Key: key, Start: s, End: s + size, Count: a.count, Sum: a.sum, P95: p95(a.values)}
		w.show(win)
		out = append(out, win)
		delete(kw.open, s)
	}
	return out
}
