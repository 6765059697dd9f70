package metrics

import (
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-go/sluice/source/durablestreams"
)

var _ durablestreams.SubscriptionObserver = (*Metrics)(nil)

// The label values of the subscription metrics, indexed by the event's enum.
var (
	claimResults = [...]durablestreams.ClaimResult{durablestreams.ClaimWon, durablestreams.ClaimAlreadyClaimed,
		durablestreams.ClaimNoPendingWork, durablestreams.ClaimFailed}
	claimEnds = [...]durablestreams.ClaimEndReason{durablestreams.ClaimDone, durablestreams.ClaimReleased,
		durablestreams.ClaimFenced, durablestreams.ClaimExpired, durablestreams.ClaimEndFailed}
)

// subscriptionMetrics are the collectors of a SubscriptionProducer's events, labelled by
// subscription id.
type subscriptionMetrics struct {
	claims     *prometheus.CounterVec
	ends       *prometheus.CounterVec
	heartbeats *prometheus.CounterVec
	streams    prometheus.Histogram
	held       *prometheus.GaugeVec
	left       *prometheus.GaugeVec
	lag        *prometheus.GaugeVec
	subs       *children[string, *subMetrics]
}

// subMetrics are one subscription's pre-bound collectors.
type subMetrics struct {
	claims          [len(claimResults)]prometheus.Counter
	ends            [len(claimEnds)]prometheus.Counter
	hbOK, hbErr     prometheus.Counter
	held, left, lag prometheus.Gauge
}

func newSubscriptionMetrics(f *factory) *subscriptionMetrics {
	m := &subscriptionMetrics{
		claims: f.counterVec("sluice_ds_subscription_claims_total",
			`Claim attempts of a subscription worker (and webhook wakes taken on), by result: "won", "already_claimed" (another worker holds the lease), "no_pending_work", "failed".`,
			"subscription", "result"),
		ends: f.counterVec("sluice_ds_subscription_claims_ended_total",
			`Claims a subscription worker held that ended, by reason: "done" (caught up and committed), "released" (drain or age), "fenced" (lost to the server), "expired" (stopped before its lease could pass), "failed" (the last ack or release failed).`,
			"subscription", "reason"),
		heartbeats: f.counterVec("sluice_ds_subscription_heartbeats_total",
			`Heartbeats (lease renewals carrying the committed positions), by result ("ok" or "error").`,
			"subscription", "result"),
		streams: f.histogram("sluice_ds_subscription_claim_streams",
			"Streams with pending work per claim won.", f.sizes),
		held: f.gaugeVec("sluice_ds_subscription_held",
			"1 while the worker holds a claim on the subscription, else 0.", "subscription"),
		left: f.gaugeVec("sluice_ds_subscription_streams_left",
			"Streams of the claim held not yet read to their tail and committed.", "subscription"),
		lag: f.gaugeVec("sluice_ds_subscription_lag_seconds",
			"Age of the oldest work of the claim held not yet committed (a response not finished, or a stream waiting for its turn since the claim); 0 when none.",
			"subscription"),
	}
	m.subs = newChildren(func(id string) *subMetrics {
		s := &subMetrics{
			hbOK: m.heartbeats.WithLabelValues(id, "ok"), hbErr: m.heartbeats.WithLabelValues(id, "error"),
			held: m.held.WithLabelValues(id), left: m.left.WithLabelValues(id), lag: m.lag.WithLabelValues(id),
		}
		for i, r := range claimResults {
			s.claims[i] = m.claims.WithLabelValues(id, r.String())
		}
		for i, r := range claimEnds {
			s.ends[i] = m.ends.WithLabelValues(id, r.String())
		}
		return s
	})
	return m
}

// sub returns the collectors of subscription id (an id that is not UTF-8 is labelled with
// its invalid bytes replaced).
func (m *subscriptionMetrics) sub(id string) *subMetrics {
	if !utf8.ValidString(id) {
		id = strings.ToValidUTF8(id, "\uFFFD")
	}
	return m.subs.get(id)
}

// ClaimAttempted implements durablestreams.SubscriptionObserver: it counts the attempt by
// result and, for a claim won, observes its pending streams and marks the subscription
// held.
func (m *Metrics) ClaimAttempted(e durablestreams.ClaimEvent) {
	sm := m.subs.sub(e.Subscription)
	if e.Result >= 0 && int(e.Result) < len(sm.claims) {
		sm.claims[e.Result].Inc()
	}
	if e.Result == durablestreams.ClaimWon {
		m.subs.streams.Observe(float64(e.Pending))
		sm.held.Set(1)
	}
}

// ClaimEnded implements durablestreams.SubscriptionObserver: it counts the end by reason and
// marks the subscription not held.
func (m *Metrics) ClaimEnded(e durablestreams.ClaimEndEvent) {
	sm := m.subs.sub(e.Subscription)
	if e.Reason >= 0 && int(e.Reason) < len(sm.ends) {
		sm.ends[e.Reason].Inc()
	}
	sm.held.Set(0)
}

// Heartbeat implements durablestreams.SubscriptionObserver: it counts the heartbeat by
// result.
func (m *Metrics) Heartbeat(e durablestreams.HeartbeatEvent) {
	sm := m.subs.sub(e.Subscription)
	if e.Err != nil {
		sm.hbErr.Inc()
	} else {
		sm.hbOK.Inc()
	}
}

// Lag implements durablestreams.SubscriptionObserver: it sets the subscription's held,
// streams-left and lag gauges.
func (m *Metrics) Lag(e durablestreams.LagEvent) {
	sm := m.subs.sub(e.Subscription)
	held := 0.0
	if e.Held {
		held = 1
	}
	sm.held.Set(held)
	sm.left.Set(float64(e.StreamsLeft))
	sm.lag.Set(e.Oldest.Seconds())
}
