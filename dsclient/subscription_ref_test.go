package dsclient_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// subRef returns the reference server the subscription tests share, started with webhooks on
// (the package's other tests share one with them off).
func subRef(t testing.TB) *refserver.Server {
	t.Helper()
	return refserver.Shared(t, refserver.Options{LongPollTimeout: 500 * time.Millisecond, Webhooks: true})
}

// onSubServers runs f against the in-process server and the reference server; root is the
// stream root URL.
func onSubServers(t *testing.T, f func(t *testing.T, root string)) {
	t.Run("dstest", func(t *testing.T) {
		f(t, dstest.ForTest(t, dstest.Options{LongPollTimeout: 500 * time.Millisecond}).StreamURL(""))
	})
	t.Run("ref", func(t *testing.T) { f(t, subRef(t).StreamURL("")) })
}

// prefix returns a unique first path segment for a test's streams and subscriptions.
func prefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "sub" + hex.EncodeToString(b[:])
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createJSON creates a JSON stream at path under the subscription's root.
func createJSON(t *testing.T, sub *ds.Subscription, path string) *ds.Stream {
	t.Helper()
	s := sub.Stream(path)
	if _, err := s.Create(context.Background(), ds.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func appendEvents(t *testing.T, s *ds.Stream, from, n int) ds.Offset {
	t.Helper()
	var last ds.Offset
	for i := from; i < from+n; i++ {
		r, err := s.AppendJSON(context.Background(), event{N: i}, ds.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		last = r.NextOffset
	}
	return last
}

// nextWake follows the wake stream from *from until an event of subscription id with a
// generation of at least gen arrives, and returns it; *from moves past it.
func nextWake(t *testing.T, wake *ds.Stream, from *ds.Offset, id string, gen int64) ds.WakeEvent {
	t.Helper()
	ctx := ctxFor(t, 15*time.Second)
	r := wake.Reader(ctx, ds.ReadOptions{Offset: *from, Live: ds.LiveLongPoll})
	defer r.Close()
	for {
		c, err := r.Next()
		if err != nil {
			t.Fatalf("waiting for a wake of %s at generation >= %d: %v", id, gen, err)
		}
		var found *ds.WakeEvent
		for {
			var e ds.WakeEvent
			if err := c.DecodeItem(&e); err != nil {
				break
			}
			if found == nil && e.Type == "wake" && e.SubscriptionID == id && e.Generation >= gen {
				found = &e
			}
		}
		*from = c.NextOffset()
		if found != nil {
			return *found
		}
	}
}

// readPending reads each pending stream of streams from its acked offset to the tail, and
// returns the events read and the acks that cover them.
func readPending(t *testing.T, sub *ds.Subscription, streams []ds.LinkedStream) (map[string][]int, []ds.StreamAck) {
	t.Helper()
	got := map[string][]int{}
	var acks []ds.StreamAck
	for _, ls := range streams {
		if !ls.HasPending {
			continue
		}
		evs, last, err := ds.ReadJSON[event](context.Background(), sub.Stream(ls.Path), ds.ReadOptions{Offset: ls.AckedOffset})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			got[ls.Path] = append(got[ls.Path], e.N)
		}
		acks = append(acks, ds.StreamAck{Stream: ls.Path, Offset: last.NextOffset})
	}
	return got, acks
}

func linked(info ds.SubscriptionInfo, path string) (ds.LinkedStream, bool) {
	for _, l := range info.Streams {
		if l.Path == path {
			return l, true
		}
	}
	return ds.LinkedStream{}, false
}

func subErr(t *testing.T, err error, kind error, code string) *ds.SubscriptionError {
	t.Helper()
	var se *ds.SubscriptionError
	var e *ds.Error
	if !errors.Is(err, kind) || !errors.As(err, &se) || !errors.As(err, &e) || se.Code != code {
		t.Fatalf("got %v, want %v with code %s", err, kind, code)
	}
	return se
}

// Create, re-confirm, conflict, read, explicit links added and removed, delete.
func TestSubscriptionLifecycle(t *testing.T) {
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 30*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-life")
		old := createJSON(t, sub, p+"/events/old")
		tail := appendEvents(t, old, 0, 3)
		createJSON(t, sub, p+"/wake")
		createJSON(t, sub, p+"/other/x")
		cfg := ds.SubscriptionConfig{Pattern: p + "/events/*", WakeStream: p + "/wake", LeaseTTL: 2 * time.Second, Description: "lifecycle"}

		info, created, err := sub.Create(ctx, cfg)
		if err != nil || !created {
			t.Fatalf("create: %v, created %v", err, created)
		}
		if info.ID != sub.ID() || info.Type != ds.SubscriptionPullWake || info.Pattern != cfg.Pattern || info.WakeStream != cfg.WakeStream ||
			info.LeaseTTL != 2*time.Second || info.Description != "lifecycle" || info.Status != ds.SubscriptionActive {
			t.Fatalf("create: %+v", info)
		}
		// An existing matching stream is linked at its tail: its history is not delivered.
		if l, ok := linked(info, p+"/events/old"); !ok || l.LinkType != ds.LinkGlob || l.AckedOffset != tail {
			t.Fatalf("existing stream: %+v %v, want glob link at %s", l, ok, tail)
		}
		if _, ok := linked(info, p+"/other/x"); ok {
			t.Fatal("a stream outside the pattern is linked")
		}

		if _, created, err := sub.Create(ctx, cfg); err != nil || created {
			t.Fatalf("re-confirm: %v, created %v", err, created)
		}
		cfg2 := cfg
		cfg2.LeaseTTL = 3 * time.Second
		_, _, err = sub.Create(ctx, cfg2)
		subErr(t, err, ds.ErrSubscriptionConflict, "SUBSCRIPTION_ALREADY_EXISTS")
		if !errors.Is(err, ds.ErrConflict) {
			t.Fatalf("conflict does not match ErrConflict: %v", err)
		}

		if err := sub.AddStreams(ctx, p+"/other/x", p+"/events/old"); err != nil {
			t.Fatal(err)
		}
		info, err = sub.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := linked(info, p+"/other/x"); !ok || l.LinkType != ds.LinkExplicit {
			t.Fatalf("added stream: %+v %v", l, ok)
		}
		if l, ok := linked(info, p+"/events/old"); !ok || l.LinkType != ds.LinkExplicit || l.AckedOffset != tail {
			t.Fatalf("stream linked both ways: %+v %v, want explicit at %s", l, ok, tail)
		}

		// Removing explicit links: the glob link stays, the other goes; removing again is
		// fine.
		for range 2 {
			if err := sub.RemoveStream(ctx, p+"/other/x"); err != nil {
				t.Fatal(err)
			}
		}
		if err := sub.RemoveStream(ctx, p+"/events/old"); err != nil {
			t.Fatal(err)
		}
		info, _ = sub.Get(ctx)
		if _, ok := linked(info, p+"/other/x"); ok {
			t.Fatalf("removed stream still linked: %+v", info.Streams)
		}
		if l, ok := linked(info, p+"/events/old"); !ok || l.LinkType != ds.LinkGlob {
			t.Fatalf("glob link after removing the explicit one: %+v %v", l, ok)
		}

		// "**" matches any depth; a pattern and explicit streams add up.
		deep := createJSON(t, sub, p+"/events/deep/x")
		appendEvents(t, deep, 0, 1)
		sub2 := ds.NewSubscription(root, p+"-deep")
		info, _, err = sub2.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/**", Streams: []string{p + "/other/x"}, WakeStream: p + "/wake"})
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, l := range info.Streams {
			paths = append(paths, l.Path+":"+string(l.LinkType))
		}
		slices.Sort(paths)
		if want := []string{p + "/events/deep/x:glob", p + "/events/old:glob", p + "/other/x:explicit"}; !slices.Equal(paths, want) {
			t.Fatalf("linked %v, want %v", paths, want)
		}

		if err := sub.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = sub.Get(ctx)
		subErr(t, err, ds.ErrSubscriptionNotFound, "SUBSCRIPTION_NOT_FOUND")
		if !errors.Is(err, ds.ErrNotFound) {
			t.Fatalf("not found does not match ErrNotFound: %v", err)
		}
		err = sub.AddStreams(ctx, p+"/other/x")
		subErr(t, err, ds.ErrSubscriptionNotFound, "SUBSCRIPTION_NOT_FOUND")
	})
}

// A worker's round: wake event, claim (a second claim is refused with the holder),
// heartbeat with acks (the cursor moves and the lease is extended), ack done, no pending
// work; then release wakes the subscription again for another worker, and the released
// claim is fenced.
func TestSubscriptionClaimAckRelease(t *testing.T) {
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 60*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-claim")
		wake := createJSON(t, sub, p+"/wake")
		a := createJSON(t, sub, p+"/events/a")
		if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/*", WakeStream: p + "/wake", LeaseTTL: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		_, err := sub.Claim(ctx, "w1")
		subErr(t, err, ds.ErrNoPendingWork, "NO_PENDING_WORK")

		appendEvents(t, a, 0, 3)
		b := createJSON(t, sub, p+"/events/b") // created after the subscription: linked from its start
		appendEvents(t, b, 100, 2)
		from := ds.Beginning
		ev := nextWake(t, wake, &from, sub.ID(), 1)

		before := time.Now()
		c, err := sub.Claim(ctx, "w1")
		if err != nil {
			t.Fatal(err)
		}
		if c.Generation() != ev.Generation || c.WakeID() == "" || c.LeaseTTL() != 10*time.Second || c.Worker() != "w1" {
			t.Fatalf("claim: gen %d (wake event %d), wake %q, ttl %s", c.Generation(), ev.Generation, c.WakeID(), c.LeaseTTL())
		}
		if d := c.Deadline(); d.Before(before.Add(10*time.Second)) || d.After(time.Now().Add(10*time.Second)) {
			t.Fatalf("deadline %s not claim time + TTL", d)
		}
		if len(c.Pending()) != 2 {
			t.Fatalf("pending: %+v", c.Streams())
		}
		for _, ls := range c.Pending() {
			if ls.Path == p+"/events/b" && ls.AckedOffset != ds.Beginning {
				t.Fatalf("stream created after the subscription: acked %q, want -1", ls.AckedOffset)
			}
		}

		_, err = sub.Claim(ctx, "w2")
		se := subErr(t, err, ds.ErrAlreadyClaimed, "ALREADY_CLAIMED")
		if se.Holder != "w1" || se.Generation != c.Generation() {
			t.Fatalf("already claimed: holder %q generation %d", se.Holder, se.Generation)
		}

		got, acks := readPending(t, sub, c.Pending())
		if len(got[p+"/events/a"]) != 3 || len(got[p+"/events/b"]) != 2 || got[p+"/events/b"][0] != 100 {
			t.Fatalf("read: %v", got)
		}
		d0 := c.Deadline()
		if res, err := c.Ack(ctx, acks[:1], false); err != nil || res.NextWake {
			t.Fatalf("heartbeat: %+v %v", res, err)
		}
		if !c.Deadline().After(d0) {
			t.Fatalf("heartbeat did not move the deadline from %s", d0)
		}
		info, _ := sub.Get(ctx)
		if l, _ := linked(info, acks[0].Stream); l.AckedOffset != acks[0].Offset {
			t.Fatalf("cursor after heartbeat: %+v, want %s", l, acks[0].Offset)
		}
		if res, err := c.Ack(ctx, acks[1:], true); err != nil || res.NextWake {
			t.Fatalf("done: %+v %v", res, err)
		}
		if !c.Deadline().IsZero() {
			t.Fatal("deadline after done is not zero")
		}
		_, err = sub.Claim(ctx, "w2")
		subErr(t, err, ds.ErrNoPendingWork, "NO_PENDING_WORK")
		_, err = c.Ack(ctx, nil, false)
		subErr(t, err, ds.ErrFenced, "FENCED")

		// Release with work pending: a new wake for the next worker; the old claim is fenced.
		appendEvents(t, a, 3, 1)
		ev = nextWake(t, wake, &from, sub.ID(), c.Generation()+1)
		c2, err := sub.Claim(ctx, "w2")
		if err != nil {
			t.Fatal(err)
		}
		if c2.Generation() != ev.Generation {
			t.Fatalf("claim generation %d, wake event %d", c2.Generation(), ev.Generation)
		}
		if err := c2.Release(ctx); err != nil {
			t.Fatal(err)
		}
		ev = nextWake(t, wake, &from, sub.ID(), c2.Generation()+1)
		c3, err := sub.Claim(ctx, "w3")
		if err != nil {
			t.Fatal(err)
		}
		if c3.Generation() <= c2.Generation() {
			t.Fatalf("generation after release %d, before %d", c3.Generation(), c2.Generation())
		}
		_, err = c2.Ack(ctx, nil, true)
		subErr(t, err, ds.ErrFenced, "FENCED")
		subErr(t, c2.Release(ctx), ds.ErrFenced, "FENCED")
		got, acks = readPending(t, sub, c3.Pending())
		if len(got) != 1 || len(got[p+"/events/a"]) != 1 || got[p+"/events/a"][0] != 3 {
			t.Fatalf("after release, read %v", got)
		}
		if _, err := c3.Ack(ctx, acks, true); err != nil {
			t.Fatal(err)
		}

		// Deleting the subscription ends a claim: its acks fail and move nothing.
		appendEvents(t, b, 102, 1)
		nextWake(t, wake, &from, sub.ID(), c3.Generation()+1)
		c4, err := sub.Claim(ctx, "w4")
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = c4.Ack(ctx, nil, false)
		subErr(t, err, ds.ErrSubscriptionNotFound, "SUBSCRIPTION_NOT_FOUND")
		if !c4.Deadline().IsZero() {
			t.Fatal("a claim on a deleted subscription has a deadline")
		}
	})
}

// After the lease passes without a heartbeat, the server wakes the subscription at the next
// generation: another worker claims it, and the old holder's acks are fenced and move no
// cursor.
func TestSubscriptionLeaseExpiryFences(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 60*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-lease")
		wake := createJSON(t, sub, p+"/wake")
		if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/*", WakeStream: p + "/wake", LeaseTTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		a := createJSON(t, sub, p+"/events/a")
		tail := appendEvents(t, a, 0, 2)
		from := ds.Beginning
		nextWake(t, wake, &from, sub.ID(), 1)
		old, err := sub.Claim(ctx, "old")
		if err != nil {
			t.Fatal(err)
		}

		// The server's clock decides when the lease passes: poll with a deadline.
		var c *ds.Claim
		for c == nil {
			c, err = sub.Claim(ctx, "new")
			if err != nil {
				if !errors.Is(err, ds.ErrAlreadyClaimed) {
					t.Fatalf("claim while the old lease runs: %v", err)
				}
				if time.Now().After(old.Deadline().Add(10 * time.Second)) {
					t.Fatal("the lease did not pass within 10s of its deadline")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		if time.Now().Before(old.Deadline()) {
			t.Fatalf("claimed at %s, before the old lease's deadline %s", time.Now(), old.Deadline())
		}
		if c.Generation() != old.Generation()+1 {
			t.Fatalf("generation %d after expiry, want %d", c.Generation(), old.Generation()+1)
		}
		ev := nextWake(t, wake, &from, sub.ID(), old.Generation()+1)
		if ev.Generation != c.Generation() {
			t.Fatalf("wake event after expiry at generation %d, want %d", ev.Generation, c.Generation())
		}
		_, err = old.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: tail}}, false)
		subErr(t, err, ds.ErrFenced, "FENCED")
		if !old.Deadline().IsZero() {
			t.Fatal("a fenced claim has a deadline")
		}
		info, _ := sub.Get(ctx)
		if l, _ := linked(info, p+"/events/a"); l.AckedOffset != ds.Beginning {
			t.Fatalf("a fenced ack moved the cursor to %s", l.AckedOffset)
		}
		if _, err := c.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: tail}}, true); err != nil {
			t.Fatal(err)
		}
	})
}

// Heartbeats keep the lease past its TTL: other workers are refused all along.
func TestSubscriptionHeartbeatKeepsLease(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 60*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-hb")
		wake := createJSON(t, sub, p+"/wake")
		if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/*", WakeStream: p + "/wake", LeaseTTL: 3 * time.Second}); err != nil {
			t.Fatal(err)
		}
		a := createJSON(t, sub, p+"/events/a")
		appendEvents(t, a, 0, 1)
		from := ds.Beginning
		nextWake(t, wake, &from, sub.ID(), 1)
		c, err := sub.Claim(ctx, "w1")
		if err != nil {
			t.Fatal(err)
		}
		end := c.Deadline().Add(time.Second)
		for time.Now().Before(end) {
			if _, err := c.Ack(ctx, nil, false); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
			_, err := sub.Claim(ctx, "w2")
			subErr(t, err, ds.ErrAlreadyClaimed, "ALREADY_CLAIMED")
			time.Sleep(250 * time.Millisecond)
		}
		if err := c.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Acks the server refuses: an unlinked stream, an offset past the tail or before the
// cursor. None of a refused request's acks is applied.
func TestSubscriptionInvalidAck(t *testing.T) {
	onSubServers(t, func(t *testing.T, root string) {
		ctx := ctxFor(t, 30*time.Second)
		p := prefix()
		sub := ds.NewSubscription(root, p+"-inval")
		wake := createJSON(t, sub, p+"/wake")
		if _, _, err := sub.Create(ctx, ds.SubscriptionConfig{Pattern: p + "/events/*", WakeStream: p + "/wake"}); err != nil {
			t.Fatal(err)
		}
		a := createJSON(t, sub, p+"/events/a")
		first := appendEvents(t, a, 0, 1)
		tail := appendEvents(t, a, 1, 1)
		other := createJSON(t, sub, p+"/other")
		otherTail := appendEvents(t, other, 0, 1)
		from := ds.Beginning
		nextWake(t, wake, &from, sub.ID(), 1)
		c, err := sub.Claim(ctx, "w1")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: first}, {Stream: p + "/other", Offset: otherTail}}, false)
		subErr(t, err, ds.ErrInvalidAck, "INVALID_OFFSET")
		info, _ := sub.Get(ctx)
		if l, _ := linked(info, p+"/events/a"); l.AckedOffset != ds.Beginning {
			t.Fatalf("a refused request applied an ack: %+v", l)
		}
		if _, err := c.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: tail}}, false); err != nil {
			t.Fatal(err)
		}
		_, err = c.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: first}}, false)
		subErr(t, err, ds.ErrInvalidAck, "INVALID_OFFSET")
		// Client-side checks send nothing.
		if _, err := c.Ack(ctx, []ds.StreamAck{{Stream: p + "/events/a", Offset: ds.Beginning}}, false); !errors.Is(err, ds.ErrInvalidArgument) {
			t.Fatalf("ack at -1: %v", err)
		}
		if _, err := c.Ack(ctx, nil, true); err != nil {
			t.Fatal(err)
		}
	})
}
