package producertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// env is one subtest's fixture: the producer, its input and the suite's acknowledger.
type env[T any] struct {
	t   tester
	f   Features
	lim limits
	fx  Fixture[T]
	rec *recorder

	closeMu sync.Mutex
	closed  bool // the subtest (or a pipeline) closed the producer: no Close at cleanup
}

// setup makes a fresh fixture for t. It first registers the goroutine check, so that it
// runs after every other cleanup: the producer's Close (registered last, run first) and
// the fixture's own.
func (s *suite[T]) setup(t tester) *env[T] {
	t.Helper()
	checkGoroutines(t, s.lim.leak)
	e := &env[T]{t: t, f: s.f, lim: s.lim, rec: &recorder{}}
	e.fx = s.newFixture(t, e.rec)
	if e.fx.Producer == nil {
		t.Fatal("producertest: the fixture has no Producer")
	}
	if len(e.fx.Input) < MinInput {
		t.Fatalf("producertest: the fixture's Input holds %d messages, the suite needs at least %d", len(e.fx.Input), MinInput)
	}
	for i := range e.fx.Input {
		if j := e.index(e.fx.Input[i]); j != i {
			t.Fatalf("producertest: Input[%d] equals Input[%d] (%v): the suite tells messages apart by their data", i, j, e.fx.Input[i])
		}
	}
	t.Cleanup(func() {
		e.closeMu.Lock()
		done := e.closed
		e.closeMu.Unlock()
		if c, ok := e.fx.Producer.(pipeline.Closer); ok && !done {
			if err := e.close(c, e.lim.step); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return e
}

// markClosed records that the producer was closed by the subtest.
func (e *env[T]) markClosed() {
	e.closeMu.Lock()
	e.closed = true
	e.closeMu.Unlock()
}

// close calls c.Close with a context of its own, failing when it does not return within d.
func (e *env[T]) close(c pipeline.Closer, d time.Duration) error {
	e.markClosed()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Close(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(d + time.Second):
		return fmt.Errorf("did not return within %v", d)
	}
}

// index returns the position of v in the input, or -1.
func (e *env[T]) index(v T) int {
	return slices.IndexFunc(e.fx.Input, func(w T) bool { return reflect.DeepEqual(v, w) })
}

// call is what one Produce call returned.
type call[T any] struct {
	msgs []pipeline.Message[T] // the buffer the call was given, msgs[:n] filled
	n    int
	err  error
}

// start calls Produce with a fresh buffer of demand d in a goroutine of its own and returns
// the channel its result arrives on.
func (e *env[T]) start(ctx context.Context, d int) <-chan call[T] {
	out := make(chan call[T], 1)
	msgs := make([]pipeline.Message[T], d)
	go func() {
		n, err := e.fx.Producer.Produce(ctx, msgs)
		out <- call[T]{msgs: msgs, n: n, err: err}
	}()
	return out
}

// produce calls Produce with a demand of d, failing t when it does not return within
// timeout, and checks what holds of every call (see checkCall). It returns the messages,
// copied out of the call's buffer.
func (e *env[T]) produce(ctx context.Context, d int, timeout time.Duration, deferred bool) ([]pipeline.Message[T], error) {
	e.t.Helper()
	select {
	case c := <-e.start(ctx, d):
		return e.checkCall(c, deferred), c.err
	case <-time.After(timeout):
		e.t.Fatalf("Produce with a demand of %d did not return within %v", d, timeout)
		return nil, nil
	}
}

// checkCall checks what holds of every Produce call: 0 <= n <= demand, never 0 messages
// with a nil error, nothing written past n, and messages that carry the acknowledger
// Features.Acks says (and, unless deferred, that did not fail). It returns msgs[:n], copied.
func (e *env[T]) checkCall(c call[T], deferred bool) []pipeline.Message[T] {
	e.t.Helper()
	d := len(c.msgs)
	if c.n < 0 || c.n > d {
		e.t.Fatalf("Produce returned %d messages for a demand of %d (err %v)", c.n, d, c.err)
	}
	if c.n == 0 && c.err == nil {
		e.t.Fatalf("Produce returned no message and a nil error for a demand of %d: it must block until it has one, or return an error", d)
	}
	for i := c.n; i < d; i++ {
		if !reflect.ValueOf(&c.msgs[i]).Elem().IsZero() {
			e.t.Errorf("Produce returned %d messages for a demand of %d but wrote message %d too (%+v): the pipeline gives it zero messages", c.n, d, i, c.msgs[i].Metadata)
			break
		}
	}
	msgs := slices.Clone(c.msgs[:c.n])
	for i := range msgs {
		if err := e.checkAcknowledger(&msgs[i]); err != nil {
			e.t.Errorf("message %d of a call: %v", i, err)
		}
		if !deferred && msgs[i].Failed() {
			e.t.Errorf("message %d of a call arrived failed: %v", i, msgs[i].Err())
		}
	}
	return msgs
}

// checkAcknowledger checks that m carries the acknowledger Features.Acks says.
func (e *env[T]) checkAcknowledger(m *pipeline.Message[T]) error {
	a := m.Acknowledger()
	switch e.f.Acks {
	case AcksGiven:
		if r, ok := a.(*recorder); !ok || r != e.rec {
			return fmt.Errorf("acknowledger is %T, want the one the fixture was given (Features.Acks is AcksGiven)", a)
		}
	case AcksOwn:
		if a == nil {
			return errors.New("no acknowledger (Features.Acks is AcksOwn)")
		}
		if _, ok := a.(*recorder); ok {
			return errors.New("acknowledger is the one the fixture was given (Features.Acks is AcksOwn, not AcksGiven)")
		}
	case AcksNone:
		if a != nil {
			return fmt.Errorf("acknowledger is %T (Features.Acks is AcksNone)", a)
		}
	}
	return nil
}

// ack acknowledges msgs as successful, one by one, as a pipeline eventually would.
func ackAll[T any](msgs []pipeline.Message[T]) {
	for i := range msgs {
		if a := msgs[i].Acknowledger(); a != nil {
			a.Ack([]ack.Ref{msgs[i].Ref()}, nil)
		}
	}
}

// tally counts the messages received, by their index in the input, in the order received.
type tally[T any] struct {
	e      *env[T]
	mu     sync.Mutex
	count  []int
	total  int
	order  map[string][]int   // per sequence (Metadata.Stream): input indices, in the order received
	pos    map[string][]int64 // per sequence: positions, in the order received
	stream []string           // per input index: the sequence it arrived in
}

func (e *env[T]) newTally() *tally[T] {
	return &tally[T]{e: e, count: make([]int, len(e.fx.Input)), order: map[string][]int{}, pos: map[string][]int64{},
		stream: make([]string, len(e.fx.Input))}
}

// add counts msgs, failing t for a message that is not in the input or that was received
// before. It is safe for concurrent use.
func (c *tally[T]) add(msgs []pipeline.Message[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range msgs {
		m := &msgs[i]
		c.total++
		k := c.e.index(m.Data)
		if k < 0 {
			c.e.t.Errorf("a message's data %v is not in the input (%s position %d)", m.Data, quote(m.Metadata.Stream), m.Metadata.Position)
			continue
		}
		c.count[k]++
		if c.count[k] > 1 {
			c.e.t.Errorf("message %d of the input (%v) was delivered %d times", k, m.Data, c.count[k])
			continue
		}
		s := m.Metadata.Stream
		c.stream[k] = s
		c.order[s] = append(c.order[s], k)
		c.pos[s] = append(c.pos[s], m.Metadata.Position)
	}
}

// received returns how many messages were counted, duplicates included.
func (c *tally[T]) received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// check fails t unless every input message was received (when all), in the order of the
// input within each sequence (when Features.Ordered and inOrder: the messages were received
// in the order produced), with Metadata.Position numbering each sequence from 0 (when
// Features.Positions: in the order received when inOrder, else as a set).
func (c *tally[T]) check(all, inOrder bool) {
	c.e.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		var missing []int
		for k, n := range c.count {
			if n == 0 {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			c.e.t.Errorf("%d of %d input messages were never delivered (input indices %v)", len(missing), len(c.count), head(missing))
		}
	}
	for s, ks := range c.order {
		if c.e.f.Ordered && inOrder && !slices.IsSorted(ks) {
			c.e.t.Errorf("Features.Ordered, but sequence %s came in the input order %v", quote(s), head(ks))
		}
		if !c.e.f.Positions {
			continue
		}
		ps := c.pos[s]
		if !inOrder {
			ps = slices.Clone(ps)
			slices.Sort(ps)
		}
		for j, p := range ps {
			if p != int64(j) {
				c.e.t.Errorf("Features.Positions, but message %d of sequence %s has Position %d (positions %v)", j, quote(s), p, head(ps))
				break
			}
		}
	}
}

// head returns the first few elements of s, for messages.
func head[E any](s []E) []E {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// recorder is the acknowledger the suite gives every fixture: it counts what reaches it.
type recorder struct {
	mu                 sync.Mutex
	successful, failed int
}

// Ack implements ack.Acknowledger.
func (r *recorder) Ack(successful []ack.Ref, failed []ack.Failure) {
	r.mu.Lock()
	r.successful += len(successful)
	r.failed += len(failed)
	r.mu.Unlock()
}

func (r *recorder) counts() (successful, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.successful, r.failed
}

// checkGoroutines fails t when goroutines started after now are still running once its
// other cleanups have run, waiting up to timeout for them to end. It compares goroutines by
// their ids, so that goroutines of earlier tests still on their way out do not hide new
// ones; the list is polled: no event says that a goroutine has exited.
func checkGoroutines(t tester, timeout time.Duration) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(timeout)
		for {
			var left []string
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok {
					left = append(left, stack)
				}
			}
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				slices.Sort(left)
				t.Errorf("%d goroutines started during the subtest are still running %v after it, the producer's Close and the fixture's cleanups:\n\n%s",
					len(left), timeout, strings.Join(left, "\n\n"))
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// goroutines returns the stacks of the running goroutines, by id.
func goroutines() map[string]string {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		// "goroutine 123 [chan receive]:\n..."
		f := strings.Fields(g)
		if len(f) >= 2 && f[0] == "goroutine" {
			m[f[1]] = g
		}
	}
	return m
}
