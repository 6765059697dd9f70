package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// childEnv makes this program a child process of the suite: a worker or a single-stream
// reader, configured by the JSON childCfg the variable holds.
const childEnv = "SLUICE_BENCH_SUBSCRIPTIONS_CHILD"

// childCfg configures a child.
type childCfg struct {
	// Mode is "single" (a durablestreams.Producer over Stream, to its end) or "worker" (a
	// SubscriptionProducer over Subs of Root, until SIGTERM).
	Mode   string   `json:"mode"`
	Stream string   `json:"stream,omitempty"`
	Root   string   `json:"root,omitempty"`
	Subs   []string `json:"subs,omitempty"`
	Name   string   `json:"name"`
	// SinkDelay is slept in each batch (the failover part's slow sink); 0: none.
	SinkDelay time.Duration `json:"sink_delay,omitempty"`
	// PerTurn and MaxOpen are the worker's MaxMessagesPerTurn and MaxOpenStreams; 0: their
	// defaults.
	PerTurn int `json:"per_turn,omitempty"`
	MaxOpen int `json:"max_open,omitempty"`
	// Profile, when set, is a directory the child writes a CPU profile of its run into.
	Profile string `json:"profile,omitempty"`
}

// A child writes JSON lines on stdout: "ready" once set up, then, after the parent writes a
// line on its stdin (go), a progress line ("p") every 50 ms while it changes, its claims
// ("won", "end") as they happen, and a last progress line ("done") when it ends: at the end
// of the stream (single), or after a drain on SIGTERM (worker).
type childLine struct {
	Kind string `json:"k"`
	// Progress: messages acknowledged, the sum of their ids and the xor of the ids' hashes
	// (exactly-once checks), the time of the last acknowledged batch (Unix ns), the most TCP
	// connections open at once and the connections dialed.
	N     int64  `json:"n,omitempty"`
	Sum   int64  `json:"sum,omitempty"`
	Xor   uint64 `json:"xor,omitempty"`
	Last  int64  `json:"last,omitempty"`
	Peak  int64  `json:"peak,omitempty"`
	Dials int64  `json:"dials,omitempty"`
	// Claims.
	Sub    string `json:"sub,omitempty"`
	T      int64  `json:"t,omitempty"` // Unix ns
	Reason string `json:"reason,omitempty"`
	Err    string `json:"err,omitempty"`
}

// hash mixes an id (splitmix64's finalizer), for the xor of the ids delivered: a duplicate or
// a loss changes it.
func hash(id int64) uint64 {
	z := uint64(id) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// counter counts the TCP connections a transport has open, and their peak.
type counter struct {
	open, peak, dials atomic.Int64
}

func (c *counter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.dials.Add(1)
	n := c.open.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return &countedConn{Conn: conn, c: c}, nil
}

type countedConn struct {
	net.Conn
	c    *counter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() { cc.c.open.Add(-1) })
	return cc.Conn.Close()
}

// tally is a child's count of the messages acknowledged.
type tally struct {
	mu   sync.Mutex
	n    int64
	sum  int64
	xor  uint64
	last int64
}

func (t *tally) add(ms []pipeline.Message[dsload.Event]) {
	var sum int64
	var xor uint64
	for i := range ms {
		sum += ms[i].Data.ID
		xor ^= hash(ms[i].Data.ID)
	}
	now := time.Now().UnixNano()
	t.mu.Lock()
	t.n += int64(len(ms))
	t.sum += sum
	t.xor ^= xor
	t.last = now
	t.mu.Unlock()
}

func (t *tally) line(kind string, c *counter) childLine {
	t.mu.Lock()
	defer t.mu.Unlock()
	return childLine{Kind: kind, N: t.n, Sum: t.sum, Xor: t.xor, Last: t.last, Peak: c.peak.Load(), Dials: c.dials.Load()}
}

// lines writes childLines, one at a time.
type lines struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (l *lines) write(v childLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.enc.Encode(v)
}

// claims reports a worker's claims as lines.
type claims struct {
	ds.NopSubscriptionObserver
	out *lines
}

