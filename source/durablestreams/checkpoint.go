package durablestreams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
)

// startup loads the checkpoint and starts the reader and the saver. Called with p.mu held.
// A checkpoint store that fails to load is retried with backoff until ctx ends: a store that
// is down delays the start, it does not fail the run.
func (p *Producer[T]) startup(ctx context.Context) error {
	start, err := p.loadStart(ctx)
	if err != nil {
		return err
	}
	p.started = true
	// Positions count from the start: the message at start.Offset has number Seq-Skip. A
	// checkpoint saved by an earlier version carries no number: counting restarts there.
	seq := start.Seq
	if seq < 0 {
		seq = start.Skip
	}
	start.Seq = seq
	p.first = seq - start.Skip
	p.skip = start.Skip
	tr := ack.NewTracker(mark{pos: start}, ack.TrackerOptions{})
	p.tracker.Store(tr)
	p.reading.Store(&start)
	p.reader = p.opts.Stream.Reader(p.readCtx, p.readOptions(dsclient.Offset(start.Offset)))

	store := p.opts.Checkpoints
	if store == nil {
		store = discardStore{}
	}
	store = &observedStore{CheckpointStore: store, url: p.url, obs: p.obs, real: p.opts.Checkpoints != nil}
	p.saver = ack.NewSaver(tr, store, p.key, ack.SaverOptions[mark]{
		Interval: p.opts.CheckpointInterval,
		Encode:   func(m mark) string { return m.pos.String() },
		Compare:  func(a, b mark) int { return a.pos.Compare(b.pos) },
		OnError: func(err error) {
			p.log.Warn("durablestreams: checkpoint save failed; will retry", "key", p.key, "err", err)
		},
	})
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.saverStop = stop
	p.saverDone = make(chan struct{})
	go func() {
		defer close(p.saverDone)
		p.saver.Run(sctx)
	}()
	return nil
}

// loadStart returns where the run starts: the saved position, or the configured offset. It
// logs which, and under which key.
func (p *Producer[T]) loadStart(ctx context.Context) (ack.Position, error) {
	configured := p.configuredStart()
	store := p.opts.Checkpoints
	if store == nil {
		p.log.Info("durablestreams: reading from the configured offset (no checkpoint store)", "url", p.url, "offset", p.opts.Offset)
		return configured, nil
	}
	keys := []string{p.key}
	if p.opts.CheckpointKey == "" {
		// Earlier versions keyed checkpoints by the whole URL.
		if legacy := ack.CheckpointKey(p.opts.Name, p.url); legacy != p.key {
			keys = append(keys, legacy)
		}
	}
	bo := p.retry.Backoff()
	for i, key := range keys {
		for {
			saved, found, err := store.Load(ctx, key)
			if err == nil && !found {
				break
			}
			if err == nil {
				pos, perr := ack.ParsePosition(saved)
				if perr != nil {
					return ack.Position{}, fmt.Errorf("durablestreams: checkpoint %q: %w", key, perr)
				}
				if pos.Offset == "" {
					break
				}
				if i > 0 {
					p.log.Info("durablestreams: checkpoint found under the key of an earlier version; saving under the new key from now on",
						"url", p.url, "old_key", key, "key", p.key)
				}
				p.log.Info("durablestreams: reading from the checkpoint", "url", p.url, "key", key, "position", pos.String())
				return pos, nil
			}
			if ctx.Err() != nil {
				return ack.Position{}, fmt.Errorf("durablestreams: load checkpoint %q: %w", key, errors.Join(err, ctx.Err()))
			}
			d := bo.Next()
			p.log.Warn("durablestreams: loading the checkpoint failed; retrying", "key", key, "in", d, "err", err)
			if serr := p.sleep(ctx, d); serr != nil {
				return ack.Position{}, fmt.Errorf("durablestreams: load checkpoint %q: %w", key, errors.Join(err, serr))
			}
		}
	}
	p.log.Info("durablestreams: no checkpoint saved; reading from the configured offset", "url", p.url, "key", p.key, "offset", p.opts.Offset)
	return configured, nil
}

// discardStore is the checkpoint store of a producer without one: the saver then only
// reports advances.
type discardStore struct{}

func (discardStore) Load(context.Context, string) (string, bool, error) { return "", false, nil }
func (discardStore) Save(ctx context.Context, _, _ string) error        { return ctx.Err() }

// observedStore reports saves to the producer's observer.
type observedStore struct {
	ack.CheckpointStore
	url  string
	obs  ProducerObserver
	real bool
}

func (s *observedStore) Save(ctx context.Context, key, value string) error {
	t0 := time.Now()
	err := s.CheckpointStore.Save(ctx, key, value)
	pos, _ := ack.ParsePosition(value)
	if s.real {
		s.obs.CheckpointSaved(CheckpointEvent{URL: s.url, Key: key, Position: pos, Duration: time.Since(t0), Err: err})
	}
	if err == nil {
		s.obs.Committed(CommitEvent{URL: s.url, Key: key, Position: pos})
	}
	return err
}
