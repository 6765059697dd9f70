package durablestreams_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// pauseHeartbeats blocks the heartbeats of worker name's claims while paused is set, until
// release is closed, as if the worker's process were paused; the hook is removed when the
// test ends.
func pauseHeartbeats(t *testing.T, name string, paused *atomic.Bool, release <-chan struct{}) {
	ds.SetHeartbeatHook(func(_, w string) {
		if w == name && paused.Load() {
			<-release
		}
	})
	t.Cleanup(func() { ds.SetHeartbeatHook(nil) })
}

// keyOf returns the checkpoint key of stream s for the workers' pipeline name.
func keyOf(s *dsclient.Stream) string {
	u, _ := url.Parse(s.URL())
	return ack.CheckpointKey("fleet", u.Path)
}

// takeover: worker A hangs half way through one large response (its sink blocks and its
// heartbeats stop, as a stuck process's would); after the lease, worker B takes over from
// the position A saved in the shared store — inside the response — and delivers the rest
// with the same positions: a sink keyed by (stream, position) ends with every event once.
func takeover(t *testing.T, root string) {
	n := 20000
	if raceDetector {
		n = 6000
	}
	// A lease long enough that A's own heartbeats, slowed by load, keep it until A hangs.
	const lease = 3 * time.Second
	e := newSubEnv(t, root)
	sub := e.pullWake("a", "g", lease)
	s := e.stream("g", 0)
	appendTo(t, s, 0, n, 2000) // one catch-up response holds them all
	key := keyOf(s)

	shared := &ack.MemoryStore{}
	var logMu sync.Mutex
	var saves []savedAt
	sink := newKeyedSink(n)
	release := make(chan struct{})
	var hung atomic.Bool
	pauseHeartbeats(t, "A", &hung, release)
	var seenA atomic.Int64
	hangAt := make(chan struct{})
	var hungAt time.Time // set before hangAt is closed
	a := startWorker(t, "A", []*dsclient.Subscription{sub}, sink, workerOptions{
		store:    savesLog{shared, "A", &logMu, &saves},
		inFlight: 200,
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			if seenA.Add(int64(len(ms))) >= int64(n/2) && hung.CompareAndSwap(false, true) {
				hungAt = time.Now()
				close(hangAt)
			}
			if hung.Load() {
				<-release // a hung process: these messages never finish while B works
			}
			return nil
		},
	})
	unblock := func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}
	t.Cleanup(unblock) // before the workers' own cleanups, which wait for them to stop
	<-hangAt

	var atB ack.Position
	var wonB time.Time
	var bmu sync.Mutex
	bw := startWorker(t, "B", []*dsclient.Subscription{sub}, sink, workerOptions{
		store: savesLog{shared, "B", &logMu, &saves},
		onWon: func(ds.ClaimEvent) {
			v, _, _ := shared.Load(context.Background(), key)
			bmu.Lock()
			defer bmu.Unlock()
			if wonB.IsZero() {
				atB, _ = ack.ParsePosition(v)
				wonB = time.Now()
			}
		},
	})
	sink.waitFull(t, 60*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, 1) })
	bmu.Lock()
	defer bmu.Unlock()
	t.Logf("A hung after %d events; B won the claim %v later, from %s", seenA.Load(), wonB.Sub(hungAt), atB)
	if wonB.Sub(hungAt) < lease/2 {
		t.Errorf("B claimed %v after A hung, before A's lease could have passed", wonB.Sub(hungAt))
	}
	if atB.Skip == 0 || atB.Seq < int64(n/4) || atB.Seq >= int64(n) {
		t.Errorf("B started from %s: want a position inside the one response, past what A finished", atB)
	}
	sink.mu.Lock()
	again := sink.total - len(sink.rows)
	sink.mu.Unlock()
	// Delivered again: at most what A had in flight (200) plus what A finished after its last
	// save, from which B started.
	if bound := 200 + max(0, int(seenA.Load()-atB.Seq)); again > bound {
		t.Errorf("%d events delivered again: more than A's in-flight bound (200) plus what A finished after its last save (%d)", again, bound-200)
	}
	final, _, _ := shared.Load(context.Background(), key)

	// A wakes up: its messages finish, its heartbeat is fenced; nothing moves.
	unblock()
	eventually(t, 10*time.Second, func() (bool, string) {
		return len(a.obs.endReasons()) == 1, "A's claim has not ended"
	})
	if err := a.stop(t); err != nil {
		t.Errorf("A: %v", err)
	}
	if got, _, _ := shared.Load(context.Background(), key); got != final {
		t.Errorf("the checkpoint moved from %s to %s after A was fenced", final, got)
	}
	logMu.Lock()
	for _, sv := range saves {
		if sv.worker == "A" && sv.at.After(wonB) {
			t.Errorf("A saved %s at %v, after B won the claim", sv.value, sv.at.Sub(wonB))
		}
	}
	logMu.Unlock()
	if ends := a.obs.endReasons(); ends[0] != "fenced" {
		t.Errorf("A's claim ended %v, want fenced", ends)
	}
	if err := bw.stop(t); err != nil {
		t.Errorf("B: %v", err)
	}
	sink.check(t)
}

func TestSubscriptionTakeover(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	takeover(t, srv.StreamURL(""))
}

func TestRefSubscriptionTakeover(t *testing.T) {
	takeover(t, ref(t).StreamURL(""))
}

