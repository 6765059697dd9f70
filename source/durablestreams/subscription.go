package durablestreams

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/optcheck"
	"github.com/sluice-go/sluice/pipeline"
)

// Defaults of [SubscriptionOptions] that do not depend on the lease.
const (
	// DefaultMaxMessagesPerTurn is SubscriptionOptions.MaxMessagesPerTurn's default.
	DefaultMaxMessagesPerTurn = 100
	// DefaultMaxOpenStreams is SubscriptionOptions.MaxOpenStreams's default.
	DefaultMaxOpenStreams = 16
	// DefaultMaxClaimAge is SubscriptionOptions.MaxClaimAge's default: well inside the hour
	// a claim token lasts on the reference server.
	DefaultMaxClaimAge = 30 * time.Minute
)

// SubscriptionOptions configures a [SubscriptionProducer]. Only Subscriptions is required;
// the zero value of every other field means its documented default. The intervals that
// default to a fraction of the lease use the lease the server reports for each
// subscription.
type SubscriptionOptions[T any] struct {
	// Subscriptions are the subscriptions this worker joins the workers of, each a handle
	// from dsclient.Client.Subscription (or dsclient.NewSubscription) with the settings its
	// operations and reads use. Their ids must differ. Pull-wake subscriptions are claimed
	// by this producer; the wakes of webhook subscriptions come through
	// [SubscriptionProducer.WebhookHandler]. The application creates them (and a pull-wake
	// subscription's wake stream) beforehand. Required.
	Subscriptions []*dsclient.Subscription
	// Worker names this worker to the server and to the other workers: it is the holder an
	// ALREADY_CLAIMED answer names. Default: the host name and process id, with a counter
	// after the first producer of a process ("host-1234", "host-1234-2").
	Worker string
	// Name is the pipeline's name, part of every checkpoint key. Required with Checkpoints.
	// Default: "".
	Name string
	// Checkpoints keeps each stream's committed position, keyed by
	// ack.CheckpointKey(Name, the stream URL's path) as for a [Producer]. Share one store
	// (ack/pgstore across hosts, one ack.MemoryStore between the pipelines of a process)
	// between every worker of a subscription: it is what makes positions the same whichever
	// worker delivers a message (see the package documentation). Default: none — delivery is
	// at least once and positions count from where each claim starts reading.
	Checkpoints ack.CheckpointStore
	// CheckpointInterval is the least time between two saves of a stream's advancing
	// committed position; heartbeats ack what was saved. Default: 1s.
	CheckpointInterval time.Duration
	// MaxBytes is dsclient.ReadOptions.MaxBytes for every stream read. Default: 64 MiB.
	MaxBytes int
	// Decode turns one item into the message data, as [ProducerOptions].Decode does (same
	// default).
	Decode func(data []byte, dst *T) error
	// JSON decodes JSON items when Decode is nil, as [ProducerOptions].JSON does (same
	// default).
	JSON dsclient.JSONDecoder
	// Split cuts byte and text streams' chunks into messages, as [ProducerOptions].Split
	// does. Default: nil, one message per chunk.
	Split bufio.SplitFunc
	// HeartbeatInterval is how often a held claim is renewed by an ack that carries the
	// committed positions. It must leave room inside the lease: a value of at least the
	// lease minus LeaseMargin is replaced by the default, with a warning. Default: a third
	// of the subscription's lease.
	HeartbeatInterval time.Duration
	// ClaimInterval is how often the worker tries, on its own, to claim a pull-wake
	// subscription it does not hold, besides following its wake stream (a wake that nobody
	// claims holds back later wakes). Each wait is varied by up to 10% either way.
	// Default: the subscription's lease.
	ClaimInterval time.Duration
	// LeaseMargin is how long before the lease would pass the worker stops a claim whose
	// heartbeats have not succeeded: it stops reading its streams and saving their
	// positions at once, so that nothing of it happens after the server could give the
	// streams to another worker. Default: a fifth of the subscription's lease.
	LeaseMargin time.Duration
	// MaxClaimAge is how long the worker keeps one claim: then it stops reading it,
	// commits what was finished, acks and releases it, and claims again (claim tokens
	// expire: after an hour on the reference server). Default: [DefaultMaxClaimAge].
	MaxClaimAge time.Duration
	// MaxMessagesPerTurn is the most messages one stream gives in one turn: streams take
	// turns (round-robin over the streams of every claim held), so that one busy stream
	// does not starve the others. Default: [DefaultMaxMessagesPerTurn].
	MaxMessagesPerTurn int
	// MaxOpenStreams is the most streams read at once; the other pending streams wait
	// their turn. A stream being read may hold a connection (its response is read only as
	// fast as the pipeline asks), so this bounds a worker's connections whatever the number
	// of streams. Default: [DefaultMaxOpenStreams].
	MaxOpenStreams int
	// Webhook configures the receiver behind [SubscriptionProducer.WebhookHandler], for
	// webhook subscriptions: Root is required to use it; Handler must be nil (the producer
	// handles the wakes); SubscriptionIDs defaults to the ids of Subscriptions. Default:
	// the zero value, no webhook handler.
	Webhook dsclient.WebhookOptions
	// Client makes the webhook receiver (its signing-key fetches and callbacks use the
	// client's settings). Default: a client with default settings.
	Client *dsclient.Client
	// Logger logs claims, lease losses and warnings. Default: slog.Default().
	Logger *slog.Logger
	// Observer receives the claims, heartbeats and lag. Default: none.
	Observer SubscriptionObserver
	// ProducerObserver receives the events of every stream read, as
	// [ProducerOptions].Observer does (checkpoint saves after a claim was lost are not
	// reported: they do not happen). Default: none.
	ProducerObserver ProducerObserver
}

