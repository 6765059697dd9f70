package pipeline_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/pipeline"
)

// rawSource hands out its items undecoded when told to defer decoding (the item's index in
// Position, Data left zero), and decodes them itself otherwise.
type rawSource struct {
	items    []string
	next     int
	a        ack.Acknowledger
	deferred atomic.Bool
	defers   atomic.Int32
	decodes  atomic.Int32 // DecodeMessages calls
	panicOn  string       // DecodeMessages panics on a chunk holding this item
}

var errNotANumber = errors.New("not a number")

func (s *rawSource) decode(item string) (int, error) {
	n, err := strconv.Atoi(item)
	if err != nil {
		return 0, errNotANumber
	}
	return n, nil
}

func (s *rawSource) Produce(_ context.Context, msgs []pipeline.Message[int]) (int, error) {
	k := 0
	for ; k < len(msgs) && s.next < len(s.items); k++ {
		m := &msgs[k]
		*m = pipeline.NewMessage(0, s.a, ack.Ref{N: uint64(s.next)})
		m.Metadata.Position = int64(s.next)
		if !s.deferred.Load() {
			v, err := s.decode(s.items[s.next])
			if err != nil {
				m.Fail(err)
			}
			m.Data = v
		}
		s.next++
	}
	if s.next == len(s.items) {
		return k, pipeline.ErrEndOfInput
	}
	return k, nil
}

func (s *rawSource) DeferDecoding() {
	s.defers.Add(1)
	s.deferred.Store(true)
}

func (s *rawSource) DecodeMessages(msgs []pipeline.Message[int]) {
	s.decodes.Add(1)
	for i := range msgs {
		m := &msgs[i]
		item := s.items[m.Metadata.Position]
		if item == s.panicOn {
			panic("decoder bug")
		}
		v, err := s.decode(item)
		if err != nil {
			m.Fail(err) // not marked permanent: the pipeline marks it
			continue
		}
		m.Data = v
	}
}

// A producer that implements Decoder has its messages decoded on the first pool's
// goroutines, before any handler; what does not decode is bad data. With PartitionBy on the
// first pool (which reads Data before the processors), the producer decodes itself.
func TestDecoderDecodesOnTheFirstPool(t *testing.T) {
	for _, partitioned := range []bool{false, true} {
		t.Run("partitioned="+strconv.FormatBool(partitioned), func(t *testing.T) {
			var mu sync.Mutex
			var sum int
			var failed []error
			var hookSaw []int64
			src := &rawSource{items: []string{"1", "2", "x", "4", "5"}}
			src.a = ack.AcknowledgerFunc(func(_ []ack.Ref, f []ack.Failure) {
				mu.Lock()
				defer mu.Unlock()
				for _, x := range f {
					failed = append(failed, x.Err)
				}
			})
			po := pipeline.ProcessorOptions[int]{Concurrency: 2, MaxDemand: 2, Handler: pipeline.HandlerFunc[int](func(_ context.Context, m *pipeline.Message[int]) error {
				mu.Lock()
				sum += m.Data
				mu.Unlock()
				return nil
			})}
			if partitioned {
				po.PartitionBy = func(m *pipeline.Message[int]) uint64 { return uint64(m.Data) }
			}
			po.Name = "first"
			p := mustNew(t, pipeline.Options[int]{
				Producer:   src,
				Processors: []pipeline.ProcessorOptions[int]{po, {Name: "second", Handler: nopHandler}},
				Failure: pipeline.FailureOptions[int]{Handler: pipeline.FailureHandlerFunc[int](func(_ context.Context, msgs []pipeline.Message[int]) error {
					mu.Lock()
					defer mu.Unlock()
					for i := range msgs {
						hookSaw = append(hookSaw, msgs[i].Metadata.Position)
					}
					return nil
				})},
			})
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantDefers, decodedByPipeline := int32(1), src.decodes.Load() > 0
			if partitioned {
				wantDefers = 0
			}
			if src.defers.Load() != wantDefers || decodedByPipeline == partitioned {
				t.Errorf("DeferDecoding called %d times, DecodeMessages %d times; want %d and calls only when not partitioned",
					src.defers.Load(), src.decodes.Load(), wantDefers)
			}
			mu.Lock()
			defer mu.Unlock()
			if sum != 12 {
				t.Errorf("handlers summed %d, want 12: they must see decoded data", sum)
			}
			if len(failed) != 1 || !errors.Is(failed[0], errNotANumber) || !pipeline.IsPermanent(failed[0]) {
				t.Errorf("failures %v, want the undecodable item, as bad data", failed)
			}
			if len(hookSaw) != 1 || hookSaw[0] != 2 {
				t.Errorf("failure handler saw positions %v, want [2]", hookSaw)
			}
		})
	}
}

// A panic in DecodeMessages fails the messages of its chunk (bad data); the pipeline goes on.
func TestDecoderPanicFailsItsChunk(t *testing.T) {
	var mu sync.Mutex
	ok, bad := 0, 0
	src := &rawSource{items: []string{"1", "2", "3", "4", "boom", "6"}, panicOn: "boom"}
	src.a = ack.AcknowledgerFunc(func(s []ack.Ref, f []ack.Failure) {
		mu.Lock()
		defer mu.Unlock()
		ok += len(s)
		for _, x := range f {
			var pe *pipeline.PanicError
			if errors.As(x.Err, &pe) {
				bad++
			}
		}
	})
	p := mustNew(t, pipeline.Options[int]{
		Producer:   src,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, MaxDemand: 2, Handler: nopHandler}},
	})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ok+bad != 6 || bad == 0 || bad > 2 {
		t.Errorf("%d successful, %d failed with the panic; want the panicking chunk (at most 2) failed, the rest successful", ok, bad)
	}
}
