package durablestreams_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// subEnv is a server's stream root with pull-wake (or webhook) subscriptions whose streams
// live under one prefix of their own.
type subEnv struct {
	t      *testing.T
	root   string
	prefix string
	wake   string
	app    *dsclient.Subscription // a handle for the application's own calls
}

// newSubEnv returns an environment on the server whose stream root is root, with a JSON
// wake stream.
func newSubEnv(t *testing.T, root string) *subEnv {
	t.Helper()
	prefix := strings.ReplaceAll(name(t), "/", "-")
	e := &subEnv{t: t, root: root, prefix: prefix, wake: prefix + "-wake"}
	e.app = dsclient.NewSubscription(root, prefix+"-app", fastRetry())
	if _, err := e.app.Stream(e.wake).Create(context.Background(), dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// pullWake creates pull-wake subscription id over the streams under prefix/group/.
func (e *subEnv) pullWake(id, group string, ttl time.Duration) *dsclient.Subscription {
	e.t.Helper()
	s := dsclient.NewSubscription(e.root, e.prefix+"-"+id, fastRetry())
	if _, _, err := s.Create(context.Background(), dsclient.SubscriptionConfig{
		Pattern: e.prefix + "/" + group + "/*", WakeStream: e.wake, LeaseTTL: ttl,
	}); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// webhook creates webhook subscription id over the streams under prefix/group/, delivered
// to hook.
func (e *subEnv) webhook(id, group, hook string, ttl time.Duration) *dsclient.Subscription {
	e.t.Helper()
	s := dsclient.NewSubscription(e.root, e.prefix+"-"+id, fastRetry())
	if _, _, err := s.Create(context.Background(), dsclient.SubscriptionConfig{
		Pattern: e.prefix + "/" + group + "/*", WebhookURL: hook, LeaseTTL: ttl,
	}); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// stream returns the handle of stream prefix/group/n, creating it.
func (e *subEnv) stream(group string, n int) *dsclient.Stream {
	e.t.Helper()
	s := e.app.Stream(fmt.Sprintf("%s/%s/s%03d", e.prefix, group, n))
	if _, err := s.Create(context.Background(), dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// caughtUp reports whether every stream sub links is acked up to its tail, and describes
// the first that is not.
func caughtUp(ctx context.Context, sub *dsclient.Subscription, want int) (bool, string) {
	info, err := sub.Get(ctx)
	if err != nil {
		return false, err.Error()
	}
	if len(info.Streams) < want {
		return false, fmt.Sprintf("%d streams linked, want %d", len(info.Streams), want)
	}
	for _, ls := range info.Streams {
		h, err := sub.Stream(ls.Path).Head(ctx)
		if err != nil {
			return false, err.Error()
		}
		if ls.AckedOffset != h.NextOffset {
			return false, fmt.Sprintf("%s acked at %s, tail %s", ls.Path, ls.AckedOffset, h.NextOffset)
		}
	}
	return true, ""
}

// eventually polls cond until it holds, failing t after timeout with what cond said last.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached after %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond) // polling a server's state: no event to wait on
	}
}

// rowKey is a sink row's key: (stream, position).
type rowKey struct {
	stream string
	pos    int64
}

// keyedSink is a sink keyed by (stream, position) that inserts a row only if absent, as an
// idempotent database sink does; it counts deliveries and checks that every message's
// position is its event's number.
type keyedSink struct {
	mu       sync.Mutex
	rows     map[rowKey]event
	byWorker map[string]int
	total    int
	bad      []string
	want     int
	full     chan struct{} // closed once want rows are in
}

func newKeyedSink(want int) *keyedSink {
	return &keyedSink{rows: map[rowKey]event{}, byWorker: map[string]int{}, want: want, full: make(chan struct{})}
}

func (k *keyedSink) add(worker string, ms []pipeline.Message[event]) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range ms {
		md := ms[i].Metadata
		key := rowKey{md.Stream, md.Position}
		ev := ms[i].Data
		if md.Position != int64(ev.N) || !strings.HasSuffix(md.Stream, ev.S) {
			if len(k.bad) < 5 {
				k.bad = append(k.bad, fmt.Sprintf("%s: event %s#%d at %s position %d", worker, ev.S, ev.N, md.Stream, md.Position))
			}
		}
		if old, ok := k.rows[key]; ok && old != ev {
			if len(k.bad) < 5 {
				k.bad = append(k.bad, fmt.Sprintf("%s: (%s, %d) holds %v, then %v", worker, md.Stream, md.Position, old, ev))
			}
		}
		k.total++
		k.byWorker[worker]++
		if _, ok := k.rows[key]; !ok {
			k.rows[key] = ev
			if len(k.rows) == k.want {
				close(k.full)
			}
		}
	}
}

// check fails t unless every one of the want events is a row and every position was right.
func (k *keyedSink) check(t *testing.T) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.bad) > 0 {
		t.Fatalf("wrong rows: %v", k.bad)
	}
	if len(k.rows) != k.want {
		t.Fatalf("%d rows, want %d", len(k.rows), k.want)
	}
	t.Logf("%d rows from %d deliveries (%d again); by worker: %v", len(k.rows), k.total, k.total-len(k.rows), k.byWorker)
}

// waitFull waits until the sink holds every row.
func (k *keyedSink) waitFull(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-k.full:
	case <-time.After(timeout):
		k.mu.Lock()
		n := len(k.rows)
		k.mu.Unlock()
		t.Fatalf("%d rows of %d after %v", n, k.want, timeout)
	}
}