// SubscriptionProducer is a [pipeline.Producer] that joins the workers of one or more
// Durable Streams subscriptions (PROTOCOL.md sections 6 and 7) and hands the messages of
// their streams to the pipeline as it asks for them. The server decides which worker works
// on what: any number of workers, in any number of processes and hosts, may run a
// SubscriptionProducer over the same subscriptions.
//
// For each pull-wake subscription the producer follows the wake stream with one live read
// (from the wake stream's tail as it was before the first claim, so that no wake appended
// after that claim is missed), and claims the subscription when a wake names it, at start,
// and every ClaimInterval; a
// claim it wins is its lease on every linked stream with pending work. Those streams are
// read from their committed positions, taking turns, and their messages carry
// pipeline.Metadata as a [Producer]'s do (Stream: the stream URL's path; Position: the
// message's stable number in the stream; Source: its [*Chunk]), so the same sinks work.
// Heartbeats renew the lease and move the server's cursors to what is committed; once every
// stream of the claim is read to its tail and committed, the claim is acked done (and claimed
// again at once when the server says more work arrived). A claim that is fenced, or whose
// heartbeats fail until its lease is about to pass, stops at once: its streams are no
// longer read, nothing more of it is saved or acked, and its messages still in the pipeline
// are left to the next holder (their acknowledgements change nothing). On drain the producer
// stops reading, commits what the pipeline finished, acks it and releases its claims. See
// the package documentation's Subscriptions section for the positions and the commit rule.
//
// Streams take turns, at most MaxMessagesPerTurn messages each, so that one busy stream
// does not hold the others back; messages of different streams interleave. For per-stream
// order, partition the first processor pool by stream, so that each stream's messages go
// through one goroutine, in order:
//
//	PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[T]) string { return m.Metadata.Stream }),
//
// A SubscriptionProducer serves one pipeline run: it starts on the first Produce and stops
// on Close. It implements [pipeline.Producer], [pipeline.DrainNotifier] and
// [pipeline.Closer]. Its methods are safe for concurrent use; concurrent Produce calls
// (pipeline.Options.ProducerConcurrency above 1) are served one at a time.
type SubscriptionProducer[T any] struct {
	opts     SubscriptionOptions[T]
	worker   string
	log      *slog.Logger
	quiet    *slog.Logger // the per-stream producers': warnings only
	obs      SubscriptionObserver
	perTurn  int
	maxOpen  int
	subs     []*subState[T]
	byID     map[string]*subState[T]
	recv     *dsclient.WebhookReceiver // nil without SubscriptionOptions.Webhook
	dec      decoder[T]                // for DecodeMessages
	deferred atomic.Bool               // the pipeline decodes on its processors (DeferDecoding)

	runCtx    context.Context // the background goroutines'; cancelled at the end of Close
	runCancel context.CancelFunc
	drainCh   chan struct{} // closed when draining starts
	closeCh   chan struct{} // closed when Close starts
	wg        sync.WaitGroup

	produceMu sync.Mutex // serializes Produce

	mu       sync.Mutex
	started  bool
	draining bool
	closed   bool
	fatal    error
	ring     []*streamRun[T] // the streams being read, in turn order
	next     int             // the ring index of the next turn
	queue    []*streamRun[T] // pending streams waiting for a place in the ring
	ready    chan struct{}   // capacity 1: a stream was queued, or fatal set
	errs     []error         // failures of Close's final saves and acks
}

