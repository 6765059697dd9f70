package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Event is one event of a user's stream: N is its number in the stream (0, 1, 2, …).
type Event struct {
	User   string `json:"user"`
	N      int64  `json:"n"`
	Amount int64  `json:"amount"`
}

// workerConfig is what a worker needs. A worker process gets it as JSON in the environment
// variable childEnv.
type workerConfig struct {
	Name string   `json:"name"`
	Root string   `json:"root"` // the stream root URL
	Subs []string `json:"subs"` // the subscriptions' ids
	// Checkpoints is the directory of the ack.FileStore the worker processes share.
	Checkpoints string `json:"checkpoints"`
}

// childEnv makes this program a worker process (see workerConfig).
const childEnv = "SLUICE_EXAMPLE_FLEET_WORKER"

// reporter receives what a worker does: the tally itself for a worker in this process, or
// JSON lines on standard output for a worker process.
type reporter interface {
	insert(worker string, keys []rowKey, numbers []int64)
	claimWon(worker, sub string, at time.Time)
	claimEnded(worker, sub, reason string)
}

// observer passes a worker's claims to its reporter.
type observer struct {
	ds.NopSubscriptionObserver
	name string
	rep  reporter
}

func (o observer) ClaimAttempted(e ds.ClaimEvent) {
	if e.Result == ds.ClaimWon {
		o.rep.claimWon(o.name, e.Subscription, time.Now())
	}
}

func (o observer) ClaimEnded(e ds.ClaimEndEvent) {
	o.rep.claimEnded(o.name, e.Subscription, e.Reason.String())
}

// cutTransport fails every request once cut is set: a worker whose host is gone, as the
// server and the other workers see it.
type cutTransport struct {
	base http.RoundTripper
	cut  *atomic.Bool
}

var errCut = errors.New("fleet: this worker's network is cut")

func (c cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errCut
	}
	return c.base.RoundTrip(r)
}

// cutStore fails every call once cut is set: the shared checkpoint store as a crashed
// worker reaches it (not at all).
type cutStore struct {
	ack.CheckpointStore
	cut *atomic.Bool
}

func (c cutStore) Load(ctx context.Context, key string) (string, bool, error) {
	if c.cut.Load() {
		return "", false, errCut
	}
	return c.CheckpointStore.Load(ctx, key)
}

func (c cutStore) Save(ctx context.Context, key, value string) error {
	if c.cut.Load() {
		return errCut
	}
	return c.CheckpointStore.Save(ctx, key, value)
}

// runWorker runs one worker until ctx ends (then it drains: its claims are acked and
// released): a pipeline over a SubscriptionProducer of cfg's subscriptions, one processor
// per user at a time (partitioned by stream, so each user's events stay in order), and a
// batcher writing rows to rep. When dead is set (this process's stand-in for a crashed
// worker), its requests and its checkpoint saves fail and its batches are lost, as a crashed
// host's would be.
func runWorker(ctx context.Context, cfg workerConfig, store ack.CheckpointStore, rep reporter, dead *atomic.Bool) (ds.WorkerStats, error) {
	var opts []dsclient.Option
	if dead != nil {
		opts = append(opts, dsclient.WithHTTPClient(&http.Client{Transport: cutTransport{base: dsclient.NewTransport(), cut: dead}}))
		store = cutStore{store, dead}
	}
	client, err := dsclient.NewClient(opts...)
	if err != nil {
		return ds.WorkerStats{}, err
	}
	var subs []*dsclient.Subscription
	for _, id := range cfg.Subs {
		subs = append(subs, client.Subscription(cfg.Root, id))
	}
	quiet := slog.New(slog.DiscardHandler)
	sink := pipeline.BatchHandlerFunc[Event](func(_ context.Context, ms []pipeline.Message[Event], _ pipeline.BatchInfo) error {
		if dead != nil && dead.Load() {
			return nil // lost with the crashed worker; its acks change nothing any more
		}
		keys, numbers := make([]rowKey, len(ms)), make([]int64, len(ms))
		for i := range ms {
			keys[i] = rowKey{ms[i].Metadata.Stream, ms[i].Metadata.Position}
			numbers[i] = ms[i].Data.N
		}
		rep.insert(cfg.Name, keys, numbers)
		return nil
	})
	return ds.RunWorker(ctx, ds.SubscriptionOptions[Event]{
		Subscriptions: subs,
		Worker:        cfg.Name,
		Name:          "fleet",
		Checkpoints:   store, // shared by every worker: positions stay the same across a takeover
		Observer:      observer{name: cfg.Name, rep: rep},
		Logger:        quiet,
	}, pipeline.Options[Event]{
		Name: cfg.Name,
		Processors: []pipeline.ProcessorOptions[Event]{{
			Concurrency: 4,
			PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[Event]) string { return m.Metadata.Stream }),
			Handler:     pipeline.HandlerFunc[Event](func(context.Context, *pipeline.Message[Event]) error { return nil }),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Event]{
			"db": {Handler: sink, BatchSize: 200, BatchTimeout: 50 * time.Millisecond, Concurrency: 2},
		},
		DefaultBatcher:  "db",
		ShutdownTimeout: 10 * time.Second,
		Logger:          quiet,
	})
}

