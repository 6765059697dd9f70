package durablestreams

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluice-go/sluice/dsclient"
)

// errNotRunning refuses a webhook wake that arrives once the producer drains; the server
// delivers it again later (to this worker or another behind the same URL).
var errNotRunning = errors.New("durablestreams: the subscription producer is not running")

// WebhookHandler returns the http.Handler that receives the wakes of the producer's webhook
// subscriptions (PROTOCOL.md section 7.1): mount it at the subscriptions' webhook URL. It is
// a dsclient.WebhookReceiver made from [SubscriptionOptions].Webhook: it verifies each
// delivery's signature, answers at once, and the producer works on the wake as on a
// pull-wake claim — reads the pending streams from their committed positions, heartbeats
// through the wake's callback, and calls back done with the committed positions when every
// stream is read to its tail and committed (the server then delivers the next wake if work
// arrived meanwhile).
//
// A wake that arrives before the first Produce is worked on once the run starts. Once the
// producer drains, the handler answers 500, and the server delivers the wake again later
// (to this worker or another behind the same URL). A repeated delivery
// of the wake being worked on is answered and ignored; a newer wake for a subscription
// whose wake is being worked on means that the old one was lost, which is stopped at once.
//
// Without SubscriptionOptions.Webhook the handler answers 501 to every request.
func (p *SubscriptionProducer[T]) WebhookHandler() http.Handler {
	if p.recv == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "durablestreams: no webhook receiver (set SubscriptionOptions.Webhook)", http.StatusNotImplemented)
		})
	}
	return p.recv
}

// onWake is the receiver's wake handler: it hands the wake to its subscription's goroutine
// and answers at once, without done.
func (p *SubscriptionProducer[T]) onWake(_ context.Context, w *dsclient.Wake) (bool, error) {
	s := p.byID[w.SubscriptionID]
	if s == nil {
		return false, errors.New("durablestreams: wake of an unknown subscription")
	}
	p.mu.Lock()
	draining := p.draining
	p.mu.Unlock()
	if draining {
		return false, errNotRunning
	}
	s.offerWake(w)
	return false, nil
}
