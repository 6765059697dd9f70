package fleettest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/refserver"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/pgsink"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// ChildEnv names the environment variable that makes a test binary a child process of the
// multi-host test ("worker" or "refserver"); ConfigEnv holds the child's JSON configuration.
const (
	ChildEnv  = "SLUICE_FLEET_CHILD"
	ConfigEnv = "SLUICE_FLEET_CONFIG"
)

// Record is one event of the fleet's JSON data: what a writer appends and what a worker
// stores. N is the event's sequence number in its stream (its position there), S the
// stream's last path segment.
type Record struct {
	N int64  `json:"n"`
	S string `json:"s"`
}

// WorkerConfig configures a worker process ([ChildMain] with ChildEnv=worker).
type WorkerConfig struct {
	// Name is the worker's name, to the server and as PostgreSQL's application_name, so that
	// the rows and checkpoints it writes can be told apart from the outside.
	Name string `json:"name"`
	// Root is the stream root URL, and Subscriptions the ids of the subscriptions joined.
	Root          string   `json:"root"`
	Subscriptions []string `json:"subscriptions"`
	// DSN is PostgreSQL's connection string; Table the sink's table (PRIMARY KEY (stream,
	// position), columns n and s); Checkpoints the pgstore table.
	DSN         string `json:"dsn"`
	Table       string `json:"table"`
	Checkpoints string `json:"checkpoints"`
	// Pipeline is the pipeline's name, part of every checkpoint key.
	Pipeline string `json:"pipeline"`
	// MaxInFlight is the pipeline's MaxInFlight.
	MaxInFlight int `json:"max_in_flight"`
}

// Event is one line a worker process writes on its standard output, as JSON.
type Event struct {
	// T is when it happened, by the worker's clock (the machine's).
	T time.Time `json:"t"`
	// Kind is "ready" (the pipeline is about to run), "claim" (an attempt: Result),
	// "end" (a claim ended: Result is the reason), "heartbeat" (a failed heartbeat: Err),
	// "stats" (the final WorkerStats) or "exit" (Err is Run's error, if any).
	Kind string `json:"kind"`
	// Sub is the subscription's id, Gen the claim's generation, Holder the lease's holder
	// (for an ALREADY_CLAIMED attempt).
	Sub    string `json:"sub,omitempty"`
	Gen    int64  `json:"gen,omitempty"`
	Result string `json:"result,omitempty"`
	Holder string `json:"holder,omitempty"`
	// Messages is how many messages an ended claim handed to the pipeline.
	Messages int64           `json:"messages,omitempty"`
	Err      string          `json:"err,omitempty"`
	Stats    *ds.WorkerStats `json:"stats,omitempty"`
}

// RefServerConfig configures a reference-server process ([ChildMain] with
// ChildEnv=refserver): the server listens on Host:Port with the given long-poll timeout.
type RefServerConfig struct {
	Host     string        `json:"host"`
	Port     int           `json:"port"`
	LongPoll time.Duration `json:"long_poll"`
}

