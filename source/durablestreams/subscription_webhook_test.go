package durablestreams_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// laterHandler answers 503 until its handler is set: a webhook URL that exists before the
// worker behind it.
type laterHandler struct{ h atomic.Pointer[http.Handler] }

func (l *laterHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *laterHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "not yet", http.StatusServiceUnavailable)
}

// webhookMode: a worker serving a webhook subscription's wakes through WebhookHandler
// reads every stream once, with the events' positions, acks through the callbacks, and
// leaves every cursor at its stream's tail.
func webhookMode(t *testing.T, root string) {
	const streams, per = 4, 500
	e := newSubEnv(t, root)
	later := &laterHandler{}
	hooks := httptest.NewServer(later) // on 127.0.0.1: servers accept plain http there
	t.Cleanup(hooks.Close)
	sub := e.webhook("hook", "g", hooks.URL, 10*time.Second) // no failover here: a lease that load cannot make pass
	sink := newKeyedSink(streams * per)
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{
		store:   &ack.MemoryStore{},
		webhook: dsclient.WebhookOptions{Root: root},
	})
	later.set(w.src.WebhookHandler())
	var all []*dsclient.Stream
	for i := range streams {
		s := e.stream("g", i)
		appendTo(t, s, 0, per/2, 50)
		all = append(all, s)
	}
	for _, s := range all { // more, while the worker works
		appendTo(t, s, per/2, per, 50)
	}
	sink.waitFull(t, 60*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, streams) })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
	w.obs.mu.Lock()
	defer w.obs.mu.Unlock()
	won := 0
	for _, c := range w.obs.claims {
		if c.Result == ds.ClaimWon {
			won++
			if !c.Webhook {
				t.Errorf("claim %+v: want a webhook wake", c)
			}
		}
	}
	if won == 0 {
		t.Fatal("no webhook wake was taken on")
	}
	for _, e := range w.obs.ends {
		if e.Reason != ds.ClaimDone {
			t.Errorf("wake of generation %d ended %v (%v), want done", e.Generation, e.Reason, e.Err)
		}
	}
	t.Logf("%d webhook wakes", won)
}

func TestSubscriptionWebhook(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	webhookMode(t, srv.StreamURL(""))
}

func TestRefSubscriptionWebhook(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := refserver.ForTest(t, refserver.Options{Webhooks: true, LongPollTimeout: 500 * time.Millisecond})
	webhookMode(t, srv.StreamURL(""))
}
