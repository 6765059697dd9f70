package acktest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-go/sluice/ack"
)

// TestCheckpointStore runs the checkpoint store contract tests as subtests of t.
//
// newStore is called once per subtest and must return a store holding no checkpoints
// (for example in a fresh temporary directory, or on a freshly emptied table); it may
// register cleanups with t. Besides round trips, the subtests check the never-backwards
// rule of [ack.CheckpointStore] in both encodings of [ack.Position]: stale saves of older
// positions after newer ones (bare offsets as older versions saved them, and
// "offset,skip,seq" with skips whose decimal text sorts the other way), sentinels, and values
// that are not positions. The subtests do not call t.Parallel.
func TestCheckpointStore(t *testing.T, newStore func(t *testing.T) ack.CheckpointStore) {
	t.Helper()
	ctx := context.Background()

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		o, found, err := s.Load(ctx, "pipeline|missing")
		if err != nil || found || o != "" {
			t.Fatalf(`Load of a missing key = (%q, %v, %v), want ("", false, nil)`, o, found, err)
		}
	})

	t.Run("SaveLoad", func(t *testing.T) {
		s := newStore(t)
		mustSave(t, s, "orders|http://127.0.0.1:4437/v1/stream/orders", "0000000000000000_0000000000000051")
		mustLoad(t, s, "orders|http://127.0.0.1:4437/v1/stream/orders", "0000000000000000_0000000000000051")
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		for i := range 5 {
			o := fmt.Sprintf("%016d_%016d", 0, i*10)
			mustSave(t, s, "k", o)
			mustLoad(t, s, "k", o)
		}
	})

	t.Run("NeverBackwards", func(t *testing.T) {
		s := newStore(t)
		const k = "orders|/v1/stream/orders"
		for _, step := range []struct{ save, want string }{
			{o(10), o(10)},
			{o(5), o(10)}, // a stale save of an older offset
			{o(10), o(10)},
			{o(10) + ",9,19", o(10) + ",9,19"}, // inside the response that starts at o(10)
			{o(10), o(10) + ",9,19"},           // a legacy save of the response's start, late
			{o(10) + ",10,20", o(10) + ",10,20"},
			{o(10) + ",9,19", o(10) + ",10,20"}, // "9" sorts after "10" as text, not as a skip
			{o(10) + ",2,-1", o(10) + ",10,20"},
			{o(5) + ",999,999", o(10) + ",10,20"}, // a higher skip from an earlier offset
			{"-1,100,100", o(10) + ",10,20"},
			{"-1", o(10) + ",10,20"}, // a sentinel never replaces a real position
			{"now", o(10) + ",10,20"},
			{o(20), o(20)}, // the next response's offset, back at its start
			{o(10) + ",100000,100010", o(20)},
			{o(20) + ",1,-1", o(20) + ",1,-1"},
			{o(20) + ",1,21", o(20) + ",1,21"}, // the same place, now with its number
			{o(21), o(21)},
		} {
			mustSave(t, s, k, step.save)
			mustLoad(t, s, k, step.want)
		}
	})

	t.Run("SentinelsAreReplaceable", func(t *testing.T) {
		s := newStore(t)
		for _, step := range []struct{ save, want string }{
			{"now", "now"},
			{"-1", "-1"},
			{"now", "now"},
			{"-1,3,3", "-1,3,3"},
			{"-1,2,2", "-1,3,3"},
			{"-1", "-1,3,3"},
			{"now", "-1,3,3"},
			{o(1), o(1)},
			{"-1,4,4", o(1)},
		} {
			mustSave(t, s, "k", step.save)
			mustLoad(t, s, "k", step.want)
		}
	})

	t.Run("NonPositionsAreReplaced", func(t *testing.T) {
		s := newStore(t)
		for _, step := range []struct{ save, want string }{
			{o(10), o(10)},
			{"a,b,c", "a,b,c"}, // not a position: replaces
			{o(5), o(5)},       // replaces a value that is not a position
			{o(5) + ",0,-1", o(5) + ",0,-1"},
			{"-1", "-1"},
		} {
			mustSave(t, s, "k", step.save)
			mustLoad(t, s, "k", step.want)
		}
	})

	t.Run("KeysAreIndependent", func(t *testing.T) {
		s := newStore(t)
		keys := []string{
			"a", "A", "a|b", "a/b", "a_b", "a b", "a\\b", "a:b", ".", "..", "../escape",
			"pipeline|http://example.com/v1/stream/x?y=1&z=%20",
			"ünïcødé|ストリーム", "tab\there", "new\nline",
			strings.Repeat("long", 300),
			strings.Repeat("long", 300) + "!",
		}
		for i, k := range keys {
			mustSave(t, s, k, fmt.Sprintf("offset-%d", i))
		}
		for i, k := range keys {
			mustLoad(t, s, k, fmt.Sprintf("offset-%d", i))
		}
	})

	t.Run("OffsetsAreOpaque", func(t *testing.T) {
		s := newStore(t)
		for i, v := range []string{"-1", "now", `quote" and \ backslash`, "ünïcødé", strings.Repeat("9", 1000), o(51) + ",250,1250", "x,y"} {
			k := fmt.Sprintf("k%d", i)
			mustSave(t, s, k, v)
			mustLoad(t, s, k, v)
		}
	})

	t.Run("EmptyKey", func(t *testing.T) {
		s := newStore(t)
		if err := s.Save(ctx, "", "1"); !errors.Is(err, ack.ErrEmptyKey) {
			t.Errorf("Save with an empty key: %v, want ErrEmptyKey", err)
		}
		if _, _, err := s.Load(ctx, ""); !errors.Is(err, ack.ErrEmptyKey) {
			t.Errorf("Load with an empty key: %v, want ErrEmptyKey", err)
		}
	})

	t.Run("EndedContext", func(t *testing.T) {
		s := newStore(t)
		mustSave(t, s, "k", "1")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Save(cctx, "k", "2"); err == nil {
			t.Error("Save with an ended context succeeded")
		}
		if _, _, err := s.Load(cctx, "k"); err == nil {
			t.Error("Load with an ended context succeeded")
		}
		mustLoad(t, s, "k", "1")
	})

	t.Run("ConcurrentSaves", func(t *testing.T) {
		s := newStore(t)
		const workers, rounds = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, 2*workers)
		for w := range workers {
			wg.Go(func() { // each worker its own key, offsets in order
				k := fmt.Sprintf("own-%d", w)
				for r := range rounds {
					if err := s.Save(ctx, k, fmt.Sprintf("%08d", r)); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Go(func() { // every worker the same key
				if err := s.Save(ctx, "shared", fmt.Sprintf("%08d", w)); err != nil {
					errs <- err
				}
			})
			wg.Go(func() { // every worker the same key, rising positions inside one offset
				for r := range rounds {
					p := ack.Position{Offset: o(7), Skip: int64(r*workers + w), Seq: -1}
					if err := s.Save(ctx, "inside", p.String()); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Save: %v", err)
		}
		for w := range workers {
			mustLoad(t, s, fmt.Sprintf("own-%d", w), fmt.Sprintf("%08d", rounds-1))
		}
		mustLoad(t, s, "shared", fmt.Sprintf("%08d", workers-1)) // the highest: never backwards
		mustLoad(t, s, "inside", ack.Position{Offset: o(7), Skip: rounds*workers - 1, Seq: -1}.String())
	})
}

// o returns a Durable Streams offset, as the servers write them.
func o(n int) string { return fmt.Sprintf("%016d_%016d", 0, n) }

func mustSave(t *testing.T, s ack.CheckpointStore, key, offset string) {
	t.Helper()
	if err := s.Save(context.Background(), key, offset); err != nil {
		t.Fatalf("Save(%q, %q): %v", key, offset, err)
	}
}

func mustLoad(t *testing.T, s ack.CheckpointStore, key, want string) {
	t.Helper()
	o, found, err := s.Load(context.Background(), key)
	if err != nil || !found || o != want {
		t.Fatalf("Load(%q) = (%q, %v, %v), want (%q, true, nil)", key, o, found, err, want)
	}
}
