package durablestreams_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// heldWakeRead is a transport that holds the first live read of the wake stream until the
// test lets it go: the follower's first request is late, as on a loaded machine.
type heldWakeRead struct {
	wake    string
	arrived chan struct{} // closed when the read is held
	release chan struct{} // closed by the test
	once    sync.Once
}

func (h *heldWakeRead) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/"+h.wake) && r.URL.Query().Get("live") != "" {
		held := false
		h.once.Do(func() { held = true })
		if held {
			close(h.arrived)
			select {
			case <-h.release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A wake event appended after the first claim attempt, while the follower's first read of
// the wake stream has not reached the server yet, still wakes the worker: the follower reads
// from the wake stream's tail as it was before the first claim, not from whatever "now" is
// when its request arrives. (With claims every hour, a missed wake would leave the work
// undone.)
func TestSubscriptionWakeNotMissedByALateFollower(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: 10 * time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	e.pullWake("a", "g", 10*time.Second)
	gate := &heldWakeRead{wake: e.wake, arrived: make(chan struct{}), release: make(chan struct{})}
	sub := dsclient.NewSubscription(e.root, e.prefix+"-a", fastRetry(), dsclient.WithHTTPClient(&http.Client{Transport: gate}))
	sink := newKeyedSink(100)
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{store: &ack.MemoryStore{}, claimInt: time.Hour})
	w.waitClaimAttempt(t)
	select {
	case <-gate.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not follow the wake stream")
	}
	appendTo(t, e.stream("g", 0), 0, 100, 10) // wakes the subscription while the read is held
	close(gate.release)
	sink.waitFull(t, 10*time.Second)
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
}