// appendTo appends events from..to-1 to s, tagged with s's last path segment, perAppend at
// a time.
func appendTo(t testing.TB, s *dsclient.Stream, from, to, perAppend int) {
	t.Helper()
	u, _ := url.Parse(s.URL())
	tag := u.Path[strings.LastIndex(u.Path, "/")+1:]
	batch := make([]event, 0, perAppend)
	for i := from; i < to; i++ {
		batch = append(batch, event{N: i, S: tag})
		if len(batch) == perAppend || i == to-1 {
			if _, err := dsclient.AppendJSONBatch(context.Background(), s, batch, dsclient.AppendOptions{}); err != nil {
				t.Error(err)
				return
			}
			batch = batch[:0]
		}
	}
}

// worker is one worker's pipeline over a SubscriptionProducer.
type worker struct {
	name string
	src  *ds.SubscriptionProducer[event]
	pl   *pipeline.Pipeline[event]
	obs  *subRecorder
	done chan error
}

// workerOptions are options for startWorker beyond the subscriptions.
type workerOptions struct {
	store    ack.CheckpointStore
	perTurn  int
	maxOpen  int
	maxAge   time.Duration
	claimInt time.Duration
	noStore  bool // no checkpoint store (store is ignored)
	wrap     func(pipeline.Producer[event]) pipeline.Producer[event]
	handle   func(ctx context.Context, ms []pipeline.Message[event]) error // before the sink
	webhook  dsclient.WebhookOptions
	inFlight int
	onWon    func(ds.ClaimEvent) // called as each claim is won, before its streams are read
}

// startWorker runs a pipeline over the subscriptions, writing into sink, until the test
// stops it (stopAll) or ends.
func startWorker(t *testing.T, name string, subs []*dsclient.Subscription, sink *keyedSink, o workerOptions) *worker {
	t.Helper()
	w := &worker{name: name, obs: &subRecorder{onWon: o.onWon}, done: make(chan error, 1)}
	if o.noStore {
		o.store = nil
	}
	src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[event]{
		Subscriptions:      subs,
		Worker:             name,
		Name:               "fleet",
		Checkpoints:        o.store,
		CheckpointInterval: 20 * time.Millisecond,
		MaxMessagesPerTurn: o.perTurn,
		MaxOpenStreams:     o.maxOpen,
		MaxClaimAge:        o.maxAge,
		ClaimInterval:      o.claimInt,
		Webhook:            o.webhook,
		Observer:           w.obs,
		Logger:             testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.src = src
	var prod pipeline.Producer[event] = src
	if o.wrap != nil {
		prod = o.wrap(src)
	}
	pl, err := pipeline.New(pipeline.Options[event]{
		Name:     t.Name() + "-" + name,
		Producer: prod,
		Processors: []pipeline.ProcessorOptions[event]{{Concurrency: 2, MaxDemand: 16,
			Handler: pipeline.HandlerFunc[event](func(ctx context.Context, m *pipeline.Message[event]) error { return nil })}},
		Batchers: map[string]pipeline.BatcherOptions[event]{"sink": {BatchSize: 50, BatchTimeout: 5 * time.Millisecond, Concurrency: 2,
			Handler: pipeline.BatchHandlerFunc[event](func(ctx context.Context, ms []pipeline.Message[event], _ pipeline.BatchInfo) error {
				if o.handle != nil {
					if err := o.handle(ctx, ms); err != nil {
						return err
					}
				}
				sink.add(name, ms)
				return nil
			})}},
		DefaultBatcher:  "sink",
		MaxInFlight:     o.inFlight,
		ShutdownTimeout: 20 * time.Second,
		Logger:          testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.pl = pl
	ctx, cancel := context.WithCancel(context.Background())
	go func() { w.done <- pl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			t.Errorf("worker %s did not stop", name)
		}
	})
	return w
}

// waitClaimAttempt waits until the worker has tried to claim at least once.
func (w *worker) waitClaimAttempt(t *testing.T) {
	t.Helper()
	eventually(t, 10*time.Second, func() (bool, string) {
		w.obs.mu.Lock()
		defer w.obs.mu.Unlock()
		return len(w.obs.claims) > 0, "no claim attempt yet"
	})
}

// stop drains the worker and returns Run's error.
func (w *worker) stop(t *testing.T) error {
	t.Helper()
	w.pl.Stop()
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("worker %s did not drain", w.name)
		return nil
	}
}

