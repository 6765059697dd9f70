package durablestreams_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// A pipeline reading a durable stream: the producer reads on demand, the batcher sums
// amounts, and the committed position, saved to a checkpoint store, reaches the tail once
// every message is acknowledged. A second run with the same store resumes there and finds nothing
// new.
func ExampleProducer() {
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
	s := dsclient.NewStream(srv.StreamURL("orders"), dsclient.WithContentType("application/json"))
	if _, err := s.Create(ctx, dsclient.CreateOptions{}); err != nil {
		log.Fatal(err)
	}
	orders := make([]order, 1000)
	for i := range orders {
		orders[i] = order{ID: i, Amount: 1.5}
	}
	if _, err := dsclient.AppendJSONBatch(ctx, s, orders, dsclient.AppendOptions{}); err != nil {
		log.Fatal(err)
	}

	store := new(ack.MemoryStore)
	run := func() (int64, float64) {
		p, err := ds.NewProducer(ds.ProducerOptions[order]{
			Stream:      s,
			Name:        "orders-sum",
			Live:        dsclient.LiveOff, // stop at the tail
			Checkpoints: store,
		})
		if err != nil {
			log.Fatal(err)
		}
		var n atomic.Int64
		var cents atomic.Int64
		pl, err := pipeline.New(pipeline.Options[order]{
			Name:     "orders-sum",
			Producer: p,
			Processors: []pipeline.ProcessorOptions[order]{{Concurrency: 4,
				Handler: pipeline.HandlerFunc[order](func(ctx context.Context, m *pipeline.Message[order]) error { return nil })}},
			Batchers: map[string]pipeline.BatcherOptions[order]{"sum": {BatchSize: 100, BatchTimeout: 50 * time.Millisecond,
				Handler: pipeline.BatchHandlerFunc[order](func(ctx context.Context, ms []pipeline.Message[order], _ pipeline.BatchInfo) error {
					for i := range ms {
						cents.Add(int64(ms[i].Data.Amount * 100))
					}
					n.Add(int64(len(ms)))
					return nil
				})}},
			DefaultBatcher: "sum",
		})
		if err != nil {
			log.Fatal(err)
		}
		if err := pl.Run(ctx); err != nil {
			log.Fatal(err)
		}
		saved, _, _ := store.Load(ctx, p.Key())
		pos, _ := ack.ParsePosition(saved) // the tail offset, and the number of messages before it
		head, _ := s.Head(ctx)
		fmt.Println("checkpoint at the tail:", dsclient.Offset(pos.Offset) == head.NextOffset, pos.Seq)
		return n.Load(), float64(cents.Load()) / 100
	}
	n, sum := run()
	fmt.Printf("first run: %d orders, %.2f\n", n, sum)
	n, _ = run()
	fmt.Printf("second run: %d orders\n", n)
	// Output:
	// checkpoint at the tail: true 1000
	// first run: 1000 orders, 1500.00
	// checkpoint at the tail: true 1000
	// second run: 0 orders
}
