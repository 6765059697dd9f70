package durablestreams_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
)

// One stream of 100,000 messages and 20 streams of 10 in one claim: the streams take
// turns, so the small ones are handed out, and processed, while the big one has barely
// begun.
func TestSubscriptionFairness(t *testing.T) {
	big := 100000
	if raceDetector {
		big = 30000
	}
	const small, smallN, perTurn = 20, 10, 50
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", 2*time.Second)
	appendTo(t, e.stream("g", 0), 0, big, 5000) // first in the claim's order
	for i := 1; i <= small; i++ {
		appendTo(t, e.stream("g", i), 0, smallN, smallN)
	}

	var mu sync.Mutex
	var bigOut, smallOut, bigAtLastSmall int
	smallDone := make(chan struct{})
	sink := newKeyedSink(big + small*smallN)
	var bigDone, bigAtSmallDone, smallSunk int
	w := startWorker(t, "w", []*dsclient.Subscription{sub}, sink, workerOptions{
		store:   &ack.MemoryStore{},
		perTurn: perTurn,
		wrap: func(src pipeline.Producer[event]) pipeline.Producer[event] {
			return pipeline.ProducerFunc[event](func(ctx context.Context, ms []pipeline.Message[event]) (int, error) {
				n, err := src.Produce(ctx, ms)
				mu.Lock()
				defer mu.Unlock()
				for i := range n {
					if strings.HasSuffix(ms[i].Metadata.Stream, "/s000") {
						bigOut++
					} else if smallOut++; smallOut == small*smallN {
						bigAtLastSmall = bigOut
					}
				}
				return n, err
			})
		},
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			mu.Lock()
			defer mu.Unlock()
			for i := range ms {
				if strings.HasSuffix(ms[i].Metadata.Stream, "/s000") {
					bigDone++
				} else if smallSunk++; smallSunk == small*smallN {
					bigAtSmallDone = bigDone
					close(smallDone)
				}
			}
			return nil
		},
	})
	select {
	case <-smallDone:
	case <-time.After(60 * time.Second):
		t.Fatal("the small streams were not all processed")
	}
	sink.waitFull(t, 120*time.Second)
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	sink.check(t)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("when the last small message was handed out, %d of the big stream's %d were; when the small ones were all processed, %d were",
		bigAtLastSmall, big, bigAtSmallDone)
	// Each turn gives a stream at most perTurn messages: the small streams are all handed
	// out within a few rounds of turns (a small stream needs one turn for its messages and
	// one to see its end; at most MaxOpenStreams are read at once).
	if limit := 6 * perTurn; bigAtLastSmall > limit {
		t.Errorf("the big stream handed out %d messages before the small ones were all out, want at most %d", bigAtLastSmall, limit)
	}
	if bigAtSmallDone > big/10 {
		t.Errorf("%d of the big stream's %d messages were processed before the small streams', want at most a tenth", bigAtSmallDone, big)
	}
}
