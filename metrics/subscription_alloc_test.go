//go:build !race

package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/metrics"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// Once a subscription id has been seen, its events allocate nothing.
func TestSubscriptionEventsAllocateNothing(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{Pipeline: "alloc"})
	if err != nil {
		t.Fatal(err)
	}
	errX := errors.New("x")
	events := func() {
		m.ClaimAttempted(ds.ClaimEvent{Subscription: "a", Result: ds.ClaimWon, Pending: 3})
		m.ClaimAttempted(ds.ClaimEvent{Subscription: "a", Result: ds.ClaimAlreadyClaimed, Holder: "b"})
		m.Heartbeat(ds.HeartbeatEvent{Subscription: "a", Acks: 2, Duration: time.Millisecond})
		m.Heartbeat(ds.HeartbeatEvent{Subscription: "a", Err: errX})
		m.Lag(ds.LagEvent{Subscription: "a", Held: true, StreamsLeft: 2, Oldest: time.Second})
		m.ClaimEnded(ds.ClaimEndEvent{Subscription: "a", Reason: ds.ClaimDone})
	}
	events()
	if n := testing.AllocsPerRun(100, events); n != 0 {
		t.Errorf("%v allocations per round of subscription events, want 0", n)
	}
}