var (
	_ pipeline.Producer[int] = (*SubscriptionProducer[int])(nil)
	_ pipeline.DrainNotifier = (*SubscriptionProducer[int])(nil)
	_ pipeline.Closer        = (*SubscriptionProducer[int])(nil)
)

// workers numbers the producers of the process, for default worker names.
var workers atomic.Int64

// NewSubscriptionProducer validates opts and returns a producer. It does no I/O and starts
// nothing: the first Produce reads the subscriptions and starts claiming. Invalid options
// are reported all at once in a *[pipeline.OptionsError], each problem naming its field.
func NewSubscriptionProducer[T any](opts SubscriptionOptions[T]) (*SubscriptionProducer[T], error) {
	c := optcheck.New("durablestreams", nil)
	if len(opts.Subscriptions) == 0 {
		c.Bad("SubscriptionOptions.Subscriptions", "required: at least one subscription")
	}
	ids := map[string]int{}
	for i, s := range opts.Subscriptions {
		field := "SubscriptionOptions.Subscriptions[" + strconv.Itoa(i) + "]"
		if s == nil {
			c.Bad(field, "nil subscription")
			continue
		}
		if j, dup := ids[s.ID()]; dup {
			c.Bad(field, "id %q is also Subscriptions[%d]", s.ID(), j)
			continue
		}
		ids[s.ID()] = i
	}
	for _, r := range opts.Worker {
		if r < 0x20 || r == 0x7f {
			c.Bad("SubscriptionOptions.Worker", "must not contain control characters")
			break
		}
	}
	if opts.Checkpoints != nil && opts.Name == "" {
		c.Bad("SubscriptionOptions.Name", "required with Checkpoints")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"CheckpointInterval", opts.CheckpointInterval},
		{"HeartbeatInterval", opts.HeartbeatInterval},
		{"ClaimInterval", opts.ClaimInterval},
		{"LeaseMargin", opts.LeaseMargin},
		{"MaxClaimAge", opts.MaxClaimAge},
	} {
		if d.v < 0 {
			c.Bad("SubscriptionOptions."+d.field, "must be >= 0, got %v", d.v)
		}
	}
	for _, n := range []struct {
		field string
		v     int
	}{
		{"MaxBytes", opts.MaxBytes},
		{"MaxMessagesPerTurn", opts.MaxMessagesPerTurn},
		{"MaxOpenStreams", opts.MaxOpenStreams},
	} {
		if n.v < 0 {
			c.Bad("SubscriptionOptions."+n.field, "must be >= 0, got %d", n.v)
		}
	}
	webhook := opts.Webhook.Root != "" || opts.Webhook.JWKSURL != "" || opts.Webhook.Handler != nil ||
		opts.Webhook.ReplayWindow != 0 || len(opts.Webhook.SubscriptionIDs) > 0 || opts.Webhook.MaxBodyBytes != 0 || opts.Webhook.Now != nil
	if webhook {
		if opts.Webhook.Handler != nil {
			c.Bad("SubscriptionOptions.Webhook.Handler", "must be nil: the producer handles the wakes")
		}
		if err := opts.Webhook.Validate(); err != nil {
			var oe *optcheck.Error
			if errors.As(err, &oe) {
				for _, pr := range oe.Problems {
					c.Bad("SubscriptionOptions.Webhook."+trimType(pr.Field), "%s", pr.Problem)
				}
			} else {
				c.Bad("SubscriptionOptions.Webhook", "%v", err)
			}
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}

	p := &SubscriptionProducer[T]{opts: opts, worker: opts.Worker, log: opts.Logger, obs: opts.Observer,
		perTurn: opts.MaxMessagesPerTurn, maxOpen: opts.MaxOpenStreams,
		byID: map[string]*subState[T]{}, drainCh: make(chan struct{}), closeCh: make(chan struct{}),
		ready: make(chan struct{}, 1), dec: newDecoder(opts.Decode, opts.JSON)}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.obs == nil {
		p.obs = NopSubscriptionObserver{}
	}
	if p.perTurn == 0 {
		p.perTurn = DefaultMaxMessagesPerTurn
	}
	if p.maxOpen == 0 {
		p.maxOpen = DefaultMaxOpenStreams
	}
	if p.opts.MaxClaimAge == 0 {
		p.opts.MaxClaimAge = DefaultMaxClaimAge
	}
	if p.worker == "" {
		p.worker = defaultWorkerName()
	}
	p.log = p.log.With("worker", p.worker)
	p.quiet = slog.New(warnOnly{p.log.Handler()})
	p.runCtx, p.runCancel = context.WithCancel(context.Background())
	for _, s := range opts.Subscriptions {
		st := newSubState(p, s)
		p.subs = append(p.subs, st)
		p.byID[s.ID()] = st
	}
	if webhook {
		wo := opts.Webhook
		wo.Handler = p.onWake
		if len(wo.SubscriptionIDs) == 0 {
			for _, s := range opts.Subscriptions {
				wo.SubscriptionIDs = append(wo.SubscriptionIDs, s.ID())
			}
		}
		var err error
		if opts.Client != nil {
			p.recv, err = opts.Client.WebhookReceiver(wo)
		} else {
			p.recv, err = dsclient.NewWebhookReceiver(wo)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// trimType drops the leading type name of a Go field path: "WebhookOptions.Root" → "Root".
func trimType(field string) string {
	for i := 0; i < len(field); i++ {
		if field[i] == '.' {
			return field[i+1:]
		}
	}
	return field
}

func defaultWorkerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	name := host + "-" + strconv.Itoa(os.Getpid())
	if n := workers.Add(1); n > 1 {
		name += "-" + strconv.FormatInt(n, 10)
	}
	return name
}

// Worker returns the worker's name, as the server knows it.
func (p *SubscriptionProducer[T]) Worker() string { return p.worker }

// start starts the subscriptions' goroutines, once. Called with produceMu held.
func (p *SubscriptionProducer[T]) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return errors.New("durablestreams: subscription producer is closed")
	case p.started:
		return nil
	}
	p.started = true
	for _, s := range p.subs {
		p.wg.Add(1)
		go s.run()
	}
	return nil
}

