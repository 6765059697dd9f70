package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

func TestMain(m *testing.M) {
	childMain() // a child process of a test: this test binary, run again
	os.Exit(m.Run())
}

func testServer(t *testing.T) (*dsload.Server, *dsclient.Client) {
	t.Helper()
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	c, err := dsclient.NewClient(dsclient.WithHTTPClient(httpClient()))
	if err != nil {
		t.Fatal(err)
	}
	return &dsload.Server{Name: "dstest", StreamURL: srv.StreamURL, Close: func() { srv.Close() }}, c
}

// The single-stream reader and a fleet of workers each acknowledge every event once, as the
// exactly-once check sees it, and a worker's connections are counted.
func TestRunsExactlyOnce(t *testing.T) {
	srv, c := testServer(t)
	ctx := context.Background()
	const streams, events = 40, 50
	n := int64(streams * events)
	single := srv.StreamURL("single")
	if err := dsload.Fill(ctx, c.Stream(single), int(n), 500); err != nil {
		t.Fatal(err)
	}
	if res := runChildren([]childCfg{{Mode: "single", Stream: single, Name: "single"}}, n, time.Minute); res.invalid != "" || res.rate <= 0 || res.peak < 1 {
		t.Fatalf("single: %+v", res)
	}
	for _, workers := range []int{1, 2} {
		l, err := makeLayout(ctx, c, srv, unique("test"), 3, streams, events, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var cfgs []childCfg
		for j := range workers {
			cfgs = append(cfgs, childCfg{Mode: "worker", Root: l.root, Subs: l.ids(), Name: "w" + string(rune('1'+j))})
		}
		res := runChildren(cfgs, n, time.Minute)
		l.remove(ctx, c)
		if res.invalid != "" || res.rate <= 0 || res.claims < 3 || res.peak < 2 {
			t.Fatalf("%d workers: %+v", workers, res)
		}
		// One live read per worker for the wake stream and a bounded number of stream reads,
		// not a connection per stream.
		if res.peak >= streams {
			t.Fatalf("%d workers: a worker had %d connections open for %d streams", workers, res.peak, streams)
		}
		t.Logf("%d workers: at most %d connections per worker for %d streams", workers, res.peak, streams)
	}
}

// The exactly-once check catches a lost event, a duplicate, and a duplicate that makes up
// for a loss in count and in sum.
func TestExactlyOnceCheck(t *testing.T) {
	const n = 4
	wantSum, wantXor := expected(n)
	check := func(ids ...int64) bool {
		var sum int64
		var x uint64
		for _, id := range ids {
			sum += id
			x ^= hash(id)
		}
		return int64(len(ids)) == n && sum == wantSum && x == wantXor
	}
	if !check(0, 1, 2, 3) || !check(3, 1, 0, 2) {
		t.Fatal("a good run judged wrong")
	}
	for _, ids := range [][]int64{{0, 1, 2}, {0, 1, 2, 3, 3}, {1, 1, 1, 3}, {0, 2, 2, 2}} {
		if check(ids...) {
			t.Errorf("ids %v judged exactly-once", ids)
		}
	}
}

// A failover round kills a worker holding claims and measures a gap. The work outlasts the
// kill: 60,000 events at about 10,000 a second per worker (batches of 1,000, each 100 ms in the
// sink), so that claims are still held 700 ms in however fast the machine is.
func TestFailoverRound(t *testing.T) {
	srv, c := testServer(t)
	cfg := config{lease: time.Second, failoverStreams: 6, failoverEvents: 10000, sinkDelay: 100 * time.Millisecond, killAfter: 700 * time.Millisecond}
	gap, n, err := failoverRound(context.Background(), c, srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || gap <= 0 || gap > cfg.lease+10*time.Second { // a lease, and time for a slow takeover under load
		t.Fatalf("%d claims taken over, gap %v", n, gap)
	}
	t.Logf("%d claims taken over, longest gap %v (lease %v)", n, gap, cfg.lease)
}
