package dssink_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/dssink"
	"github.com/sluice-go/sluice/source/durablestreams"
)

// Stream → pipeline → stream: orders are read from one durable stream, taxed, and appended
// to another. The pipeline runs twice without a checkpoint store, so the second run delivers
// every order again, as a run that crashed before saving its checkpoint would: its sink
// finds every result in the output stream already and appends nothing.
func Example() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()

	type order struct {
		ID     int     `json:"id"`
		Amount float64 `json:"amount"`
	}
	type taxed struct {
		ID    int     `json:"id"`
		Total float64 `json:"total"`
	}
	orders := dsclient.NewStream(srv.StreamURL("orders"), dsclient.WithContentType("application/json"))
	results := dsclient.NewStream(srv.StreamURL("orders-taxed"), dsclient.WithContentType("application/json"))
	for _, s := range []*dsclient.Stream{orders, results} {
		if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	batch := make([]order, 100)
	for i := range batch {
		batch[i] = order{ID: i, Amount: 10}
	}
	if _, err := dsclient.AppendJSONBatch(ctx, orders, batch, dsclient.AppendOptions{}); err != nil {
		log.Fatal(err)
	}

	run := func() dssink.Stats {
		sink, err := dssink.New(dssink.Options[order]{
			Stream: results,
			ID:     "tax", // the same in every run
			Value: func(m *pipeline.Message[order]) (any, error) {
				return taxed{ID: m.Data.ID, Total: m.Data.Amount * 1.2}, nil
			},
		})
		if err != nil {
			log.Fatal(err)
		}
		p, err := durablestreams.NewProducer(durablestreams.ProducerOptions[order]{Stream: orders, Name: "tax",
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			log.Fatal(err)
		}
		pl, err := pipeline.New(pipeline.Options[order]{
			Name:     "tax",
			Producer: p,
			Processors: []pipeline.ProcessorOptions[order]{{
				Concurrency: 1, // one goroutine: the source's order is kept
				Handler:     pipeline.HandlerFunc[order](func(context.Context, *pipeline.Message[order]) error { return nil }),
			}},
			Batchers: map[string]pipeline.BatcherOptions[order]{
				// One batch processor: each batch in position order.
				"out": {Handler: sink, BatchSize: 30, BatchTimeout: 10 * time.Millisecond},
			},
			DefaultBatcher: "out",
		})
		if err != nil {
			log.Fatal(err)
		}
		if err := pl.Run(ctx); err != nil { // LiveOff: ends at the tail
			log.Fatal(err)
		}
		return sink.Stats()
	}
	first, second := run(), run()
	out, _, err := dsclient.ReadJSON[taxed](ctx, results, dsclient.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("first run wrote", first.Written)
	fmt.Println("second run wrote", second.Written, "and skipped", second.Skipped)
	fmt.Println(len(out), "results, the last", out[len(out)-1])
	// Output:
	// first run wrote 100
	// second run wrote 0 and skipped 100
	// 100 results, the last {99 12}
}
