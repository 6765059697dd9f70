package durablestreams_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// fleet runs three workers (three pipelines sharing one checkpoint store) over 50 streams
// under the patterns of 5 subscriptions, with appends during the run: every event becomes
// one row of a sink keyed by (stream, position), every position is the event's number, and
// every subscription's cursors reach the streams' tails.
func fleet(t *testing.T, root string, lease time.Duration) {
	const groups, perGroup, before, after = 5, 10, 100, 100
	e := newSubEnv(t, root)
	var subs []*dsclient.Subscription
	for g := range groups {
		subs = append(subs, e.pullWake(fmt.Sprintf("sub%d", g), fmt.Sprintf("g%d", g), lease))
	}
	var streams []*dsclient.Stream
	for g := range groups {
		for i := range perGroup {
			s := e.stream(fmt.Sprintf("g%d", g), i)
			appendTo(t, s, 0, before, 20)
			streams = append(streams, s)
		}
	}
	sink := newKeyedSink(len(streams) * (before + after))
	store := &ack.MemoryStore{}
	var workers []*worker
	for i := range 3 {
		// Claims are tried every 2s besides the wakes, so that a claim that missed a wake
		// does not wait out a lease.
		workers = append(workers, startWorker(t, fmt.Sprintf("w%d", i), subs, sink, workerOptions{store: store, claimInt: 2 * time.Second}))
	}
	// Writers append the rest while the workers run.
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(streams); j += 5 {
				appendTo(t, streams[j], before, before+after, 10)
			}
		}()
	}
	wg.Wait()
	t0 := time.Now()
	t.Logf("appended")
	sink.waitFull(t, 60*time.Second)
	t.Logf("all rows in after %v", time.Since(t0))
	for _, sub := range subs {
		eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, perGroup) })
	}
	t.Logf("caught up after %v", time.Since(t0))
	for _, w := range workers {
		if err := w.stop(t); err != nil {
			t.Errorf("worker %s: %v", w.name, err)
		}
		t.Logf("%s: claims won %d, ends %v", w.name, w.obs.won(), w.obs.endReasons())
	}
	t.Logf("stopped after %v", time.Since(t0))
	sink.check(t)
	if sink.total != sink.want {
		// No worker failed and every claim ended done or released with what was
		// committed: nothing is delivered twice.
		t.Errorf("%d deliveries for %d rows: no failover happened, none should repeat", sink.total, sink.want)
	}
}

func TestSubscriptionFleet(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	fleet(t, srv.StreamURL(""), 10*time.Second) // no failover here: a lease that load cannot make pass
}

func TestRefSubscriptionFleet(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	fleet(t, ref(t).StreamURL(""), 10*time.Second)
}