// subRecorder records a worker's subscription events.
type subRecorder struct {
	mu         sync.Mutex
	claims     []ds.ClaimEvent
	ends       []ds.ClaimEndEvent
	heartbeats []ds.HeartbeatEvent
	onWon      func(ds.ClaimEvent)
}

func (r *subRecorder) ClaimAttempted(e ds.ClaimEvent) {
	r.mu.Lock()
	r.claims = append(r.claims, e)
	f := r.onWon
	r.mu.Unlock()
	if f != nil && e.Result == ds.ClaimWon {
		f(e)
	}
}

func (r *subRecorder) ClaimEnded(e ds.ClaimEndEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, e)
}

func (r *subRecorder) Heartbeat(e ds.HeartbeatEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heartbeats = append(r.heartbeats, e)
}

func (r *subRecorder) Lag(ds.LagEvent) {}

// won counts the claims won.
func (r *subRecorder) won() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.claims {
		if c.Result == ds.ClaimWon {
			n++
		}
	}
	return n
}

// endReasons returns the claims' end reasons, sorted.
func (r *subRecorder) endReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []string
	for _, e := range r.ends {
		s = append(s, e.Reason.String())
	}
	sort.Strings(s)
	return s
}

// savesLog wraps a shared checkpoint store and records each save that reached it, by
// worker and time.
type savesLog struct {
	ack.CheckpointStore
	worker string
	mu     *sync.Mutex
	log    *[]savedAt
}

type savedAt struct {
	worker, key, value string
	at                 time.Time
}

func (s savesLog) Save(ctx context.Context, key, value string) error {
	err := s.CheckpointStore.Save(ctx, key, value)
	if err == nil {
		s.mu.Lock()
		*s.log = append(*s.log, savedAt{s.worker, key, value, time.Now()})
		s.mu.Unlock()
	}
	return err
}

var errTestStop = errors.New("test: stopped")

// testLogger logs to t at the level of SLUICE_TEST_LOG (debug, info, warn; default warn), so
// that a failing test shows what its workers said. Records after the test ended are dropped.
func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("SLUICE_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	h := &tHandler{t: t, level: level, st: &tState{}}
	t.Cleanup(func() {
		h.st.mu.Lock()
		h.st.over = true
		h.st.mu.Unlock()
	})
	return slog.New(h)
}

type tHandler struct {
	t     *testing.T
	level slog.Level
	attrs []slog.Attr
	st    *tState
}

type tState struct {
	mu   sync.Mutex
	over bool
}

func (h *tHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *tHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", r.Time.Format("15:04:05.000"), r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.st.mu.Lock()
	defer h.st.mu.Unlock()
	if !h.st.over {
		h.t.Log(b.String())
	}
	return nil
}

func (h *tHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tHandler{t: h.t, level: h.level, attrs: append(append([]slog.Attr(nil), h.attrs...), as...), st: h.st}
}

func (h *tHandler) WithGroup(string) slog.Handler { return h }
