package durablestreams_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// One worker over one subscription reads every stream once, with positions that are the
// events' numbers, and acks every stream up to its tail.
func TestSubscriptionOneWorker(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second, MinLeaseTTL: 10 * time.Millisecond})
	e := newSubEnv(t, srv.StreamURL(""))
	sub := e.pullWake("a", "g", time.Second)
	const streams, per = 5, 300
	var all []*dsclient.Stream
	for i := range streams {
		s := e.stream("g", i)
		appendTo(t, s, 0, per/2, 25)
		all = append(all, s)
	}
	sink := newKeyedSink(streams * per)
	startWorker(t, "w1", []*dsclient.Subscription{sub}, sink, workerOptions{store: &ack.MemoryStore{}})
	for _, s := range all {
		appendTo(t, s, per/2, per, 25)
	}
	sink.waitFull(t, 30*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, streams) })
	sink.check(t)
}
