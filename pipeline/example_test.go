package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/producer"
)

type Order struct {
	ID     int
	Region string
	Cents  int
}

// A producer, a pool of processors and a batcher: orders are priced one by one, then
// inserted in batches of up to 3 per region.
func Example() {
	orders := []Order{{1, "eu", 0}, {2, "us", 0}, {3, "eu", 0}, {4, "eu", 0}, {5, "eu", 0}}
	p, err := pipeline.New(pipeline.Options[Order]{
		Producer: producer.Slice(orders, nil),
		Processors: []pipeline.ProcessorOptions[Order]{{
			Concurrency: 1, // one goroutine, so that this example prints in a set order
			Handler: pipeline.HandlerFunc[Order](func(_ context.Context, m *pipeline.Message[Order]) error {
				m.Data.Cents = 100 * m.Data.ID
				m.SetBatchKey(m.Data.Region) // only orders of one region share a batch
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Order]{
			"db": {
				BatchSize: 3,
				Handler: pipeline.BatchHandlerFunc[Order](func(_ context.Context, batch []pipeline.Message[Order], info pipeline.BatchInfo) error {
					var ids []string
					for _, m := range batch {
						ids = append(ids, strconv.Itoa(m.Data.ID))
					}
					fmt.Printf("insert %s orders %s (%v)\n", info.Key, strings.Join(ids, ","), info.Trigger)
					return nil
				}),
			},
		},
		DefaultBatcher: "db",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The input ends after the last order: the pipeline drains (flushing the partial
	// batches) and Run returns.
	fmt.Println("Run:", p.Run(context.Background()))
	// Output:
	// insert eu orders 1,3,4 (size)
	// insert us orders 2 (flush)
	// insert eu orders 5 (flush)
	// Run: <nil>
}

// New checks every option before anything starts, and names each bad one.
func ExampleNew_invalidOptions() {
	_, err := pipeline.New(pipeline.Options[Order]{
		Processors: []pipeline.ProcessorOptions[Order]{{Concurrency: -1}},
		Batchers:   map[string]pipeline.BatcherOptions[Order]{"db": {BatchSize: -5}},
	})
	var oe *pipeline.OptionsError
	if errors.As(err, &oe) {
		for _, p := range oe.Problems {
			fmt.Println(p)
		}
	}
	// Output:
	// Producer: required
	// Processors[0].Handler: required
	// Processors[0].Concurrency: must be >= 0, got -1
	// Batchers["db"].Handler: required
	// Batchers["db"].BatchSize: must be > 0, got -5
}

// chunkedSource is a producer the way a stream source is written: each Produce call is one
// fetched chunk, tracked by an ack.Tracker with the offset after it, and the tracker is
// every message's acknowledger, so that it computes the committed offset.
type chunkedSource struct {
	items   []string
	next    int
	tracker *ack.Tracker[int]
}

func (s *chunkedSource) Produce(ctx context.Context, msgs []pipeline.Message[string]) (int, error) {
	n := min(len(msgs), 2, len(s.items)-s.next) // this source fetches 2 at a time
	chunk, err := s.tracker.Track(ctx, n, s.next+n)
	if err != nil {
		return 0, err
	}
	for i := range n {
		msgs[i].Data = s.items[s.next+i]
		msgs[i].SetAcknowledger(s.tracker, ack.Ref{Ptr: chunk, N: uint64(i)})
		msgs[i].Metadata = pipeline.Metadata{Stream: "events", Position: int64(s.next + i)}
	}
	s.next += n
	if s.next == len(s.items) {
		return n, pipeline.ErrEndOfInput
	}
	return n, nil
}

// Under the FailHalt policy a failed message stops the pipeline, and the committed offset
// stays before its chunk, so that a restart reads it again.
func Example_committedOffset() {
	src := &chunkedSource{items: []string{"a", "b", "c", "poison", "e", "f"}, tracker: ack.NewTracker(0, ack.TrackerOptions{})}
	p, err := pipeline.New(pipeline.Options[string]{
		Producer: src,
		Processors: []pipeline.ProcessorOptions[string]{{
			Concurrency: 1,
			Handler: pipeline.HandlerFunc[string](func(_ context.Context, m *pipeline.Message[string]) error {
				if m.Data == "poison" {
					return errors.New("cannot parse")
				}
				return nil
			}),
		}},
		Failure: pipeline.FailureOptions[string]{Policy: pipeline.HaltOnFailure},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = p.Run(context.Background())
	var he *pipeline.HaltError
	if errors.As(err, &he) {
		fmt.Printf("halted on position %d of %s: %v\n", he.Metadata.Position, he.Metadata.Stream, he.Err)
	}
	fmt.Println("committed offset:", src.tracker.Committed())
	// Output:
	// halted on position 3 of events: cannot parse
	// committed offset: 2
}

// A failure handler sees failed messages before they are acknowledged: here a dead-letter
// list. If it returned an error, the messages would not count as done: the pipeline would
// halt instead.
func Example_failureHandler() {
	var mu sync.Mutex
	var deadLetters []string
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: producer.Slice([]int{4, 0, 2, 0}, nil),
		Processors: []pipeline.ProcessorOptions[int]{{
			Concurrency: 1,
			Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				if m.Data == 0 {
					return pipeline.Permanent(errors.New("division by zero")) // bad data: never retried
				}
				m.Data = 100 / m.Data
				return nil
			}),
		}},
		Failure: pipeline.FailureOptions[int]{
			Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range msgs {
					deadLetters = append(deadLetters, fmt.Sprintf("message %d: %v", m.Ref().N, m.Err()))
				}
				return nil
			}),
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", p.Run(context.Background()))
	fmt.Println(strings.Join(deadLetters, "\n"))
	// Output:
	// Run: <nil>
	// message 1: division by zero
	// message 3: division by zero
}

// Under the default policy a sink that is down loses nothing: its failures are retried until
// it is back, and only what it rejects for good, marked with Permanent, reaches the failure
// handler (here a dead-letter list).
func ExamplePermanent() {
	var deadLetters, written []int
	attempts := 0
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: producer.Slice([]int{1, 2, -3, 4}, nil),
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil }),
		}},
		Batchers: map[string]pipeline.BatcherOptions[int]{"db": {
			BatchSize: 4,
			Handler: pipeline.BatchHandlerFunc[int](func(_ context.Context, b []pipeline.Message[int], _ pipeline.BatchInfo) error {
				if attempts++; attempts <= 2 {
					return errors.New("connection refused") // transient: the batch is retried
				}
				for i := range b {
					if b[i].Data < 0 {
						b[i].Fail(pipeline.Permanent(fmt.Errorf("negative quantity %d", b[i].Data)))
						continue
					}
					written = append(written, b[i].Data)
				}
				return nil
			}),
		}},
		DefaultBatcher: "db",
		Failure: pipeline.FailureOptions[int]{
			RetryBackoff: time.Millisecond, // then 2 ms, 4 ms… up to MaxRetryBackoff
			Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
				for _, m := range msgs {
					deadLetters = append(deadLetters, m.Data) // IsPermanent(m.Err()) holds for each
				}
				return nil
			}),
		},
		Logger: slog.New(slog.DiscardHandler), // retries are logged as warnings
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", p.Run(context.Background()))
	fmt.Println("attempts:", attempts, "written:", written, "dead letters:", deadLetters)
	// Output:
	// Run: <nil>
	// attempts: 3 written: [1 2 4] dead letters: [-3]
}

