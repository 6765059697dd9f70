package dsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	ds "github.com/sluice-go/sluice/dsclient"
)

func TestRefConsumer(t *testing.T) {
	srv := ref(t)
	ctx := context.Background()
	s := jsonStream(t, srv.StreamURL(name(t)))
	for i := range 5 {
		if _, err := s.AppendJSON(ctx, event{N: i}, ds.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tail, _ := s.Head(ctx)
	var got []int
	retried, failOnce := false, true
	var c *ds.Consumer
	c, err := ds.NewConsumer(s, ds.ConsumerOptions{MaxBatchItems: 2, Handler: func(ctx context.Context, b ds.ConsumerBatch) error {
		if c.InFlight() != tail.NextOffset || c.Committed() != ds.Beginning {
			t.Errorf("in flight %q committed %q during the chunk", c.InFlight(), c.Committed())
		}
		if b.First == 2 && !retried {
			retried = true
			return ds.RetryBatch(errors.New("transient"))
		}
		if b.First == 4 && failOnce {
			failOnce = false
			return errors.New("sink down")
		}
		for _, it := range b.Items {
			var e event
			json.Unmarshal(it, &e)
			got = append(got, e.N)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err == nil || err.Error() != "sink down" {
		t.Fatalf("run: %v", err)
	}
	if c.Committed() != ds.Beginning {
		t.Fatalf("committed %q after a failed chunk", c.Committed())
	}
	// Run again: the chunk is handed again from its start (at-least-once).
	got = nil
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4] != 4 || c.Committed() != tail.NextOffset || c.InFlight() != "" {
		t.Fatalf("got %v committed %q", got, c.Committed())
	}
	// Live: a new append arrives; cancelling ends Run with the context's error.
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	lc, _ := ds.NewConsumer(s, ds.ConsumerOptions{Read: ds.ReadOptions{Offset: c.Committed(), Live: ds.LiveLongPoll}, Handler: func(ctx context.Context, b ds.ConsumerBatch) error {
		cancel()
		return nil
	}})
	go func() { done <- lc.Run(lctx) }()
	s.AppendJSON(ctx, event{N: 5}, ds.AppendOptions{})
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("live run: %v", err)
	}
}
