package pipeline

import (
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// Defaults of the options whose zero value means a default.
const (
	DefaultMaxDemand       = 64
	DefaultBatchSize       = 100
	DefaultBatchTimeout    = time.Second
	DefaultShutdownTimeout = 30 * time.Second
	DefaultMaxRetries      = 3
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultMaxRetryBackoff = 10 * time.Second
	DefaultRateInterval    = time.Second
)

// Options is the declarative definition of a pipeline: its producer, processor pools,
// batchers and policies. The zero value of each field means the default its comment ends
// with. [New] validates it (see [Options.Validate]); nothing starts until [Pipeline.Run].
type Options[T any] struct {
	// Name names the pipeline in logs and observer events. Default: "pipeline".
	Name string

	// Producer is where messages come from. Required.
	Producer Producer[T]
	// ProducerConcurrency is how many goroutines call Producer.Produce at once (see
	// [Producer] on concurrency). Default: 1.
	ProducerConcurrency int
	// RateLimit caps how many messages the producer is asked for per interval; it can be
	// changed while running with [Pipeline.SetRateLimit]. Default: no limit.
	RateLimit RateLimit

	// Processors are the processor pools, in the order messages go through them: each
	// message is handled by one goroutine of the first pool, then by one of the second, and so
	// on; a failed message skips the pools after it. At least one is required.
	Processors []ProcessorOptions[T]

	// Batchers are the named batchers messages can be routed to after the processors.
	// Default: none (every message is acknowledged after its last processor).
	Batchers map[string]BatcherOptions[T]
	// DefaultBatcher is the batcher a message goes to unless a handler routed it with
	// [Message.SetBatcher]. It must name one of Batchers. Default: "" (no batcher).
	DefaultBatcher string

	// MaxInFlight bounds the messages fetched from the producer and not yet acknowledged: the
	// producer is not asked for more while that many are in flight. Default: the sum of the
	// stages' capacities: for each processor pool 2 × Concurrency × MaxDemand, and for each
	// batcher (Concurrency + 1) × BatchSize.
	MaxInFlight int

	// Failure sets what happens to failed messages. Default: [RetryTransient] (bad data is
	// acknowledged as failed and counts as done; any other failure is retried until it
	// succeeds), with no failure handler.
	Failure FailureOptions[T]

	// ShutdownTimeout bounds a drain, from its start to the last acknowledgement. Until it
	// passes, transient failures are still retried (a sink that comes back in time gets its
	// messages written). When it passes, handlers' context is cancelled, retry waits end,
	// queued work is dropped, no more acknowledgements are delivered, and Run returns a
	// [*ShutdownTimeoutError] saying what was left. Run still waits for handler (and Produce)
	// calls already running to return, so that no goroutine outlives it: they must honour
	// their context. Default: 30s.
	ShutdownTimeout time.Duration

	// Observer receives the pipeline's events. Default: none.
	Observer Observer
	// Logger receives the pipeline's log records (failures, halts, producer errors).
	// Default: slog.Default().
	Logger *slog.Logger
}

// ProcessorOptions defines one processor pool.
type ProcessorOptions[T any] struct {
	// Name names the pool in observer events. Default: "default"; required (and unique) when
	// there are several pools.
	Name string
	// Handler handles each message. Required. It may implement [MessagePreparer].
	Handler Handler[T]
	// Concurrency is the number of goroutines of the pool. Default: runtime.GOMAXPROCS(0).
	Concurrency int
	// MaxDemand is the most messages one processor takes at a time. In the first pool it is
	// also the most the producer is asked for at once, and the pool's room is
	// 2 × Concurrency × MaxDemand messages (a chunk in hand and one queued per processor): the
	// producer is not asked for more than the room left. Default: 64.
	MaxDemand int
	// MinDemand is the least the producer is asked for while messages are in flight: when
	// fewer than MinDemand fit under MaxInFlight, the pipeline waits for acknowledgements
	// rather than ask for a handful. Only the first pool's matters; it must be < MaxDemand.
	// Default: MaxDemand / 2.
	MinDemand int
	// PartitionBy, when set, routes messages with the same partition to the same goroutine of
	// the pool (partition % Concurrency), so that their order is kept through the pool. For a
	// string key use [PartitionByKey]: PartitionByKey(func(m *Message[T]) string { return
	// m.Data.UserID }). It must be safe for concurrent use. Default: messages go to whichever
	// goroutine is free.
	PartitionBy func(m *Message[T]) uint64
}

// BatcherOptions defines one batcher.
type BatcherOptions[T any] struct {
	// Handler handles each batch. Required.
	Handler BatchHandler[T]
	// BatchSize is the number of messages at which a batch closes. Default: 100.
	BatchSize int
	// MaxBatchBytes, when > 0, closes a batch before the next message would take it past this
	// many bytes by SizeOf (a message larger than that alone makes a batch of one). Requires
	// SizeOf. Default: 0, no byte limit.
	MaxBatchBytes int
	// SizeOf returns a message's size in bytes, for MaxBatchBytes and [BatchInfo.Bytes]. It
	// is called from the batcher's goroutine. Default: none.
	SizeOf func(m *Message[T]) int
	// BatchTimeout is how long a batch stays open after its first message before it closes
	// anyway. Default: 1s.
	BatchTimeout time.Duration
	// Concurrency is the number of batch processors handling this batcher's batches.
	// Default: 1.
	Concurrency int
	// Ordered, when true, sends every batch of one key to the same batch processor, so that
	// one key's batches are handled one at a time and in the order they closed. Default:
	// false (any free batch processor takes the next batch).
	Ordered bool
}

// FailurePolicy says what a failed message leads to. Every policy tells two kinds of
// failure apart (see [IsPermanent]):
//
//   - bad data: an error marked [Permanent] (or with a Permanent() bool method returning
//     true anywhere in its chain), a message that arrived failed from its producer (one that
//     could not be decoded), a handler's panic, a message routed to an unknown batcher. No
//     retry can fix it.
//   - a transient failure: any other error of a processor's or a batch handler. A sink or
//     service that is unavailable fails this way, and a retry may succeed.
type FailurePolicy int

const (
	// RetryTransient, the default, loses nothing when a sink or service is down: a message
	// that failed transiently goes through the handler that failed it (its processor's, or
	// its batcher's) again, from its state before that handler, with exponential backoff
	// from RetryBackoff up to MaxRetryBackoff, for as long as the pipeline runs, until it
	// succeeds or fails with bad data. Meanwhile it is not acknowledged, so no offset is
	// committed past it, and it holds its place under [Options.MaxInFlight], so the producer
	// is no longer asked for more once everything in flight waits on the outage. Bad data
	// goes to the failure handler and is acknowledged as failed: it counts as done. A drain
	// during an outage goes on retrying until [Options.ShutdownTimeout], then leaves the
	// messages still failing unacknowledged (a restart delivers them again) and Run returns a
	// [*ShutdownTimeoutError] that counts them.
	RetryTransient FailurePolicy = iota
	// FailWithoutRetry retries nothing: every failed message, transient or bad data, goes to
	// the failure handler and is acknowledged as failed; it counts as done, and the pipeline
	// goes on. A sink outage fails (and commits past) every message it touches.
	FailWithoutRetry
	// RetryThenFail retries a transient failure as RetryTransient does, but at most
	// MaxRetries more times; a message still failing is then treated as under
	// FailWithoutRetry, as is bad data at once.
	RetryThenFail
	// HaltOnFailure stops the pipeline at the first failed message, of either kind: it goes
	// to the failure handler and is acknowledged with [ack.Failure.Halt] set (so the
	// committed offset stays before it), the pipeline drains, and Run returns a
	// [*HaltError] naming it.
	HaltOnFailure
)

// The policies' former names.
const (
	// Deprecated: use FailWithoutRetry, the same policy.
	FailContinue = FailWithoutRetry
	// Deprecated: use RetryThenFail, the same policy (which no longer retries bad data).
	FailRetry = RetryThenFail
	// Deprecated: use HaltOnFailure, the same policy.
	FailHalt = HaltOnFailure
)

// String returns the policy's Go name, such as "RetryTransient".
func (p FailurePolicy) String() string {
	switch p {
	case RetryTransient:
		return "RetryTransient"
	case FailWithoutRetry:
		return "FailWithoutRetry"
	case RetryThenFail:
		return "RetryThenFail"
	case HaltOnFailure:
		return "HaltOnFailure"
	}
	return "FailurePolicy(" + strconv.Itoa(int(p)) + ")"
}

// retries reports whether the policy retries transient failures.
func (p FailurePolicy) retries() bool { return p == RetryTransient || p == RetryThenFail }

// FailureOptions sets what happens to failed messages.
type FailureOptions[T any] struct {
	// Policy is [RetryTransient], [FailWithoutRetry], [RetryThenFail] or [HaltOnFailure].
	// Default: RetryTransient.
	Policy FailurePolicy
	// MaxRetries is how many more times RetryThenFail sends a transiently failed message
	// through its handler. Only with RetryThenFail. Default: 3.
	MaxRetries int
	// RetryBackoff is the wait before the first retry; each next retry waits twice as long,
	// up to MaxRetryBackoff. Only with RetryTransient and RetryThenFail. Default: 100ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait between retries. Only with RetryTransient and
	// RetryThenFail. Default: 10s (or RetryBackoff, if larger).
	MaxRetryBackoff time.Duration
	// Handler, when set, sees every failed message before it is acknowledged (see
	// [FailureHandler]): under RetryTransient only bad data, so that a dead-letter handler
	// receives nothing a retry could have written. Default: none.
	Handler FailureHandler[T]
}

// RateLimit caps the messages a producer is asked for: at most Messages per Interval. The
// zero value means no limit.
type RateLimit struct {
	// Messages is the most messages per interval; 0 means no limit.
	Messages int
	// Interval is the length of an interval. Default: 1s when Messages is set.
	Interval time.Duration
}

func (l RateLimit) problems(path string) []FieldError {
	var ps []FieldError
	if l.Messages < 0 {
		ps = append(ps, FieldError{Field: path + ".Messages", Problem: "must be >= 0"})
	}
	if l.Interval < 0 {
		ps = append(ps, FieldError{Field: path + ".Interval", Problem: "must be >= 0"})
	}
	if l.Messages == 0 && l.Interval > 0 {
		ps = append(ps, FieldError{Field: path + ".Messages", Problem: "must be > 0 when Interval is set"})
	}
	return ps
}

func (l RateLimit) withDefaults() RateLimit {
	if l.Messages > 0 && l.Interval == 0 {
		l.Interval = DefaultRateInterval
	}
	return l
}

// Validate reports every problem with o at once, as an [*OptionsError] listing each bad field
// by its path; nil when o is valid. It does not change o.
func (o *Options[T]) Validate() error {
	_, err := o.resolve()
	return err
}

// resolve validates o and returns a copy with every default filled in.
func (o *Options[T]) resolve() (Options[T], error) {
	r := *o
	var ps []FieldError
	bad := func(field, format string, args ...any) {
		ps = append(ps, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if r.Name == "" {
		r.Name = "pipeline"
	}
	if r.Producer == nil {
		bad("Producer", "required")
	}
	switch {
	case r.ProducerConcurrency < 0:
		bad("ProducerConcurrency", "must be >= 0, got %d", r.ProducerConcurrency)
	case r.ProducerConcurrency == 0:
		r.ProducerConcurrency = 1
	}
	ps = append(ps, r.RateLimit.problems("RateLimit")...)
	r.RateLimit = r.RateLimit.withDefaults()

	if len(r.Processors) == 0 {
		bad("Processors", "at least one processor pool is required")
	}
	r.Processors = slices.Clone(r.Processors)
	names := map[string]int{}
	for i := range r.Processors {
		p := &r.Processors[i]
		path := "Processors[" + strconv.Itoa(i) + "]"
		if p.Name == "" {
			if len(r.Processors) > 1 {
				bad(path+".Name", "required when there are several processor pools")
			} else {
				p.Name = "default"
			}
		} else if j, dup := names[p.Name]; dup {
			bad(path+".Name", "%q is also the name of Processors[%d]", p.Name, j)
		}
		if p.Name != "" {
			if _, dup := names[p.Name]; !dup {
				names[p.Name] = i
			}
		}
		if p.Handler == nil {
			bad(path+".Handler", "required")
		}
		switch {
		case p.Concurrency < 0:
			bad(path+".Concurrency", "must be >= 0, got %d", p.Concurrency)
		case p.Concurrency == 0:
			p.Concurrency = runtime.GOMAXPROCS(0)
		}
		switch {
		case p.MaxDemand < 0:
			bad(path+".MaxDemand", "must be >= 0, got %d", p.MaxDemand)
		case p.MaxDemand == 0:
			p.MaxDemand = DefaultMaxDemand
		}
		switch {
		case p.MinDemand < 0:
			bad(path+".MinDemand", "must be >= 0, got %d", p.MinDemand)
		case p.MinDemand == 0:
			p.MinDemand = p.MaxDemand / 2
		case p.MaxDemand > 0 && p.MinDemand >= p.MaxDemand:
			bad(path+".MinDemand", "must be < MaxDemand (%d), got %d", p.MaxDemand, p.MinDemand)
		}
	}

	batcherNames := slices.Sorted(maps.Keys(r.Batchers))
	if len(r.Batchers) > 0 {
		bs := make(map[string]BatcherOptions[T], len(r.Batchers))
		for _, name := range batcherNames {
			b := r.Batchers[name]
			path := "Batchers[" + strconv.Quote(name) + "]"
			if name == "" {
				bad(path, "a batcher's name must not be empty")
			}
			if b.Handler == nil {
				bad(path+".Handler", "required")
			}
			switch {
			case b.BatchSize < 0:
				bad(path+".BatchSize", "must be > 0, got %d", b.BatchSize)
			case b.BatchSize == 0:
				b.BatchSize = DefaultBatchSize
			}
			if b.MaxBatchBytes < 0 {
				bad(path+".MaxBatchBytes", "must be >= 0, got %d", b.MaxBatchBytes)
			}
			if b.MaxBatchBytes > 0 && b.SizeOf == nil {
				bad(path+".SizeOf", "required when MaxBatchBytes is set")
			}
			switch {
			case b.BatchTimeout < 0:
				bad(path+".BatchTimeout", "must be > 0, got %v", b.BatchTimeout)
			case b.BatchTimeout == 0:
				b.BatchTimeout = DefaultBatchTimeout
			}
			switch {
			case b.Concurrency < 0:
				bad(path+".Concurrency", "must be >= 0, got %d", b.Concurrency)
			case b.Concurrency == 0:
				b.Concurrency = 1
			}
			bs[name] = b
		}
		r.Batchers = bs
	}
	if r.DefaultBatcher != "" {
		if _, ok := r.Batchers[r.DefaultBatcher]; !ok {
			bad("DefaultBatcher", "%q is not one of Batchers %q", r.DefaultBatcher, batcherNames)
		}
	}

	switch {
	case r.MaxInFlight < 0:
		bad("MaxInFlight", "must be >= 0, got %d", r.MaxInFlight)
	case r.MaxInFlight == 0:
		for _, p := range r.Processors {
			r.MaxInFlight += 2 * p.Concurrency * p.MaxDemand
		}
		for _, b := range r.Batchers {
			r.MaxInFlight += (b.Concurrency + 1) * b.BatchSize
		}
	}

	f := &r.Failure
	switch f.Policy {
	case RetryTransient, FailWithoutRetry, RetryThenFail, HaltOnFailure:
	default:
		bad("Failure.Policy", "unknown policy %d", int(f.Policy))
	}
	if f.Policy == RetryThenFail {
		switch {
		case f.MaxRetries < 0:
			bad("Failure.MaxRetries", "must be >= 0, got %d", f.MaxRetries)
		case f.MaxRetries == 0:
			f.MaxRetries = DefaultMaxRetries
		}
	} else if f.MaxRetries != 0 {
		bad("Failure.MaxRetries", "only with Policy RetryThenFail (Policy is %v)", f.Policy)
	}
	if f.Policy.retries() {
		switch {
		case f.RetryBackoff < 0:
			bad("Failure.RetryBackoff", "must be >= 0, got %v", f.RetryBackoff)
		case f.RetryBackoff == 0:
			f.RetryBackoff = DefaultRetryBackoff
		}
		switch {
		case f.MaxRetryBackoff < 0:
			bad("Failure.MaxRetryBackoff", "must be >= 0, got %v", f.MaxRetryBackoff)
		case f.MaxRetryBackoff == 0:
			f.MaxRetryBackoff = max(DefaultMaxRetryBackoff, f.RetryBackoff)
		case f.MaxRetryBackoff < f.RetryBackoff:
			bad("Failure.MaxRetryBackoff", "must be >= RetryBackoff (%v), got %v", f.RetryBackoff, f.MaxRetryBackoff)
		}
	} else {
		if f.RetryBackoff != 0 {
			bad("Failure.RetryBackoff", "only with Policy RetryTransient or RetryThenFail (Policy is %v)", f.Policy)
		}
		if f.MaxRetryBackoff != 0 {
			bad("Failure.MaxRetryBackoff", "only with Policy RetryTransient or RetryThenFail (Policy is %v)", f.Policy)
		}
	}

	switch {
	case r.ShutdownTimeout < 0:
		bad("ShutdownTimeout", "must be >= 0, got %v", r.ShutdownTimeout)
	case r.ShutdownTimeout == 0:
		r.ShutdownTimeout = DefaultShutdownTimeout
	}
	if r.Observer == nil {
		r.Observer = NopObserver{}
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if len(ps) > 0 {
		return Options[T]{}, optcheck.Of("pipeline", nil, ps)
	}
	return r, nil
}
