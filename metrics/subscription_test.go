package metrics_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Each subscription event moves its subscription's collectors.
func TestSubscriptionEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	m.ClaimAttempted(ds.ClaimEvent{Subscription: "a", Result: ds.ClaimAlreadyClaimed, Holder: "w2"})
	m.ClaimAttempted(ds.ClaimEvent{Subscription: "a", Result: ds.ClaimWon, Streams: 40, Pending: 12})
	m.Heartbeat(ds.HeartbeatEvent{Subscription: "a", Acks: 3})
	m.Heartbeat(ds.HeartbeatEvent{Subscription: "a", Err: errors.New("503")})
	m.Lag(ds.LagEvent{Subscription: "a", Held: true, StreamsLeft: 5, Oldest: 1500 * time.Millisecond})
	got := scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_ds_subscription_claims_total{result=already_claimed,subscription=a}": 1,
		"sluice_ds_subscription_claims_total{result=won,subscription=a}":             1,
		"sluice_ds_subscription_claims_total{result=no_pending_work,subscription=a}": 0,
		"sluice_ds_subscription_claim_streams_count":                                 1,
		"sluice_ds_subscription_claim_streams_sum":                                   12,
		"sluice_ds_subscription_heartbeats_total{result=ok,subscription=a}":          1,
		"sluice_ds_subscription_heartbeats_total{result=error,subscription=a}":       1,
		"sluice_ds_subscription_held{subscription=a}":                                1,
		"sluice_ds_subscription_streams_left{subscription=a}":                        5,
		"sluice_ds_subscription_lag_seconds{subscription=a}":                         1.5,
		"sluice_ds_subscription_claims_ended_total{reason=fenced,subscription=a}":    0,
	})
	m.ClaimEnded(ds.ClaimEndEvent{Subscription: "a", Reason: ds.ClaimFenced})
	m.Lag(ds.LagEvent{Subscription: "a"})
	m.ClaimAttempted(ds.ClaimEvent{Subscription: "b", Result: ds.ClaimNoPendingWork})
	got = scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_ds_subscription_claims_ended_total{reason=fenced,subscription=a}":    1,
		"sluice_ds_subscription_held{subscription=a}":                                0,
		"sluice_ds_subscription_streams_left{subscription=a}":                        0,
		"sluice_ds_subscription_lag_seconds{subscription=a}":                         0,
		"sluice_ds_subscription_claims_total{result=no_pending_work,subscription=b}": 1,
	})
}

// A worker observed by Metrics over a server: its claims, heartbeats and ends are counted.
func TestSubscriptionWorkerMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := dstest.ForTest(t, dstest.Options{MinLeaseTTL: 10 * time.Millisecond})
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "workers"})
	if err != nil {
		t.Fatal(err)
	}
	sub := dsclient.NewSubscription(srv.StreamURL(""), "jobs")
	json := dsclient.CreateOptions{ContentType: "application/json"}
	if _, err := sub.Stream("wake").Create(ctx, json); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, dsclient.SubscriptionConfig{Pattern: "jobs/*", WakeStream: "wake", LeaseTTL: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"jobs/a", "jobs/b"} {
		if _, err := sub.Stream(user).Create(ctx, json); err != nil {
			t.Fatal(err)
		}
		if _, err := dsclient.AppendJSONBatch(ctx, sub.Stream(user), []int{1, 2, 3}, dsclient.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hb := &heartbeatSignal{SubscriptionObserver: m, ok: make(chan struct{})}
	src, err := ds.NewSubscriptionProducer(ds.SubscriptionOptions[int]{
		Subscriptions: []*dsclient.Subscription{sub}, Name: "workers", Checkpoints: &ack.MemoryStore{},
		Observer: hb, ProducerObserver: m, Logger: discardLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 6)
	var first atomic.Bool
	pl, err := pipeline.New(pipeline.Options[int]{Name: "workers", Producer: src, Observer: m, Logger: discardLogger,
		Processors: []pipeline.ProcessorOptions[int]{{Handler: pipeline.HandlerFunc[int](func(ctx context.Context, _ *pipeline.Message[int]) error {
			handled <- struct{}{}
			if first.CompareAndSwap(false, true) {
				select { // the claim stays open until a heartbeat (every lease/3) has gone out
				case <-hb.ok:
				case <-time.After(30 * time.Second):
					t.Error("no heartbeat succeeded in 30s")
				}
			}
			return nil
		})}}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	for range 6 {
		<-handled
	}
	for {
		if got := scrape(t, reg); got["sluice_ds_subscription_claims_ended_total{reason=done,subscription=jobs}"] >= 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the claim never ended done")
		case <-time.After(10 * time.Millisecond): // polls the registry
		}
	}
	pl.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := scrape(t, reg)
	expect(t, got, map[string]float64{
		"sluice_ds_subscription_claim_streams_sum":       2,
		"sluice_ds_subscription_held{subscription=jobs}": 0,
		"sluice_messages_produced_total":                 6,
		"sluice_ds_producer_messages_total":              6,
	})
	if got["sluice_ds_subscription_claims_total{result=won,subscription=jobs}"] < 1 ||
		got["sluice_ds_subscription_heartbeats_total{result=ok,subscription=jobs}"] < 1 {
		t.Errorf("claims won %v, heartbeats %v: want both", got["sluice_ds_subscription_claims_total{result=won,subscription=jobs}"],
			got["sluice_ds_subscription_heartbeats_total{result=ok,subscription=jobs}"])
	}
}

// heartbeatSignal passes a worker's events on to its observer and closes ok after the first
// heartbeat that succeeded (once the observer has counted it).
type heartbeatSignal struct {
	ds.SubscriptionObserver
	once sync.Once
	ok   chan struct{}
}

func (h *heartbeatSignal) Heartbeat(e ds.HeartbeatEvent) {
	h.SubscriptionObserver.Heartbeat(e)
	if e.Err == nil {
		h.once.Do(func() { close(h.ok) })
	}
}
