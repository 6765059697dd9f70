package ack_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
)

// Every timing test runs in a synctest bubble: time moves only when every goroutine of the
// bubble is blocked, so intervals are exact and nothing depends on the machine's speed.

// recordingStore records every save attempt with the bubble's time, and fails attempts while
// fail is set.
type recordingStore struct {
	mu       sync.Mutex
	attempts []attempt
	fail     error
	ack.MemoryStore
}

type attempt struct {
	offset string
	at     time.Time
	ok     bool
}

func (s *recordingStore) Save(ctx context.Context, key, offset string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := attempt{offset: offset, at: time.Now(), ok: s.fail == nil}
	s.attempts = append(s.attempts, a)
	if !a.ok {
		return s.fail
	}
	return s.MemoryStore.Save(ctx, key, offset)
}

func (s *recordingStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// recorded returns the offsets of the successful saves.
func (s *recordingStore) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.attempts {
		if a.ok {
			out = append(out, a.offset)
		}
	}
	return out
}

// since returns when each attempt happened, relative to start.
func (s *recordingStore) since(start time.Time) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, a := range s.attempts {
		out = append(out, a.at.Sub(start))
	}
	return out
}

// advance tracks one message with next as the offset after it and marks it done.
func advance[O any](t *testing.T, tr *ack.Tracker[O], next O) {
	t.Helper()
	c, err := tr.Track(context.Background(), 1, next)
	if err != nil {
		t.Fatal(err)
	}
	c.Done(1)
}

func TestSaverCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		store := &recordingStore{}
		var onSave []string
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[int]{
			Interval: time.Second,
			OnSave:   func(o string) { onSave = append(onSave, o) },
		})
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		defer wg.Wait()
		defer cancel()

		start := time.Now()
		advance(t, tr, 1) // the first advance is saved at once
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("saves after the first advance: %v, want [1]", got)
		}
		time.Sleep(100 * time.Millisecond)
		advance(t, tr, 2)
		advance(t, tr, 3)
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("saves within the interval: %v, want [1]", got)
		}
		time.Sleep(900*time.Millisecond - 1)
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"1"}) {
			t.Fatalf("saves just before the interval ends: %v, want [1]", got)
		}
		time.Sleep(1)
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"1", "3"}) {
			t.Fatalf("saves after the interval: %v, want [1 3]", got)
		}
		if got := store.since(start); !slices.Equal(got, []time.Duration{0, time.Second}) {
			t.Fatalf("saves at %v, want [0 1s]", got)
		}
		time.Sleep(5 * time.Second) // no advance: no save
		synctest.Wait()
		advance(t, tr, 4) // more than an interval since the last save: saved at once
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"1", "3", "4"}) {
			t.Fatalf("saves: %v, want [1 3 4]", got)
		}
		if got := store.since(start); got[2] != 6*time.Second {
			t.Fatalf("third save at %v, want 6s", got[2])
		}

		advance(t, tr, 5)
		cancel()
		wg.Wait()
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := store.recorded(); !slices.Equal(got, []string{"1", "3", "4", "5"}) {
			t.Fatalf("saves after Flush twice: %v, want [1 3 4 5]", got)
		}
		if !slices.Equal(onSave, []string{"1", "3", "4", "5"}) {
			t.Fatalf("OnSave saw %v, want [1 3 4 5]", onSave)
		}
	})
}

func TestSaverNoAdvanceNoWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := ack.NewTracker("resume-here", ack.TrackerOptions{})
		store := &recordingStore{}
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[string]{})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Run(ctx)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := store.since(time.Now()); len(got) != 0 {
			t.Fatalf("%d save attempts with no advance, want none", len(got))
		}
	})
}

