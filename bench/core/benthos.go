package main

import (
	"context"
	"errors"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure" // the "none" metrics exporter, as every Benthos program has
	"github.com/redpanda-data/benthos/v4/public/service"
)

// prepareBenthos builds the workload as a Benthos stream from Go plugins: an
// input that makes the orders (its AckFunc is where a message's
// acknowledgement arrives), a processor run by 4 pipeline threads, and a
// batched output with a batch policy of 100 / 50 ms that sums each batch.
// Logging and metrics are off, as the other variants have none.
func prepareBenthos(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	env := service.NewEnvironment()
	spec := service.NewConfigSpec()
	err := errors.Join(
		env.RegisterInput("bench_orders", spec, func(*service.ParsedConfig, *service.Resources) (service.Input, error) {
			return &benthosInput{n: int64(n), chk: chk}, nil
		}),
		env.RegisterProcessor("bench_work", spec, func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
			return benthosProcessor{work: work}, nil
		}),
		env.RegisterBatchOutput("bench_sum", spec, func(*service.ParsedConfig, *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			return benthosOutput{chk: chk}, service.BatchPolicy{Count: batchSize, Period: batchTimeout.String()}, 1, nil
		}),
	)
	if err != nil {
		return nil, err
	}
	b := env.NewStreamBuilder()
	b.SetThreads(processors)
	err = errors.Join(
		b.SetLoggerYAML("level: none"),
		b.SetMetricsYAML("none: {}"),
		b.AddInputYAML("bench_orders: {}"),
		b.AddProcessorYAML("bench_work: {}"),
		b.AddOutputYAML("bench_sum: {}"),
	)
	if err != nil {
		return nil, err
	}
	stream, err := b.Build()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		err := stream.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}, nil
}

type benthosInput struct {
	n, next int64
	chk     *checker
}

func (in *benthosInput) Connect(context.Context) error { return nil }

func (in *benthosInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	if in.next == in.n {
		return nil, nil, service.ErrEndOfInput
	}
	id := in.next
	in.next++
	return service.NewMessage(payload(id)), func(_ context.Context, err error) error {
		if err != nil {
			in.chk.fail()
		} else {
			in.chk.ack(id)
		}
		return nil
	}, nil
}

func (in *benthosInput) Close(context.Context) error { return nil }

type benthosProcessor struct{ work workFunc }

func (p benthosProcessor) Process(_ context.Context, m *service.Message) (service.MessageBatch, error) {
	b, err := m.AsBytes()
	if err != nil {
		return nil, err
	}
	id, cents, err := p.work(b)
	if err != nil {
		return nil, err
	}
	m.SetStructuredMut(Event{ID: id, Cents: cents})
	return service.MessageBatch{m}, nil
}

func (benthosProcessor) Close(context.Context) error { return nil }

type benthosOutput struct{ chk *checker }

func (benthosOutput) Connect(context.Context) error { return nil }

func (o benthosOutput) WriteBatch(_ context.Context, batch service.MessageBatch) error {
	var sum int64
	good := 0
	for _, m := range batch {
		if m.GetError() != nil {
			continue
		}
		v, err := m.AsStructured()
		if e, ok := v.(Event); err == nil && ok {
			sum += e.Cents
			good++
		}
	}
	o.chk.batch(good, sum)
	return nil
}

func (benthosOutput) Close(context.Context) error { return nil }
