package durablestreams_test

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Two workers share the per-user streams of one pull-wake subscription: the server hands
// the claim to one worker at a time, and the shared checkpoint store keeps every message's
// position the same whichever worker delivers it, so that a sink keyed by (stream,
// position) stores each order once. Messages of one stream go to one processor, in order.
func ExampleSubscriptionProducer() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jsonStream := dsclient.CreateOptions{ContentType: "application/json"}

	// Once, by the application: the wake stream and the subscription.
	sub := dsclient.NewSubscription(srv.StreamURL(""), "orders")
	if _, err := sub.Stream("wake/orders").Create(ctx, jsonStream); err != nil {
		log.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, dsclient.SubscriptionConfig{Pattern: "orders/*", WakeStream: "wake/orders", LeaseTTL: 5 * time.Second}); err != nil {
		log.Fatal(err)
	}
	// One stream per user, created after the subscription: read from their start.
	for _, user := range []string{"alice", "bob", "carol"} {
		s := sub.Stream("orders/" + user)
		if _, err := s.Create(ctx, jsonStream); err != nil {
			log.Fatal(err)
		}
		if _, err := dsclient.AppendJSONBatch(ctx, s, []string{"book", "pen", "ink"}, dsclient.AppendOptions{}); err != nil {
			log.Fatal(err)
		}
	}

	// The sink: one row per (stream, position), inserted if absent.
	type key struct {
		stream string
		pos    int64
	}
	var mu sync.Mutex
	rows := map[key]string{}
	full := make(chan struct{})
	store := new(ack.MemoryStore) // shared by the workers; ack/pgstore across hosts
	worker := func(name string) (stop func()) {
		src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[string]{
			Subscriptions: []*dsclient.Subscription{sub},
			Worker:        name,
			Name:          "orders",
			Checkpoints:   store,
			Logger:        slog.New(slog.DiscardHandler),
		})
		if err != nil {
			log.Fatal(err)
		}
		pl, err := pipeline.New(pipeline.Options[string]{
			Name:     "orders-" + name,
			Producer: src,
			Processors: []pipeline.ProcessorOptions[string]{{
				Concurrency: 4,
				PartitionBy: pipeline.PartitionByKey(func(m *pipeline.Message[string]) string { return m.Metadata.Stream }),
				Handler: pipeline.HandlerFunc[string](func(ctx context.Context, m *pipeline.Message[string]) error {
					mu.Lock()
					defer mu.Unlock()
					k := key{m.Metadata.Stream, m.Metadata.Position}
					if _, ok := rows[k]; !ok {
						rows[k] = m.Data
						if len(rows) == 9 {
							close(full)
						}
					}
					return nil
				}),
			}},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			log.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- pl.Run(ctx) }()
		return func() {
			pl.Stop() // drains: finishes what is in flight, acks it and releases the claim
			if err := <-done; err != nil {
				log.Fatal(err)
			}
		}
	}
	stop1, stop2 := worker("worker-1"), worker("worker-2")
	<-full
	stop1()
	stop2()

	keys := make([]key, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(strings.Compare(a.stream, b.stream), cmp.Compare(a.pos, b.pos)) })
	for _, k := range keys {
		fmt.Println(k.stream, k.pos, rows[k])
	}
	// Output:
	// /v1/stream/orders/alice 0 book
	// /v1/stream/orders/alice 1 pen
	// /v1/stream/orders/alice 2 ink
	// /v1/stream/orders/bob 0 book
	// /v1/stream/orders/bob 1 pen
	// /v1/stream/orders/bob 2 ink
	// /v1/stream/orders/carol 0 book
	// /v1/stream/orders/carol 1 pen
	// /v1/stream/orders/carol 2 ink
}