// Fan-out: every order goes to the database and to analytics. Each batcher gets a copy; the
// order is acknowledged once both copies are written.
func ExampleMessage_SetBatchers() {
	var mu sync.Mutex
	var rows, revenue int
	acks := &ackCount{}
	p, err := pipeline.New(pipeline.Options[Order]{
		Producer: producer.Slice([]Order{{ID: 1, Cents: 250}, {ID: 2, Cents: 100}, {ID: 3, Cents: 75}}, nil),
		Processors: []pipeline.ProcessorOptions[Order]{{
			Handler: pipeline.HandlerFunc[Order](func(_ context.Context, m *pipeline.Message[Order]) error {
				m.SetBatchers("database", "analytics")
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[Order]{
			"database": {Handler: pipeline.BatchHandlerFunc[Order](func(_ context.Context, b []pipeline.Message[Order], _ pipeline.BatchInfo) error {
				mu.Lock()
				defer mu.Unlock()
				rows += len(b) // an INSERT of the batch
				return nil
			})},
			"analytics": {Handler: pipeline.BatchHandlerFunc[Order](func(_ context.Context, b []pipeline.Message[Order], _ pipeline.BatchInfo) error {
				mu.Lock()
				defer mu.Unlock()
				for _, m := range b {
					revenue += m.Data.Cents // reads the shared data, never changes it
				}
				return nil
			})},
		},
		Observer: acks,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", p.Run(context.Background()))
	fmt.Println("rows:", rows, "revenue:", revenue, "acknowledged:", acks.n.Load())
	// Output:
	// Run: <nil>
	// rows: 3 revenue: 425 acknowledged: 3
}

// ackCount counts acknowledged messages.
type ackCount struct {
	pipeline.NopObserver
	n atomic.Int64
}

func (a *ackCount) Acked(e pipeline.AckEvent) { a.n.Add(int64(e.Successful + e.Failed)) }

// PartitionByKey keeps each account's events in order through a pool of 4 goroutines, from a
// string key: no hash function to write.
func ExamplePartitionByKey() {
	type Event struct {
		Account string
		Seq     int
	}
	var mu sync.Mutex
	last := map[string]int{}
	inOrder := true
	p, err := pipeline.New(pipeline.Options[Event]{
		Producer: producer.Slice([]Event{{"a", 1}, {"b", 1}, {"a", 2}, {"c", 1}, {"b", 2}, {"a", 3}}, nil),
		Processors: []pipeline.ProcessorOptions[Event]{{
			Concurrency: 4,
			PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[Event]) string { return m.Data.Account }),
			Handler: pipeline.HandlerFunc[Event](func(_ context.Context, m *pipeline.Message[Event]) error {
				mu.Lock()
				defer mu.Unlock()
				inOrder = inOrder && m.Data.Seq == last[m.Data.Account]+1
				last[m.Data.Account] = m.Data.Seq
				return nil
			}),
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", p.Run(context.Background()))
	fmt.Println("in order per account:", inOrder, last)
	// Output:
	// Run: <nil>
	// in order per account: true map[a:3 b:2 c:1]
}

// Observers sends every event to several observers: typically the metrics' and one of your
// own.
func ExampleObservers() {
	mine := &ackCount{}
	var metrics pipeline.Observer = pipeline.NopObserver{} // for instance a *metrics.Metrics
	p, err := pipeline.New(pipeline.Options[int]{
		Producer: producer.Slice([]int{1, 2, 3}, nil),
		Processors: []pipeline.ProcessorOptions[int]{{
			Handler: pipeline.HandlerFunc[int](func(context.Context, *pipeline.Message[int]) error { return nil }),
		}},
		Observer: pipeline.Observers(metrics, mine),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Run:", p.Run(context.Background()))
	fmt.Println("acknowledged:", mine.n.Load())
	// Output:
	// Run: <nil>
	// acknowledged: 3
}
