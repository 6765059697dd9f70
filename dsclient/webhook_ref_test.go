package dsclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
)

// delivery is a webhook request as it arrived.
type delivery struct {
	signature string
	body      []byte
}

// Webhook subscriptions end to end: the server signs each wake, the receiver verifies it
// with the key it fetched from the server's key set and hands it over; a wake finished by
// answering {"done":true} moves the cursors to its tails; a wake left open is heartbeaten
// and finished through the callback, after which its callbacks are fenced. A delivery with
// a tampered body, or checked by a clock past the replay window, is refused.
func TestWebhookDelivery(t *testing.T) {
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 60*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-hook")

		wakes := make(chan *ds.Wake, 16)
		var mu sync.Mutex
		finish := true
		read := map[string][]int{}
		handler := func(ctx context.Context, w *ds.Wake) (bool, error) {
			mu.Lock()
			done := finish
			mu.Unlock()
			if done {
				// Process every pending stream up to the wake's tail, then finish it.
				for _, ls := range w.Pending() {
					evs, _, err := ds.ReadJSON[event](ctx, w.Stream(ls.Path), ds.ReadOptions{Offset: ls.AckedOffset})
					if err != nil {
						return false, err
					}
					mu.Lock()
					for _, e := range evs {
						read[ls.Path] = append(read[ls.Path], e.N)
					}
					mu.Unlock()
				}
			}
			wakes <- w
			return done, nil
		}
		recv, err := ds.NewWebhookReceiver(ds.WebhookOptions{Root: root, Handler: handler, SubscriptionIDs: []string{sub.ID()}})
		if err != nil {
			t.Fatal(err)
		}
		deliveries := make(chan delivery, 16)
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			deliveries <- delivery{r.Header.Get("Webhook-Signature"), body}
			r.Body = io.NopCloser(bytes.NewReader(body))
			recv.ServeHTTP(w, r)
		}))
		defer hs.Close()

		info, created, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/*", WebhookURL: hs.URL + "/hook", LeaseTTL: 5 * time.Second})
		if err != nil || !created {
			t.Fatalf("create: %v", err)
		}
		if info.Type != ds.SubscriptionWebhook || info.WebhookURL != hs.URL+"/hook" || info.Signing == nil ||
			info.Signing.Alg != "ed25519" || info.Signing.JWKSURL != sub.JWKS().URL() || info.Signing.KeyID == "" {
			t.Fatalf("webhook subscription: %+v signing %+v", info, info.Signing)
		}

		// Finished by the answer. One append, so that the wake's tail is the stream's: a
		// handler that answers done must have read exactly up to the wake's tail offsets.
		a := createJSON(t, sub, p+"/events/a")
		r, err := ds.AppendJSONBatch(ctx, a, []event{{N: 0}, {N: 1}, {N: 2}}, ds.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tail := r.NextOffset
		w := recvWake(t, wakes)
		if w.SubscriptionID != sub.ID() || w.Generation < 1 || w.CallbackURL == "" {
			t.Fatalf("wake: %+v", w)
		}
		waitAcked(t, sub, p+"/events/a", tail)
		mu.Lock()
		if got := read[p+"/events/a"]; len(got) != 3 || got[0] != 0 || got[2] != 2 {
			t.Fatalf("read %v", got)
		}
		finish = false
		mu.Unlock()

		// Left open, heartbeaten, finished through the callback.
		r, err = ds.AppendJSONBatch(ctx, a, []event{{N: 3}, {N: 4}}, ds.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tail = r.NextOffset
		w = recvWake(t, wakes)
		ls := w.Pending()
		if len(ls) != 1 || ls[0].TailOffset != tail {
			t.Fatalf("pending: %+v, want tail %s", ls, tail)
		}
		evs, last, err := ds.ReadJSON[event](ctx, w.Stream(ls[0].Path), ds.ReadOptions{Offset: ls[0].AckedOffset})
		if err != nil || len(evs) != 2 || evs[0].N != 3 {
			t.Fatalf("read %v %v", evs, err)
		}
		if res, err := w.Callback(ctx, []ds.StreamAck{{Stream: ls[0].Path, Offset: last.NextOffset}}, false); err != nil || res.NextWake {
			t.Fatalf("heartbeat callback: %+v %v", res, err)
		}
		if res, err := w.Callback(ctx, nil, true); err != nil || res.NextWake {
			t.Fatalf("done callback: %+v %v", res, err)
		}
		info, _ = sub.Get(ctx)
		if l, _ := linked(info, p+"/events/a"); l.AckedOffset != tail {
			t.Fatalf("cursor after the callback: %s, want %s", l.AckedOffset, tail)
		}
		_, err = w.Callback(ctx, nil, true)
		subErr(t, err, ds.ErrFenced, "FENCED")

		// Refused: a tampered body, a clock past the replay window.
		var d delivery
		for len(deliveries) > 0 {
			d = <-deliveries
		}
		if _, err := recv.VerifyPayload(ctx, d.signature, d.body); err != nil {
			t.Fatalf("a genuine delivery: %v", err)
		}
		tampered := bytes.Replace(d.body, []byte(sub.ID()), []byte(sub.ID()+"x"), 1)
		if _, err := recv.VerifyPayload(ctx, d.signature, tampered); !errors.Is(err, ds.ErrSignatureInvalid) {
			t.Fatalf("tampered: %v", err)
		}
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/hook", bytes.NewReader(tampered))
		req.Header.Set("Webhook-Signature", d.signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("tampered delivery answered %d, want 401", resp.StatusCode)
		}
		late, _ := ds.NewWebhookReceiver(ds.WebhookOptions{Root: root, Now: func() time.Time { return time.Now().Add(6 * time.Minute) }})
		if _, err := late.VerifyPayload(ctx, d.signature, d.body); !errors.Is(err, ds.ErrSignatureExpired) {
			t.Fatalf("past the replay window: %v", err)
		}
		if !strings.HasPrefix(late.Keys().URL(), root) {
			t.Fatalf("key set URL %s not under %s", late.Keys().URL(), root)
		}
		if err := sub.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func recvWake(t *testing.T, wakes <-chan *ds.Wake) *ds.Wake {
	t.Helper()
	select {
	case w := <-wakes:
		return w
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivery within 15s")
		return nil
	}
}

// waitAcked polls until the subscription's cursor on path is at off: the server applies a
// {"done":true} answer after it has read it.
func waitAcked(t *testing.T, sub *ds.Subscription, path string, off ds.Offset) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := sub.Get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		l, _ := linked(info, path)
		if l.AckedOffset == off {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor on %s is %s, want %s", path, l.AckedOffset, off)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
