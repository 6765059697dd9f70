package ack_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sluice-go/sluice/ack"
)

// recordingStore records every save with the time it happened, and fails while fail is set.
type recordingStore struct {
	mu    sync.Mutex
	saves []string
	times []time.Time
	fail  error
	ack.MemoryStore
}

func (s *recordingStore) Save(ctx context.Context, key, offset string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.saves = append(s.saves, offset)
	s.times = append(s.times, time.Now())
	return s.MemoryStore.Save(ctx, key, offset)
}

func (s *recordingStore) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.saves...)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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

		track := func(next int) {
			c, _ := tr.Track(ctx, 1, next)
			c.Done(1)
		}
		start := time.Now()
		track(1) // the first advance is saved at once
		synctest.Wait()
		if got := store.recorded(); !equal(got, []string{"1"}) {
			t.Fatalf("saves after the first advance: %v, want [1]", got)
		}
		time.Sleep(100 * time.Millisecond)
		track(2)
		track(3)
		synctest.Wait()
		if got := store.recorded(); !equal(got, []string{"1"}) {
			t.Fatalf("saves within the interval: %v, want [1]", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := store.recorded(); !equal(got, []string{"1", "3"}) {
			t.Fatalf("saves after the interval: %v, want [1 3]", got)
		}
		if d := store.times[1].Sub(start); d != time.Second {
			t.Fatalf("second save %v after the first, want 1s", d)
		}
		time.Sleep(5 * time.Second) // no advance: no save
		synctest.Wait()
		track(4) // more than an interval since the last save: saved at once
		synctest.Wait()
		if got := store.recorded(); !equal(got, []string{"1", "3", "4"}) {
			t.Fatalf("saves: %v, want [1 3 4]", got)
		}

		track(5)
		cancel()
		wg.Wait()
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := store.recorded(); !equal(got, []string{"1", "3", "4", "5"}) {
			t.Fatalf("saves after Flush twice: %v, want [1 3 4 5]", got)
		}
		if !equal(onSave, []string{"1", "3", "4", "5"}) {
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
		if got := store.recorded(); len(got) != 0 {
			t.Fatalf("saves with no advance: %v, want none", got)
		}
	})
}

func TestSaverRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tr := ack.NewTracker(0, ack.TrackerOptions{})
		boom := errors.New("store down")
		store := &recordingStore{fail: boom}
		errs := make(chan error, 10)
		s := ack.NewSaver(tr, store, "k", ack.SaverOptions[int]{
			Interval: time.Second,
			Encode:   func(o int) string { return "o" + itoa(o) },
			OnError:  func(err error) { errs <- err },
		})
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx) })
		defer func() { cancel(); wg.Wait() }()
		c, _ := tr.Track(ctx, 1, 1)
		c.Done(1)
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("OnError got %v, want %v", err, boom)
		}
		store.mu.Lock()
		store.fail = nil
		store.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := store.recorded(); !equal(got, []string{"o1"}) {
			t.Fatalf("saves after the retry: %v, want [o1]", got)
		}
		cancel()
		wg.Wait()
	})
}