// ChildMain runs the child process ChildEnv names, with the configuration in ConfigEnv, and
// exits the process; without ChildEnv it returns at once. A test binary's TestMain calls it
// first.
func ChildMain() {
	kind := os.Getenv(ChildEnv)
	if kind == "" {
		return
	}
	cfg := []byte(os.Getenv(ConfigEnv))
	var err error
	switch kind {
	case "worker":
		var c WorkerConfig
		if err = json.Unmarshal(cfg, &c); err == nil {
			err = runWorker(c, os.Stdout)
		}
	case "refserver":
		var c RefServerConfig
		if err = json.Unmarshal(cfg, &c); err == nil {
			err = runRefServer(c)
		}
	default:
		err = fmt.Errorf("unknown %s %q", ChildEnv, kind)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleettest %s: %v\n", kind, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// events writes Events to w, one JSON line each, from a goroutine of its own, so that the
// observer's callbacks never wait on the pipe.
type events struct {
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newEvents(w io.Writer) *events {
	e := &events{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(e.done)
		enc := json.NewEncoder(w)
		for {
			e.mu.Lock()
			q, closed := e.queue, e.closed
			e.queue = nil
			e.mu.Unlock()
			for _, ev := range q {
				enc.Encode(ev)
			}
			if closed && len(q) == 0 {
				return
			}
			if len(q) == 0 {
				<-e.wake
			}
		}
	}()
	return e
}

func (e *events) emit(ev Event) {
	if ev.T.IsZero() {
		ev.T = time.Now()
	}
	e.mu.Lock()
	e.queue = append(e.queue, ev)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close writes what is queued and waits for it.
func (e *events) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.done
}

// observer turns a SubscriptionProducer's claims into Events.
type observer struct {
	ds.NopSubscriptionObserver
	ev *events
}

func (o observer) ClaimAttempted(c ds.ClaimEvent) {
	if c.Result == ds.ClaimNoPendingWork {
		return
	}
	e := Event{Kind: "claim", Sub: c.Subscription, Gen: c.Generation, Result: c.Result.String(), Holder: c.Holder}
	if c.Err != nil {
		e.Err = c.Err.Error()
	}
	o.ev.emit(e)
}

func (o observer) ClaimEnded(c ds.ClaimEndEvent) {
	e := Event{Kind: "end", Sub: c.Subscription, Gen: c.Generation, Result: c.Reason.String(), Messages: c.Messages}
	if c.Err != nil {
		e.Err = c.Err.Error()
	}
	o.ev.emit(e)
}

func (o observer) Heartbeat(h ds.HeartbeatEvent) {
	if h.Err != nil {
		o.ev.emit(Event{Kind: "heartbeat", Sub: h.Subscription, Gen: h.Generation, Err: h.Err.Error()})
	}
}

// runWorker is a worker process: a pipeline over a SubscriptionProducer of cfg's
// subscriptions, into a pgsink InsertOnce table, with the shared pgstore checkpoint store.
// It runs until SIGTERM or SIGINT, then drains.
func runWorker(cfg WorkerConfig, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ev := newEvents(out)
	defer ev.close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("worker", cfg.Name)

	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return err
	}
	pc.ConnConfig.RuntimeParams["application_name"] = cfg.Name
	pc.MaxConns = 6
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Options{Table: cfg.Checkpoints, NoCreate: true})
	if err != nil {
		return err
	}
	sink, err := pgsink.New(pgsink.Options[Record]{
		DB: pool, Table: cfg.Table, Columns: []string{"n", "s"},
		Values: func(row []any, m *pipeline.Message[Record]) ([]any, error) {
			return append(row, m.Data.N, m.Data.S), nil
		},
	})
	if err != nil {
		return err
	}
	retry := dsclient.DefaultRetryPolicy()
	retry.InitialDelay, retry.MaxDelay = 10*time.Millisecond, 200*time.Millisecond
	client, err := dsclient.NewClient(dsclient.WithRetry(retry))
	if err != nil {
		return err
	}
	var subs []*dsclient.Subscription
	for _, id := range cfg.Subscriptions {
		subs = append(subs, client.Subscription(cfg.Root, id))
	}
	ev.emit(Event{Kind: "ready"})
	stats, err := ds.RunWorker(ctx, ds.SubscriptionOptions[Record]{
		Subscriptions:      subs,
		Worker:             cfg.Name,
		Name:               cfg.Pipeline,
		Checkpoints:        store,
		CheckpointInterval: 100 * time.Millisecond,
		Observer:           observer{ev: ev},
		Logger:             logger,
	}, pipeline.Options[Record]{
		Name: cfg.Name,
		Processors: []pipeline.ProcessorOptions[Record]{{Concurrency: 2, MaxDemand: 32,
			Handler: pipeline.HandlerFunc[Record](func(context.Context, *pipeline.Message[Record]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[Record]{
			"pg": {Handler: sink, BatchSize: 200, BatchTimeout: 20 * time.Millisecond, Concurrency: 2},
		},
		DefaultBatcher:  "pg",
		MaxInFlight:     cfg.MaxInFlight,
		ShutdownTimeout: 20 * time.Second,
		Logger:          logger,
	})
	ev.emit(Event{Kind: "stats", Stats: &stats})
	exit := Event{Kind: "exit"}
	if err != nil {
		exit.Err = err.Error()
	}
	ev.emit(exit)
	return err
}

// runRefServer is a reference-server process: it starts the server on cfg's address (the
// Node packages must be installed already: a host has no route to a registry), prints its
// URL as a JSON line {"url": ...}, and stops it when standard input closes or on SIGTERM.
func runRefServer(cfg RefServerConfig) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	start, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	srv, err := refserver.Start(start, refserver.Options{Host: cfg.Host, Port: cfg.Port, LongPollTimeout: cfg.LongPoll})
	if err != nil {
		return err
	}
	defer srv.Stop()
	json.NewEncoder(os.Stdout).Encode(map[string]string{"url": srv.URL})
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(eof)
	}()
	select {
	case <-ctx.Done():
	case <-eof:
	}
	return nil
}