// line is one line a worker process writes: rows, a claim won or ended, or its exit.
type line struct {
	Kind   string          `json:"k"`
	Rows   [][3]any        `json:"rows,omitempty"` // stream, position, event number
	Sub    string          `json:"sub,omitempty"`
	Reason string          `json:"reason,omitempty"`
	T      time.Time       `json:"t,omitzero"`
	Err    string          `json:"err,omitempty"`
	Stats  *ds.WorkerStats `json:"stats,omitempty"`
}

// lineReporter is a worker process's reporter: it writes lines to w. A batch counts as
// written once its line is written.
type lineReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *lineReporter) write(v line) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.enc.Encode(v)
}

func (l *lineReporter) insert(_ string, keys []rowKey, numbers []int64) {
	rows := make([][3]any, len(keys))
	for i, k := range keys {
		rows[i] = [3]any{k.Stream, k.Pos, numbers[i]}
	}
	l.write(line{Kind: "rows", Rows: rows})
}

func (l *lineReporter) claimWon(_, sub string, at time.Time) {
	l.write(line{Kind: "won", Sub: sub, T: at})
}

func (l *lineReporter) claimEnded(_, sub, reason string) {
	l.write(line{Kind: "end", Sub: sub, Reason: reason})
}

// childMain runs this process as a worker when childEnv is set, and exits; otherwise it
// returns at once. A worker process runs until SIGTERM or SIGINT, then drains.
func childMain() {
	js := os.Getenv(childEnv)
	if js == "" {
		return
	}
	var cfg workerConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "fleet worker:", err)
		os.Exit(2)
	}
	store, err := ack.NewFileStore(cfg.Checkpoints)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet worker:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rep := &lineReporter{enc: json.NewEncoder(os.Stdout)}
	stats, err := runWorker(ctx, cfg, store, rep, nil)
	exit := line{Kind: "exit", Stats: &stats}
	if err != nil {
		exit.Err = err.Error()
	}
	rep.write(exit)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// readLines applies the lines of worker process name, read from r, to the tally, until r
// ends; it returns the process's exit line (Kind empty if there was none: it was killed).
func readLines(name string, r io.Reader, t *tally) line {
	var exit line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l line
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // a line cut by a kill
		}
		switch l.Kind {
		case "rows":
			keys, numbers := make([]rowKey, 0, len(l.Rows)), make([]int64, 0, len(l.Rows))
			for _, r := range l.Rows {
				s, _ := r[0].(string)
				p, _ := r[1].(float64)
				n, _ := r[2].(float64)
				keys = append(keys, rowKey{s, int64(p)})
				numbers = append(numbers, int64(n))
			}
			t.insert(name, keys, numbers)
		case "won":
			t.claimWon(name, l.Sub, l.T)
		case "end":
			t.claimEnded(name, l.Sub, l.Reason)
		case "exit":
			exit = l
		}
	}
	return exit
}