// fencing: worker A's heartbeats are blocked past its lease while its pipeline runs on.
// It stops reading the claim and saving positions before the lease passes; worker B takes
// the streams over after the lease; when A's heartbeat finally goes out it is fenced, and
// neither the shared store nor the server's cursors move because of A after the fence.
func fencing(t *testing.T, root string) {
	const streams = 3
	n := 4000
	if raceDetector {
		n = 1500
	}
	// A lease long enough that A's heartbeats, slowed by load, keep it until they are paused.
	const lease = 3 * time.Second
	e := newSubEnv(t, root)
	sub := e.pullWake("a", "g", lease)
	var all []*dsclient.Stream
	for i := range streams {
		st := e.stream("g", i)
		appendTo(t, st, 0, n, 250)
		all = append(all, st)
	}
	shared := &ack.MemoryStore{}
	var logMu sync.Mutex
	var saves []savedAt
	sink := newKeyedSink(streams * n)
	release := make(chan struct{})
	var paused atomic.Bool
	pauseHeartbeats(t, "A", &paused, release)
	unblock := func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}

	// A's Produce calls are timed, and slowed so that A is half way when paused.
	var produced struct {
		sync.Mutex
		last time.Time
		n    int
	}
	var pausedAt atomic.Pointer[time.Time]
	a := startWorker(t, "A", []*dsclient.Subscription{sub}, sink, workerOptions{
		store: savesLog{shared, "A", &logMu, &saves},
		wrap: func(src pipeline.Producer[event]) pipeline.Producer[event] {
			return pipeline.ProducerFunc[event](func(ctx context.Context, ms []pipeline.Message[event]) (int, error) {
				k, err := src.Produce(ctx, ms)
				if k > 0 {
					produced.Lock()
					produced.last, produced.n = time.Now(), produced.n+k
					total := produced.n
					produced.Unlock()
					if total >= streams*n/10 && paused.CompareAndSwap(false, true) {
						now := time.Now()
						pausedAt.Store(&now)
					}
				}
				return k, err
			})
		},
		handle: func(ctx context.Context, ms []pipeline.Message[event]) error {
			// A sink with latency: A alone would take about four leases, so that it is
			// mid-way when its lease passes.
			time.Sleep(4 * lease * 2 * 50 / time.Duration(streams*n))
			return nil
		},
	})
	eventually(t, 10*time.Second, func() (bool, string) { return a.obs.won() > 0, "A has not claimed" })
	var wonB time.Time
	var mu sync.Mutex
	bw := startWorker(t, "B", []*dsclient.Subscription{sub}, sink, workerOptions{
		store: savesLog{shared, "B", &logMu, &saves},
		onWon: func(ds.ClaimEvent) {
			mu.Lock()
			if wonB.IsZero() {
				wonB = time.Now()
			}
			mu.Unlock()
		},
	})
	t.Cleanup(unblock) // before the workers' own cleanups, which wait for them to stop

	sink.waitFull(t, 60*time.Second)
	eventually(t, 30*time.Second, func() (bool, string) { return caughtUp(context.Background(), sub, streams) })
	mu.Lock()
	won := wonB
	mu.Unlock()
	if won.IsZero() || pausedAt.Load() == nil {
		t.Fatalf("B never won the claim (A paused: %v)", pausedAt.Load() != nil)
	}
	produced.Lock()
	last := produced.last
	produced.Unlock()
	t.Logf("A paused at %v; its last messages %v later; B won %v after the pause",
		pausedAt.Load().Format("15:04:05.000"), last.Sub(*pausedAt.Load()), won.Sub(*pausedAt.Load()))
	if !last.Before(won) {
		t.Errorf("A handed out messages %v after B won the claim", last.Sub(won))
	}
	finalPos := map[string]string{}
	for _, st := range all {
		finalPos[keyOf(st)], _, _ = shared.Load(context.Background(), keyOf(st))
	}
	info, err := sub.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// A resumes: its heartbeat is fenced; then it drains.
	unblock()
	eventually(t, 10*time.Second, func() (bool, string) { return len(a.obs.endReasons()) == 1, "A's claim has not ended" })
	if err := a.stop(t); err != nil {
		t.Errorf("A: %v", err)
	}
	a.obs.mu.Lock()
	end := a.obs.ends[0]
	a.obs.mu.Unlock()
	if end.Reason != ds.ClaimFenced || !errors.Is(end.Err, dsclient.ErrFenced) {
		t.Errorf("A's claim ended %v (%v), want fenced with ErrFenced", end.Reason, end.Err)
	}
	for k, v := range finalPos {
		if got, _, _ := shared.Load(context.Background(), k); got != v {
			t.Errorf("checkpoint %s moved from %s to %s after A was fenced", k, v, got)
		}
	}
	after, err := sub.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, ls := range after.Streams {
		if ls != info.Streams[i] {
			t.Errorf("cursor of %s moved from %s to %s after A was fenced", ls.Path, info.Streams[i].AckedOffset, ls.AckedOffset)
		}
	}
	logMu.Lock()
	for _, sv := range saves {
		if sv.worker == "A" && sv.at.After(won) {
			t.Errorf("A saved %s at %v, after B won the claim", sv.value, sv.at.Sub(won))
		}
	}
	logMu.Unlock()
	if err := bw.stop(t); err != nil {
		t.Errorf("B: %v", err)
	}
	sink.check(t)
}

func TestSubscriptionFencing(t *testing.T) {
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	fencing(t, srv.StreamURL(""))
}

func TestRefSubscriptionFencing(t *testing.T) {
	fencing(t, ref(t).StreamURL(""))
}
