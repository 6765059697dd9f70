package ack

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// SaverOptions configures a [Saver].
type SaverOptions[O any] struct {
	// Interval is the least time between two saves: advances within it are coalesced
	// into one save of the latest committed offset. Default: 1s.
	Interval time.Duration
	// Encode turns an offset into the string saved. Stores order the strings they keep
	// as positions and ignore a save that would move one backwards (see
	// [CheckpointStore]), a bare value byte-wise: the encoding must sort as the offsets
	// do (fixed-width numbers, say). For positions: [Position.String]. Default:
	// fmt.Sprint, the offset itself for string offsets.
	Encode func(O) string
	// Compare, if set, orders offsets as [cmp.Compare] does (negative when a is before
	// b). The saver then never saves an offset before the last one it saved (at first,
	// the tracker's offset when the saver was made): such a save is skipped, without
	// error, until the committed offset is back at or after it. Offsets that compare
	// equal but encode differently are saved. For positions: ack.Position.Compare.
	// Default: nil, every change of the encoded offset is saved.
	Compare func(a, b O) int
	// OnError is called, from the saver's goroutine, with each failed save's error; the
	// saver tries again one interval later. Default: log it at warning level with
	// slog.Default.
	OnError func(error)
	// OnSave, if set, is called after each successful save with the offset saved, from
	// the goroutine that saved it ([Saver.Run]'s or [Saver.Flush]'s caller), while saves
	// are serialized; for metrics and logs. Default: nil.
	OnSave func(offset string)
}

// Saver saves a [Tracker]'s committed offset to a [CheckpointStore] as it advances,
// coalescing advances: [Saver.Run] saves at most once per interval, and [Saver.Flush]
// saves whatever is left, at the end of a drain.
//
// Saves are serialized and each saves the committed offset read when it starts, so the
// saved offset never moves backwards as long as the tracker's does not; with
// [SaverOptions.Compare] set, a Saver never saves an offset before the last one saved
// whatever the tracker holds, and the store refuses such a save too. An offset that encodes
// as the last one saved is not saved again; the tracker's offset when the Saver is made
// counts as saved (it is where a restart would resume anyway), so a Saver that sees no
// advance never writes.
//
// A Saver is safe for concurrent use; it must be the only consumer of the tracker's
// [Tracker.Advanced] channel.
type Saver[O any] struct {
	t        *Tracker[O]
	store    CheckpointStore
	key      string
	interval time.Duration
	encode   func(O) string
	onError  func(error)
	onSave   func(string)
	compare  func(a, b O) int
	advanced <-chan struct{}

	mu        sync.Mutex // serializes saves; guards the fields below
	saved     string     // the last offset saved (or the start offset), encoded
	savedO    O          // the same, as an offset
	lastStart time.Time  // when the last save attempt started
}

// NewSaver returns a saver of t's committed offset to store under key. It starts nothing:
// call [Saver.Run] for the periodic saves and [Saver.Flush] at the end.
func NewSaver[O any](t *Tracker[O], store CheckpointStore, key string, opts SaverOptions[O]) *Saver[O] {
	s := &Saver[O]{t: t, store: store, key: key, interval: opts.Interval, encode: opts.Encode, onError: opts.OnError, onSave: opts.OnSave, compare: opts.Compare}
	if s.interval <= 0 {
		s.interval = time.Second
	}
	if s.encode == nil {
		s.encode = func(o O) string { return fmt.Sprint(o) }
	}
	if s.onError == nil {
		s.onError = func(err error) {
			slog.Default().Warn("checkpoint save failed; retrying", "key", key, "err", err)
		}
	}
	s.advanced = t.Advanced()
	s.savedO = t.Committed()
	s.saved = s.encode(s.savedO)
	return s
}

// Run saves the committed offset as it advances, at most once per interval, until ctx
// ends; then it returns, leaving the last advances to [Saver.Flush]. A save in progress
// when ctx ends is cancelled through ctx. A failed save is reported to OnError and tried
// again one interval later. Run blocks; call it once, from the goroutine that owns the
// saver's lifetime.
func (s *Saver[O]) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop() // armed only while a save is scheduled
	defer timer.Stop()
	armed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.advanced:
			if armed {
				continue // the save already scheduled will see this advance
			}
			s.mu.Lock()
			wait := s.interval - time.Since(s.lastStart)
			s.mu.Unlock()
			if wait > 0 {
				timer.Reset(wait)
				armed = true
				continue
			}
		case <-timer.C:
			armed = false
		}
		if err := s.save(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.onError(err)
			timer.Reset(s.interval)
			armed = true
		}
	}
}

// Flush saves the committed offset now, if it differs from the last one saved (and is not
// before it, with [SaverOptions.Compare]), and returns the store's error. Call it at the end of a drain, after [Tracker.Wait], with a
// context that bounds the save; it may run concurrently with [Saver.Run].
func (s *Saver[O]) Flush(ctx context.Context) error {
	return s.save(ctx)
}

func (s *Saver[O]) save(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	committed := s.t.Committed()
	if s.compare != nil && s.compare(committed, s.savedO) < 0 {
		return nil // behind the last save: never backwards
	}
	o := s.encode(committed)
	if o == s.saved {
		return nil
	}
	s.lastStart = time.Now()
	if err := s.store.Save(ctx, s.key, o); err != nil {
		return err
	}
	s.saved, s.savedO = o, committed
	if s.onSave != nil {
		s.onSave(o)
	}
	return nil
}
