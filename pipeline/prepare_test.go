package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/pipeline/pipelinetest"
)

// lookup is a Handler that also prepares: PrepareMessages does one bulk lookup per chunk and
// HandleMessage uses what it found.
type lookup struct {
	mu       sync.Mutex
	chunks   []int // sizes of the chunks prepared
	failWith error // returned by PrepareMessages when a chunk holds 13
}

func (l *lookup) PrepareMessages(_ context.Context, msgs []pipeline.Message[int]) error {
	l.mu.Lock()
	l.chunks = append(l.chunks, len(msgs))
	l.mu.Unlock()
	for i := range msgs {
		switch msgs[i].Data {
		case 7:
			msgs[i].Fail(errors.New("no such user"))
		case 13:
			if l.failWith != nil {
				return l.failWith
			}
		case 21:
			panic("lookup crashed")
		}
		msgs[i].Data += 1000 // the "looked up" value
	}
	return nil
}

func (l *lookup) HandleMessage(_ context.Context, m *pipeline.Message[int]) error {
	if m.Data < 1000 {
		return errors.New("handled without its lookup")
	}
	return nil
}

func TestMessagePreparerSeesEachChunkBeforeItsMessages(t *testing.T) {
	l := &lookup{failWith: errors.New("lookup service down")}
	prod := pipelinetest.NewProducer[int]()
	p := mustNew(t, pipeline.Options[int]{
		Producer:   prod,
		Processors: []pipeline.ProcessorOptions[int]{{Concurrency: 1, MaxDemand: 5, Handler: l}},
		Failure:    pipeline.FailureOptions[int]{Policy: pipeline.FailWithoutRetry},
	})
	// Push in separate groups of 5 so that each chunk is one group: [0-4] [5-9] [10-14] ...
	var ds []*pipelinetest.Delivery[int]
	for g := range 5 {
		ds = append(ds, prod.Push(5*g, 5*g+1, 5*g+2, 5*g+3, 5*g+4))
	}
	prod.Close()
	run := pipelinetest.Start(t, p)
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, size := range l.chunks {
		if size > 5 {
			t.Errorf("PrepareMessages got %d messages, above MaxDemand 5", size)
		}
	}
	failed := map[int]string{}
	succeeded := 0
	for _, d := range ds {
		res := d.Result()
		succeeded += len(res.Successful)
		for _, f := range res.Failed {
			failed[f.Data] = f.Err.Error()
		}
	}
	if failed[7] != "no such user" {
		t.Errorf("message 7: %q, want the failure PrepareMessages set", failed[7])
	}
	// The chunk holding 13 failed whole with the error; the one holding 21 with the panic.
	for _, v := range []int{10, 11, 12, 13, 14} {
		if failed[v] != "lookup service down" {
			t.Errorf("message %d: %q, want the PrepareMessages error", v, failed[v])
		}
	}
	for _, v := range []int{20, 21, 22, 23, 24} {
		if got := failed[v]; len(got) < 29 || got[:29] != "pipeline: panic: lookup crash" {
			t.Errorf("message %d: %.60q, want the PrepareMessages panic", v, got)
		}
	}
	if want := 25 - 1 - 5 - 5; succeeded != want {
		t.Errorf("%d succeeded, want %d (failed: %v)", succeeded, want, failed)
	}
}
