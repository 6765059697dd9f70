package dsclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// A pull-wake worker's round on per-user streams: follow the wake stream, claim the
// subscription it names, read each pending stream from its acked offset, and ack done with
// the offsets read up to. (A long round would also heartbeat: claim.Ack(ctx, acks, false)
// every LeaseTTL/3.)
func ExampleSubscription_Claim() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	jsonStream := ds.CreateOptions{ContentType: "application/json"}

	// Once, by the application: the wake stream and the subscription.
	sub := ds.NewSubscription(srv.StreamURL(""), "order-workers")
	if _, err := sub.Stream("wake/orders").Create(ctx, jsonStream); err != nil {
		log.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: "orders/*", WakeStream: "wake/orders", LeaseTTL: 10 * time.Second}); err != nil {
		log.Fatal(err)
	}

	// Writers: one stream per user, created after the subscription, so read from the start.
	for _, user := range []string{"alice", "bob"} {
		s := sub.Stream("orders/" + user)
		if _, err := s.Create(ctx, jsonStream); err != nil {
			log.Fatal(err)
		}
		for _, item := range []string{"book", "pen"} {
			if _, err := s.AppendJSON(ctx, map[string]string{"item": item}, ds.AppendOptions{}); err != nil {
				log.Fatal(err)
			}
		}
	}

	// A worker: the first wake event names the subscription to claim.
	for ev, err := range ds.JSONItems[ds.WakeEvent](ctx, sub.Stream("wake/orders"), ds.ReadOptions{Live: ds.LiveLongPoll}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("wake:", ev.Value.SubscriptionID)
		break
	}
	claim, err := sub.Claim(ctx, "worker-1")
	if err != nil {
		log.Fatal(err) // ErrAlreadyClaimed: another worker has it; ErrNoPendingWork: done already
	}
	pending := claim.Pending()
	slices.SortFunc(pending, func(a, b ds.LinkedStream) int { return strings.Compare(a.Path, b.Path) })
	var acks []ds.StreamAck
	for _, ls := range pending {
		r := sub.Stream(ls.Path).Reader(ctx, ds.ReadOptions{Offset: ls.AckedOffset})
		var items []string
		last := ls.AckedOffset
		for {
			c, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				log.Fatal(err)
			}
			for {
				var order struct{ Item string }
				if err := c.DecodeItem(&order); err == io.EOF {
					break
				} else if err != nil {
					log.Fatal(err)
				}
				items = append(items, order.Item)
			}
			last = c.NextOffset() // processed up to here
		}
		r.Close()
		acks = append(acks, ds.StreamAck{Stream: ls.Path, Offset: last})
		fmt.Println(ls.Path, items)
	}
	res, err := claim.Ack(ctx, acks, true)
	if err != nil {
		log.Fatal(err) // ErrFenced: the lease passed; another worker reads again from the acked offsets
	}
	fmt.Println("next wake:", res.NextWake)

	_, err = sub.Claim(ctx, "worker-2")
	fmt.Println(errors.Is(err, ds.ErrNoPendingWork))
	// Output:
	// wake: order-workers
	// orders/alice [book pen]
	// orders/bob [book pen]
	// next wake: false
	// true
}

// A webhook receiver: the server signs each wake and POSTs it; the receiver verifies the
// signature with the server's published key and hands the wake over. The handler reads the
// pending streams up to the wake's tail offsets and answers done, which acks them.
func ExampleWebhookReceiver() {
	srv, err := dstest.NewServer(dstest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	root := srv.StreamURL("")

	handled := make(chan string, 1)
	recv, err := ds.NewWebhookReceiver(ds.WebhookOptions{
		Root: root,
		Handler: func(ctx context.Context, w *ds.Wake) (done bool, err error) {
			for _, ls := range w.Pending() {
				orders, _, err := ds.ReadJSON[struct{ Item string }](ctx, w.Stream(ls.Path), ds.ReadOptions{Offset: ls.AckedOffset})
				if err != nil {
					return false, err // answered 500: the server delivers the wake again
				}
				handled <- fmt.Sprint(ls.Path, " ", orders)
			}
			return true, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	hooks := httptest.NewServer(recv) // on 127.0.0.1: servers accept plain http there only
	defer hooks.Close()

	sub := ds.NewSubscription(root, "order-hooks")
	if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: "orders/*", WebhookURL: hooks.URL}); err != nil {
		log.Fatal(err)
	}
	s := sub.Stream("orders/alice")
	if _, err := s.Create(ctx, ds.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}
	if _, err := ds.AppendJSONBatch(ctx, s, []map[string]string{{"item": "book"}, {"item": "pen"}}, ds.AppendOptions{}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-handled)
	// Output:
	// orders/alice [{book} {pen}]
}