func (c claims) ClaimAttempted(e ds.ClaimEvent) {
	if e.Result == ds.ClaimWon {
		c.out.write(childLine{Kind: "won", Sub: e.Subscription, T: time.Now().UnixNano()})
	}
}

func (c claims) ClaimEnded(e ds.ClaimEndEvent) {
	c.out.write(childLine{Kind: "end", Sub: e.Subscription, T: time.Now().UnixNano(), Reason: e.Reason.String()})
}

// childMain runs this process as a child when childEnv is set, and exits; otherwise it
// returns at once.
func childMain() {
	js := os.Getenv(childEnv)
	if js == "" {
		return
	}
	var cfg childCfg
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "subscriptions child:", err)
		os.Exit(2)
	}
	out := &lines{enc: json.NewEncoder(os.Stdout)}
	err := runChild(cfg, out)
	if err != nil {
		out.write(childLine{Kind: "error", Err: err.Error()})
		os.Exit(1)
	}
	os.Exit(0)
}

// topology is the pipeline both modes run, as bench/pipeline's: 4 processors, a batcher of
// 1000 messages or 50 ms, the producer's default decoding.
func topology(name string, sink pipeline.BatchHandler[dsload.Event]) pipeline.Options[dsload.Event] {
	return pipeline.Options[dsload.Event]{
		Name: name,
		Processors: []pipeline.ProcessorOptions[dsload.Event]{{Concurrency: 4,
			Handler: pipeline.HandlerFunc[dsload.Event](func(context.Context, *pipeline.Message[dsload.Event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[dsload.Event]{
			"sink": {Handler: sink, BatchSize: 1000, BatchTimeout: 50 * time.Millisecond},
		},
		DefaultBatcher: "sink",
		Logger:         slog.New(slog.DiscardHandler),
	}
}

func runChild(cfg childCfg, out *lines) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	conns := &counter{}
	tr := dsload.Transport()
	tr.DialContext = conns.dial
	hc := &http.Client{Transport: tr}
	client, err := dsclient.NewClient(dsclient.WithHTTPClient(hc))
	if err != nil {
		return err
	}
	t := &tally{}
	sink := pipeline.BatchHandlerFunc[dsload.Event](func(ctx context.Context, ms []pipeline.Message[dsload.Event], _ pipeline.BatchInfo) error {
		if cfg.SinkDelay > 0 {
			time.Sleep(cfg.SinkDelay)
		}
		t.add(ms)
		return nil
	})

	out.write(childLine{Kind: "ready"})
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for go: %w", err)
	}
	if cfg.Profile != "" {
		f, err := os.Create(filepath.Join(cfg.Profile, fmt.Sprintf("%s-%s-%d.cpu.prof", cfg.Mode, cfg.Name, os.Getpid())))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	progress := make(chan struct{})
	go func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		var last childLine
		for {
			select {
			case <-progress:
				return
			case <-tk.C:
			}
			if l := t.line("p", conns); l != last {
				out.write(l)
				last = l
			}
		}
	}()
	switch cfg.Mode {
	case "single":
		p, perr := ds.NewProducer(ds.ProducerOptions[dsload.Event]{Stream: client.Stream(cfg.Stream), Logger: slog.New(slog.DiscardHandler)})
		if perr != nil {
			return perr
		}
		o := topology(cfg.Name, sink)
		o.Producer = p
		pl, perr := pipeline.New(o)
		if perr != nil {
			return perr
		}
		err = pl.Run(ctx)
	case "worker":
		var subs []*dsclient.Subscription
		for _, id := range cfg.Subs {
			subs = append(subs, client.Subscription(cfg.Root, id))
		}
		_, err = ds.RunWorker(ctx, ds.SubscriptionOptions[dsload.Event]{
			Subscriptions:      subs,
			Worker:             cfg.Name,
			MaxMessagesPerTurn: cfg.PerTurn,
			MaxOpenStreams:     cfg.MaxOpen,
			Observer:           claims{out: out},
			Logger:             slog.New(slog.DiscardHandler),
		}, topology(cfg.Name, sink))
	default:
		err = fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	close(progress)
	out.write(t.line("done", conns))
	return err
}
