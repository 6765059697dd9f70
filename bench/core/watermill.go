package main

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// watermillInFlight bounds the messages published but not yet acknowledged:
// gochannel starts goroutines for every published message and never pushes
// back on a publisher that does not wait for acks, so without a bound the
// whole stream would be in memory at once.
const watermillInFlight = 1024

// prepareWatermill builds the workload from Watermill's gochannel pub/sub and
// router: the producer publishes orders to topic "orders"; a router handler
// (at most 4 running at once, through a middleware) decodes and transforms
// each one and publishes the result to topic "amounts"; a subscriber of
// "amounts" batches 100 / 50 ms, sums each batch and acks its messages.
// Watermill has no batching of its own.
func prepareWatermill(n int, work workFunc, chk *checker) (func(context.Context) error, error) {
	logger := watermill.NopLogger{}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pubsub := gochannel.NewGoChannel(gochannel.Config{}, logger)
		router, err := message.NewRouter(message.RouterConfig{}, logger)
		if err != nil {
			return err
		}
		slots := make(chan struct{}, processors)
		router.AddMiddleware(func(h message.HandlerFunc) message.HandlerFunc {
			return func(m *message.Message) ([]*message.Message, error) {
				slots <- struct{}{}
				defer func() { <-slots }()
				return h(m)
			}
		})
		router.AddHandler("process", "orders", pubsub, "amounts", pubsub, func(m *message.Message) ([]*message.Message, error) {
			id, cents, err := work(m.Payload)
			if err != nil {
				return nil, err
			}
			out := make([]byte, 16)
			binary.LittleEndian.PutUint64(out, uint64(id))
			binary.LittleEndian.PutUint64(out[8:], uint64(cents))
			return []*message.Message{message.NewMessage(m.UUID, out)}, nil
		})
		amounts, err := pubsub.Subscribe(ctx, "amounts")
		if err != nil {
			return err
		}

		var wg sync.WaitGroup
		var routerErr error
		wg.Go(func() { routerErr = router.Run(ctx) })
		select {
		case <-router.Running():
		case <-ctx.Done():
		}

		inFlight := make(chan struct{}, watermillInFlight)
		wg.Go(func() { // producer
			for i := range int64(n) {
				select {
				case inFlight <- struct{}{}:
				case <-ctx.Done():
					return
				}
				m := message.NewMessage(strconv.FormatInt(i, 10), payload(i))
				if err := pubsub.Publish("orders", m); err != nil {
					return
				}
			}
		})

		wg.Go(func() { // batching subscriber
			timer := time.NewTimer(batchTimeout)
			timer.Stop()
			var b []*message.Message
			flush := func() {
				timer.Stop()
				var sum int64
				for _, m := range b {
					sum += int64(binary.LittleEndian.Uint64(m.Payload[8:]))
				}
				chk.batch(len(b), sum)
				for _, m := range b {
					chk.mark(int64(binary.LittleEndian.Uint64(m.Payload)))
					m.Ack()
					<-inFlight
				}
				chk.count(len(b))
				b = b[:0]
			}
			for {
				select {
				case m := <-amounts:
					if len(b) == 0 {
						timer.Reset(batchTimeout)
					}
					b = append(b, m)
					if len(b) == batchSize {
						flush()
					}
				case <-timer.C:
					if len(b) > 0 {
						flush()
					}
				case <-chk.done:
					return
				case <-ctx.Done():
					return
				}
			}
		})

		select {
		case <-chk.done:
		case <-ctx.Done():
		}
		err = errors.Join(router.Close(), pubsub.Close())
		cancel()
		wg.Wait()
		return errors.Join(err, routerErr)
	}, nil
}
