package producertest

import (
	"strconv"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// AckMode says where a producer's messages are acknowledged.
type AckMode int

const (
	// AcksGiven: every message carries the acknowledger the fixture's constructor was
	// given (the suite's own, which records what reaches it), as the producers of package
	// producer do with the acknowledger they are made with.
	AcksGiven AckMode = iota
	// AcksOwn: every message carries an acknowledger of the producer's own, for instance
	// the [ack.Tracker] of a producer that commits positions. The suite sees what reaches it
	// by passing the acknowledgements on, and what the producer made of them through
	// [Fixture].Acknowledged.
	AcksOwn
	// AcksNone: messages carry no acknowledger (a producer made with a nil one).
	AcksNone
)

// String returns the mode's Go name, such as "AcksGiven".
func (m AckMode) String() string {
	switch m {
	case AcksGiven:
		return "AcksGiven"
	case AcksOwn:
		return "AcksOwn"
	case AcksNone:
		return "AcksNone"
	}
	return "AckMode(" + strconv.Itoa(int(m)) + ")"
}

// Features says what a producer does beyond the contract every producer keeps, as
// Watermill's pub/sub suite is told; the suite checks each claim, and skips the subtests
// of what a producer does not claim. The zero value is a finite, unordered producer that
// acknowledges to the given acknowledger and implements no optional interface.
type Features struct {
	// Endless: the input does not end. After the fixture's Input the producer waits for
	// more (a live read, an open channel), and it never returns [pipeline.ErrEndOfInput].
	// Otherwise the input is finite: the producer gives the Input and then ends it.
	Endless bool
	// Ordered: the messages of each sequence (each [pipeline.Metadata].Stream; a producer
	// of one sequence leaves it empty) come in the order of the Input.
	Ordered bool
	// Positions: [pipeline.Metadata].Position numbers the messages of each sequence 0, 1,
	// 2, … in the order of the Input, as a stable-position producer reading its sequences
	// from their beginning does.
	Positions bool
	// Acks says where messages are acknowledged.
	Acks AckMode
	// DrainNotifier, Closer and Decoder: the producer implements [pipeline.DrainNotifier],
	// [pipeline.Closer], [pipeline.Decoder]. The suite fails a claim the producer's type
	// does not back, and an interface the producer implements but does not claim.
	DrainNotifier, Closer, Decoder bool
	// Concurrent: the producer is safe for concurrent Produce calls (a pipeline may run it
	// with ProducerConcurrency above 1).
	Concurrent bool
}

// Fixture is a fresh producer under test and what the suite needs to know of it.
type Fixture[T any] struct {
	// Producer is the producer under test, not used before: the suite calls it directly,
	// as a pipeline would, or runs it in a pipeline. Required.
	Producer pipeline.Producer[T]
	// Input is the data of the messages the producer gives, in order: every message of a
	// finite producer; for an endless one, the messages it has before it waits for more.
	// The suite tells messages apart by their data, compared with [reflect.DeepEqual], so
	// the values must differ from each other; it needs at least [MinInput] of them.
	// Required.
	Input []T
	// Activity, when set, counts the producer's work that must stop while it has nothing
	// to give: requests sent to a server, values pulled from an iterator. While a Produce
	// call waits with nothing to give, the count may grow by at most [IdleActivity] (a
	// long-poll renewed, a heartbeat). Default: not checked.
	Activity func() int64
	// Acknowledged, when set, reports how many messages the producer has taken as
	// acknowledged: for a producer that commits positions, the messages before its
	// committed position (every sequence summed). The suite reads it after a pipeline run
	// has ended (Close included), when it must equal the number of messages produced.
	// Meant for [AcksOwn]. Default: not checked.
	Acknowledged func() int
}

// Limits of the suite. They bound how long a producer may take before a subtest fails; they
// never decide whether a correct producer passes, so a slow or loaded machine does not make
// the suite flaky.
const (
	// MinInput is the least number of messages a fixture's Input must hold: the drain
	// subtest stops a pipeline whose in-flight bound is below it, in the middle of the input.
	MinInput = 8
	// StepTimeout is the most one Produce call with something to give, one pipeline run and
	// one Close may take.
	StepTimeout = 30 * time.Second
	// CancelTimeout is the most a waiting Produce may take to return once its context is
	// cancelled, and PrepareForDraining and a second Close to return at all.
	CancelTimeout = 10 * time.Second
	// IdleWindow is how long the suite watches a Produce call that has nothing to give: it
	// must not return, and Activity must grow by at most IdleActivity.
	IdleWindow = 100 * time.Millisecond
	// IdleActivity is the most Fixture.Activity may grow by during IdleWindow.
	IdleActivity = 3
	// LeakTimeout is how long the suite waits for the goroutine count to come back to its
	// level before a subtest, after the subtest, the producer's Close and the fixture's
	// cleanups.
	LeakTimeout = 10 * time.Second
)

// TestProducer runs the producer contract ([pipeline.Producer], and the optional
// interfaces the producer claims in f) as subtests of t.
//
// newFixture is called once per subtest and must return a fresh producer over its known
// input; a is the suite's acknowledger, which a producer with f.Acks == [AcksGiven] must
// acknowledge to. newFixture may register cleanups with t (to stop a server, end a
// go-streams flow): they run after the producer's Close, before the suite checks that no
// goroutine was left behind. Everything the fixture starts must have ended by then.
//
// The subtests (see the package documentation for what each asserts) call the producer
// directly as a pipeline would, and run it in small pipelines ([pipeline.New]) through a
// wrapper that passes every acknowledgement on to the producer's acknowledger and counts
// it. They count goroutines, so they do not call t.Parallel, and the caller's test must not
// run in parallel with others. A subtest takes about IdleWindow plus the producer's own
// latency.
func TestProducer[T any](t *testing.T, f Features, newFixture func(t testing.TB, a ack.Acknowledger) Fixture[T]) {
	t.Helper()
	run(stdT{t}, f, newFixture, defaultLimits)
}

// limits are the suite's bounds; the suite's own tests shorten some of them.
type limits struct {
	step, cancel, idle, leak time.Duration
	idleActivity             int64
}

var defaultLimits = limits{step: StepTimeout, cancel: CancelTimeout, idle: IdleWindow, leak: LeakTimeout, idleActivity: IdleActivity}

// tester is what the suite needs of a test: testing.TB and subtests. The suite's own tests
// give it a fake that records failures, so that they can check it fails broken producers.
type tester interface {
	testing.TB
	run(name string, f func(t tester)) bool
}

// stdT is a *testing.T as a tester.
type stdT struct{ *testing.T }

func (t stdT) run(name string, f func(t tester)) bool {
	return t.Run(name, func(t *testing.T) { f(stdT{t}) })
}