// A failed save is reported and tried again exactly one interval later, whatever advances
// arrive in between, with the latest committed offset; the retries go on until one succeeds.
func TestSaverRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		boom := errors.New("store down")
		store := &recordingStore{fail: boom}
		var errs []error
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[int]{
			Interval: 2 * time.Second,
			Encode:   func(o int) string { return "o" + strconv.Itoa(o) },
			OnError:  func(err error) { errs = append(errs, err) },
		})
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		defer func() { cancel(); wg.Wait() }()

		start := time.Now()
		advance(t, tr, 1)
		synctest.Wait()
		time.Sleep(500 * time.Millisecond)
		advance(t, tr, 2) // while a retry is scheduled: no attempt of its own
		synctest.Wait()
		time.Sleep(3500 * time.Millisecond) // two more failed attempts, at 2s and 4s
		synctest.Wait()
		if got := store.since(start); !slices.Equal(got, []time.Duration{0, 2 * time.Second, 4 * time.Second}) {
			t.Fatalf("attempts at %v, want [0 2s 4s]", got)
		}
		if len(errs) != 3 || !errors.Is(errs[0], boom) {
			t.Fatalf("OnError saw %v, want three times %v", errs, boom)
		}
		store.setFail(nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := store.recorded(); !slices.Equal(got, []string{"o2"}) {
			t.Fatalf("saves after the store came back: %v, want [o2]", got)
		}
		if got := store.since(start); got[len(got)-1] != 6*time.Second {
			t.Fatalf("the successful retry at %v, want 6s", got[len(got)-1])
		}
		time.Sleep(10 * time.Second) // saved: no more attempts
		synctest.Wait()
		if got := store.since(start); len(got) != 4 {
			t.Fatalf("attempts at %v, want four", got)
		}
	})
}

// blockingStore's saves wait until their context ends.
type blockingStore struct {
	ack.MemoryStore
	started chan struct{}
}

func (s *blockingStore) Save(ctx context.Context, key, offset string) error {
	s.started <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// Run returns when its context ends, cancelling the save in progress through it, and does
// not report that cancellation as a failure.
func TestSaverRunCancelsSaveInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		store := &blockingStore{started: make(chan struct{}, 1)}
		var errs []error
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[int]{OnError: func(err error) { errs = append(errs, err) }})
		done := make(chan struct{})
		go func() { defer close(done); s.Run(ctx) }()
		advance(t, tr, 1)
		<-store.started
		cancel()
		<-done
		if len(errs) != 0 {
			t.Fatalf("OnError saw %v for a cancelled run", errs)
		}
	})
}

// With Compare set, a Saver never saves an offset before the last one saved, here when the
// tracker's offset moves backwards because a source followed an offset that regressed.
// Without it, the Saver passes the value on, and only the store's own rule holds it back.
func TestSaverCompareNeverBackwards(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			tr := ack.NewTracker("b", ack.TrackerOptions{})
			store := &recordingStore{}
			opts := ack.SaverOptions[string]{}
			if guarded {
				opts.Compare = strings.Compare
			}
			s := ack.NewSaver(tr, store, "k", opts)
			flush := func() {
				t.Helper()
				if err := s.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			advance(t, tr, "a") // behind the start
			flush()
			advance(t, tr, "c")
			flush()
			advance(t, tr, "bb") // behind "c"
			flush()
			advance(t, tr, "d")
			flush()
			want := []string{"c", "d"}
			if !guarded {
				want = []string{"a", "c", "bb", "d"}
			}
			var got []string
			for _, a := range store.attempts {
				got = append(got, a.offset)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Compare set %v: saves attempted %v, want %v", guarded, got, want)
			}
		})
	}
}

// A Saver of positions, as the Durable Streams producer runs one: positions inside one
// response are saved as they advance, a start at "now" is left for the first real position,
// and ack.Position.Compare keeps it from going back.
func TestSaverPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const x, y = "0000000000000000_0000000000000010", "0000000000000000_0000000000000020"
		tr := ack.NewTracker(ack.Position{Offset: "now", Seq: -1}, ack.TrackerOptions{})
		store := &recordingStore{}
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[ack.Position]{
			Encode:  ack.Position.String,
			Compare: ack.Position.Compare,
		})
		for _, p := range []ack.Position{
			{Offset: x, Seq: -1},
			{Offset: x, Skip: 9, Seq: -1},
			{Offset: x, Skip: 10, Seq: -1},
			{Offset: x, Skip: 4, Seq: -1}, // behind: not saved
			{Offset: y, Skip: 1, Seq: -1},
			{Offset: y, Skip: 1, Seq: 31}, // the same place, with its number: saved
		} {
			advance(t, tr, p)
			if err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{x, x + ",9,-1", x + ",10,-1", y + ",1,-1", y + ",1,31"}
		if got := store.recorded(); !slices.Equal(got, want) {
			t.Fatalf("saves %v, want %v", got, want)
		}
	})
}
