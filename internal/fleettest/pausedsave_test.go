package fleettest_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/fleettest"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// pausingStore stands for a worker process paused (SIGSTOP) in the middle of a checkpoint
// save: the first save after the worker decided to make it blocks until release is closed,
// then reports whether the context it was given had ended by then, and goes on.
type pausingStore struct {
	inner   ack.CheckpointStore
	paused  *atomic.Bool
	blocked chan struct{} // closed when the first save blocks
	release chan struct{}
	ctxErr  chan error // the context's error when the blocked save goes on

	// late makes the blocked save go on as a resumed process's does before its timers have
	// run: with its context's cancellation stripped (its values, the save deadline among them,
	// kept). saveErr then receives the inner store's answer.
	late    bool
	saveErr chan error
}

func (s *pausingStore) Load(ctx context.Context, key string) (string, bool, error) {
	return s.inner.Load(ctx, key)
}

func (s *pausingStore) Save(ctx context.Context, key, value string) error {
	if s.paused.CompareAndSwap(false, true) {
		close(s.blocked)
		<-s.release
		s.ctxErr <- ctx.Err()
		if s.late {
			err := s.inner.Save(context.WithoutCancel(ctx), key, value)
			s.saveErr <- err
			return err
		}
		if err := ctx.Err(); err != nil {
			return err // a store honours its context: nothing is saved
		}
	}
	return s.inner.Save(ctx, key, value)
}

// pauseAcks holds back the worker's acks (its heartbeats) while paused is set, until
// release is closed or the request's context ends, as a paused process's would be.
type pauseAcks struct {
	base    http.RoundTripper
	paused  *atomic.Bool
	release chan struct{}
}

func (p pauseAcks) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.paused.Load() && strings.HasSuffix(r.URL.Path, "/ack") {
		select {
		case <-p.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return p.base.RoundTrip(r)
}

// TestPausedSaveAfterLease is the multi-host test's fencing check made deterministic, in
// one process: a worker is paused (its heartbeats and one checkpoint save held back) after
// it decided to save a stream's position, until the server has given its claim to another
// worker; then it goes on. The save must not reach the store with a context that is still
// live: the worker bounds what it does for a claim by the claim's lease, so that a worker
// that was paused past its lease moves no checkpoint (the SubscriptionProducer's documented
// guarantee). A store honours its context, so a save whose context ended changes nothing.
func TestPausedSaveAfterLease(t *testing.T) {
	store := &pausingStore{inner: &ack.MemoryStore{}, paused: new(atomic.Bool), blocked: make(chan struct{}), release: make(chan struct{}), ctxErr: make(chan error, 1)}
	pausedSave(t, store)
	if err := <-store.ctxErr; err == nil {
		t.Errorf("a checkpoint save the worker began before its pause went to the store after its lease passed " +
			"(another worker holds the claim), with a context that had not ended: a stale worker moves a checkpoint")
	}
}

// TestPausedSaveLandsLate is the same pause, with the save going on as though the
// process's context had not ended yet (a resumed process runs before its timers do), into
// the PostgreSQL store: the store itself, by the database's clock, refuses the save, which
// reached it after the claim's lease (ack.WithSaveDeadline), and the position saved before
// stays.
func TestPausedSaveLandsLate(t *testing.T) {
	pool := pgPool(t)
	inner, err := pgstore.New(context.Background(), pool, pgstore.Options{Table: "sluice_paused_" + strconv.FormatUint(rand.Uint64(), 36)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+inner.Table()) })
	store := &pausingStore{inner: inner, paused: new(atomic.Bool), blocked: make(chan struct{}), release: make(chan struct{}),
		ctxErr: make(chan error, 1), late: true, saveErr: make(chan error, 1)}
	pausedSave(t, store)
	<-store.ctxErr
	if err := <-store.saveErr; !errors.Is(err, ack.ErrSaveDeadline) {
		t.Errorf("a save that reached PostgreSQL after the claim's lease: %v, want ack.ErrSaveDeadline", err)
	}
}

// pausedSave runs worker A over a subscription until its first checkpoint save blocks in
// store (paused), lets worker B take the claim once A's lease has passed, and then lets A go
// on.
func pausedSave(t *testing.T, store *pausingStore) {
	t.Helper()
	paused, release := store.paused, store.release
	srv := dstest.ForTest(t, dstest.Options{LongPollTimeout: time.Second})
	root := srv.StreamURL("")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	jsonStream := dsclient.CreateOptions{ContentType: "application/json"}
	app := dsclient.NewSubscription(root, "paused")
	if _, err := app.Stream("paused-wake").Create(ctx, jsonStream); err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.Create(ctx, dsclient.SubscriptionConfig{Pattern: "paused/*", WakeStream: "paused-wake", LeaseTTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	s := app.Stream("paused/s0")
	if _, err := s.Create(ctx, jsonStream); err != nil {
		t.Fatal(err)
	}
	batch := make([]fleettest.Record, 1000)
	for i := range batch {
		batch[i] = fleettest.Record{N: int64(i), S: "s0"}
	}
	if _, err := dsclient.AppendJSONBatch(ctx, s, batch, dsclient.AppendOptions{}); err != nil {
		t.Fatal(err)
	}

	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	hc := &http.Client{Transport: pauseAcks{base: dsclient.NewTransport(), paused: paused, release: release}}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := ds.RunWorker(wctx, ds.SubscriptionOptions[fleettest.Record]{
			Subscriptions:      []*dsclient.Subscription{dsclient.NewSubscription(root, "paused", dsclient.WithHTTPClient(hc))},
			Worker:             "A",
			Name:               "paused",
			Checkpoints:        store,
			CheckpointInterval: 10 * time.Millisecond,
			Logger:             slog.New(slog.DiscardHandler),
		}, pipeline.Options[fleettest.Record]{
			Processors: []pipeline.ProcessorOptions[fleettest.Record]{{Concurrency: 1,
				Handler: pipeline.HandlerFunc[fleettest.Record](func(_ context.Context, m *pipeline.Message[fleettest.Record]) error {
					if m.Data.N >= 500 {
						<-release // the paused process's work in flight: the stream stays open
					}
					return nil
				})}},
			ShutdownTimeout: 10 * time.Second,
			Logger:          slog.New(slog.DiscardHandler),
		})
		done <- err
	}()
	defer func() {
		stop()
		<-done
	}()

	select {
	case <-store.blocked:
	case <-ctx.Done():
		t.Fatal("the worker saved no position")
	}
	// The server gives the claim up once its lease passes: another worker claims it.
	var claim *dsclient.Claim
	for claim == nil {
		c, err := app.Claim(ctx, "B")
		switch {
		case err == nil:
			claim = c
		case errors.Is(err, dsclient.ErrAlreadyClaimed):
			time.Sleep(20 * time.Millisecond) // polling the server: there is no event to wait on
		default:
			t.Fatalf("claim as B: %v", err)
		}
	}
	defer claim.Release(context.Background())
	close(release) // the paused worker goes on
	select {
	case err := <-store.ctxErr:
		store.ctxErr <- err // for the caller
	case <-ctx.Done():
		t.Fatal("the paused save did not go on")
	}
}