// Produce fills msgs with the next messages of the streams of the claims held, one stream
// per call, taking turns. It blocks until it has at least one message, ctx ends, or a
// subscription fails for good: it returns ctx's error when ctx ends, and an error for a
// subscription that does not exist or a stream read that cannot go on (neither a transient
// failure nor a missing stream, which are retried and skipped). It never returns
// [pipeline.ErrEndOfInput]: a worker runs until it is stopped.
func (p *SubscriptionProducer[T]) Produce(ctx context.Context, msgs []pipeline.Message[T]) (int, error) {
	p.produceMu.Lock()
	defer p.produceMu.Unlock()
	if err := p.start(); err != nil {
		return 0, err
	}
	for {
		sr, ready, err := p.pick()
		if err != nil {
			return 0, err
		}
		if sr == nil {
			select {
			case <-ready:
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		n, err := p.serve(ctx, sr, msgs)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// pick returns the stream whose turn it is, or the channel signalled when one may be
// ready.
func (p *SubscriptionProducer[T]) pick() (*streamRun[T], <-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fatal != nil {
		return nil, nil, p.fatal
	}
	if p.closed {
		return nil, nil, errors.New("durablestreams: subscription producer is closed")
	}
	if err := p.promoteLocked(); err != nil {
		return nil, nil, err
	}
	if len(p.ring) == 0 {
		return nil, p.ready, nil
	}
	if p.next >= len(p.ring) {
		p.next = 0
	}
	sr := p.ring[p.next]
	p.next++
	return sr, nil, nil
}

// serve gives sr its turn: up to MaxMessagesPerTurn messages. It returns 0 and no error
// when the stream has none to give (it ended, or its claim did).
func (p *SubscriptionProducer[T]) serve(ctx context.Context, sr *streamRun[T], msgs []pipeline.Message[T]) (int, error) {
	cr := sr.cr
	if !cr.live() {
		cr.kill(ClaimExpired, errLeaseEnding)
		return 0, nil
	}
	sr.turn.Lock()
	n, err := sr.prod.Produce(ctx, msgs[:min(len(msgs), p.perTurn)])
	sr.turn.Unlock()
	if n > 0 {
		if !cr.live() {
			// The lease may have passed while the read waited: its messages belong to the
			// next holder.
			clear(msgs[:n])
			cr.kill(ClaimExpired, errLeaseEnding)
			return 0, nil
		}
		cr.messages.Add(int64(n))
		cr.s.messages.Add(uint64(n))
		return n, nil
	}
	switch {
	case errors.Is(err, pipeline.ErrEndOfInput):
		p.streamEnded(sr, true)
		return 0, nil
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case cr.killed.Load() || cr.isStopping():
		return 0, nil // its read was stopped
	case errors.Is(err, dsclient.ErrNotFound):
		p.log.Warn("durablestreams: a linked stream is gone; skipping it", "subscription", cr.s.id, "stream", sr.link.Path, "err", err)
		p.streamEnded(sr, true)
		return 0, nil
	}
	return 0, fmt.Errorf("durablestreams: subscription %q, stream %q: %w", cr.s.id, sr.link.Path, err)
}

// setFatal makes Produce fail with err.
func (p *SubscriptionProducer[T]) setFatal(err error) {
	p.mu.Lock()
	if p.fatal == nil {
		p.fatal = err
	}
	p.mu.Unlock()
	p.signal()
}

// signal wakes a Produce waiting for a stream.
func (p *SubscriptionProducer[T]) signal() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// isDraining reports whether the run is draining or over.
func (p *SubscriptionProducer[T]) isDraining() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draining
}

// PrepareForDraining stops claiming and reading: the streams being read are no longer read,
// and the claims held are acked up to what the pipeline finishes and released. It does not
// block.
func (p *SubscriptionProducer[T]) PrepareForDraining() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.draining {
		p.draining = true
		close(p.drainCh)
	}
}

// Close ends the run: it stops claiming and reading (if PrepareForDraining has not), and for
// every claim held saves the committed positions, acks them (done, when every stream of the
// claim was read to its tail and committed) and releases the claim. The pipeline calls it
// after the last acknowledgement; ctx bounds the final saves and acks (when it ends, they
// are abandoned: the leases pass on the server's clock, and the next holders read again
// from what was saved). It returns the failures of the final saves and acks. It is safe to
// call more than once, and before Produce; later calls return nil.
func (p *SubscriptionProducer[T]) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if !p.draining {
		p.draining = true
		close(p.drainCh)
	}
	close(p.closeCh)
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		p.runCancel()
		<-done
	}
	p.runCancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// closeFailed records a failure of the end of the run, for Close.
func (p *SubscriptionProducer[T]) closeFailed(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// warnOnly passes on the records of Warn level and above: the per-stream producers' start
// and checkpoint messages would be one per stream per claim.
type warnOnly struct{ h slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.h.Enabled(ctx, l)
}
func (w warnOnly) Handle(ctx context.Context, r slog.Record) error { return w.h.Handle(ctx, r) }
func (w warnOnly) WithAttrs(as []slog.Attr) slog.Handler           { return warnOnly{w.h.WithAttrs(as)} }
func (w warnOnly) WithGroup(name string) slog.Handler              { return warnOnly{w.h.WithGroup(name)} }
