package durablestreams

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/protocol"
)

// streamState is where a stream of a claim stands. Guarded by the producer's mu.
type streamState int

const (
	streamQueued  streamState = iota // waiting for a place in the ring
	streamOpen                       // in the ring: being read
	streamEnded                      // read to its tail (or gone): waiting to be closed
	streamStopped                    // its read was stopped before the tail: waiting to be closed
	streamDropped                    // never opened, and the claim stopped or ended
)

// streamRun is one pending stream of a claim, read by a [Producer] of its own from its
// committed position, up to its tail (LiveOff).
type streamRun[T any] struct {
	cr     *claimRun[T]
	link   dsclient.LinkedStream // as of the claim
	stream *dsclient.Stream
	key    string          // its checkpoint key
	acked  dsclient.Offset // the server's cursor as last acked; the runner's only

	turn sync.Mutex // held while Produce reads it

	// Guarded by the producer's mu.
	state streamState
	prod  *Producer[T] // made when the stream enters the ring
}

// newStreamRun makes the run of a pending stream of cr.
func newStreamRun[T any](cr *claimRun[T], link dsclient.LinkedStream) *streamRun[T] {
	if link.AckedOffset == "" {
		link.AckedOffset = dsclient.Beginning
	}
	st := cr.s.sub.Stream(link.Path)
	path := link.Path
	if u, err := url.Parse(st.URL()); err == nil {
		path = u.Path
	}
	return &streamRun[T]{cr: cr, link: link, stream: st, key: ack.CheckpointKey(cr.p.opts.Name, path), acked: link.AckedOffset}
}

// open makes the stream's producer: from the stream's committed position (see claimStore's
// Load), to its tail.
func (sr *streamRun[T]) open() (*Producer[T], error) {
	p := sr.cr.p
	var obs ProducerObserver
	if p.opts.ProducerObserver != nil {
		obs = claimObserver{ProducerObserver: p.opts.ProducerObserver, cr: sr.cr.store}
	}
	prod, err := NewProducer(ProducerOptions[T]{
		Stream:             sr.stream,
		Offset:             sr.link.AckedOffset,
		Live:               dsclient.LiveOff,
		Commit:             CommitOnAck,
		Checkpoints:        sr.cr.store,
		CheckpointKey:      sr.key,
		CheckpointInterval: p.opts.CheckpointInterval,
		MaxBytes:           p.opts.MaxBytes,
		Decode:             p.opts.Decode,
		JSON:               p.opts.JSON,
		Split:              p.opts.Split,
		Observer:           obs,
		Logger:             p.quiet.With("subscription", sr.cr.s.id, "stream", sr.link.Path),
	})
	if err == nil && p.deferred.Load() {
		prod.DeferDecoding()
	}
	return prod, err
}

// addClaim queues the pending streams of cr for reading.
func (p *SubscriptionProducer[T]) addClaim(cr *claimRun[T]) {
	p.mu.Lock()
	p.queue = append(p.queue, cr.streams...)
	p.mu.Unlock()
	p.signal()
}

// promoteLocked moves queued streams into the ring while it has room, making their
// producers. Called with mu held.
func (p *SubscriptionProducer[T]) promoteLocked() error {
	for len(p.ring) < p.maxOpen && len(p.queue) > 0 {
		sr := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if sr.state != streamQueued {
			continue
		}
		prod, err := sr.open()
		if err != nil {
			return err
		}
		sr.prod, sr.state = prod, streamOpen
		prod.warm() // its first request goes out now, not when its turn comes
		p.ring = append(p.ring, sr)
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the backing array go
	}
	return nil
}

// removeLocked takes sr out of the ring, keeping the turn order of the others. Called with
// mu held.
func (p *SubscriptionProducer[T]) removeLocked(sr *streamRun[T]) {
	i := slices.Index(p.ring, sr)
	if i < 0 {
		return
	}
	p.ring = slices.Delete(p.ring, i, i+1)
	if i < p.next {
		p.next--
	}
}

// streamEnded records that sr was read to its tail (or is gone): it leaves the ring, and
// its claim closes it once its messages are finished.
func (p *SubscriptionProducer[T]) streamEnded(sr *streamRun[T], caughtUp bool) {
	p.mu.Lock()
	if sr.state != streamOpen {
		p.mu.Unlock()
		return
	}
	sr.state = streamEnded
	p.removeLocked(sr)
	p.mu.Unlock()
	p.signal()
	sr.cr.finished(sr, caughtUp)
}

// stopStreams stops reading the streams of cr: open ones leave the ring and their reads are
// cancelled, queued ones are dropped. It returns the streams that were open (to be closed
// once their messages are finished) and the number dropped.
func (p *SubscriptionProducer[T]) stopStreams(cr *claimRun[T]) (stopped []*streamRun[T], dropped int) {
	p.mu.Lock()
	for _, sr := range cr.streams {
		switch sr.state {
		case streamOpen:
			sr.state = streamStopped
			p.removeLocked(sr)
			sr.prod.PrepareForDraining()
			stopped = append(stopped, sr)
		case streamQueued:
			sr.state = streamDropped
			dropped++
		}
	}
	p.mu.Unlock()
	p.signal()
	return stopped, dropped
}

// producers returns the producers made for cr's streams.
func (p *SubscriptionProducer[T]) producers(cr *claimRun[T]) []*Producer[T] {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ps []*Producer[T]
	for _, sr := range cr.streams {
		if sr.prod != nil {
			ps = append(ps, sr.prod)
		}
	}
	return ps
}

// waitFinished waits until every message the producer handed out is finished (or ctx
// ends). Nothing may be tracked meanwhile: the producer's reading has ended or stopped.
func (p *Producer[T]) waitFinished(ctx context.Context) error {
	if t := p.tracker.Load(); t != nil {
		return t.Wait(ctx)
	}
	return nil
}

// claimStore is the checkpoint store of one claim's stream producers. It wraps the
// configured store (or none) with three rules:
//
//   - Load resumes from whichever is further, the saved position or the server's cursor
//     as of the claim (a saved position behind the cursor is ignored);
//   - Save does nothing once the claim stopped being live (lost, or its lease about to
//     pass): a stale worker never moves a checkpoint;
//   - it remembers the positions saved, which are what heartbeats may ack: the store is
//     never behind the server's cursor.
type claimStore struct {
	inner  ack.CheckpointStore // nil: none
	live   func() bool
	until  func() time.Time
	floors map[string]ack.Position // key → the server's cursor as of the claim

	mu    sync.RWMutex // read-held by saves; write-held to end them
	ended bool

	smu   sync.Mutex
	saved map[string]ack.Position
}

func newClaimStore(inner ack.CheckpointStore, live func() bool) *claimStore {
	return &claimStore{inner: inner, live: live, floors: map[string]ack.Position{}, saved: map[string]ack.Position{}}
}

// floor records the server's cursor of the stream whose key is key.
func (s *claimStore) floor(key string, acked dsclient.Offset) {
	s.floors[key] = ack.Position{Offset: string(acked), Seq: -1}
}

// Load returns the saved position of key unless the server's cursor is further (then
// nothing, so that the stream is read from the cursor).
func (s *claimStore) Load(ctx context.Context, key string) (string, bool, error) {
	if s.inner == nil {
		return "", false, nil
	}
	v, found, err := s.inner.Load(ctx, key)
	if err != nil || !found {
		return v, found, err
	}
	pos, perr := ack.ParsePosition(v)
	if perr != nil {
		return v, found, nil // the producer reports it
	}
	if floor, ok := s.floors[key]; ok && pos.Compare(floor) < 0 {
		return "", false, nil
	}
	// The store's position counts as saved: a stream the last holder finished and saved
	// but did not ack is acked up to it, even if nothing is left to read.
	s.smu.Lock()
	if cur, ok := s.saved[key]; !ok || pos.Compare(cur) > 0 {
		s.saved[key] = pos
	}
	s.smu.Unlock()
	return v, true, nil
}

// Save saves value under key while the claim is live, and remembers it.
func (s *claimStore) Save(ctx context.Context, key, value string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ended || !s.live() {
		return nil
	}
	if s.inner != nil {
		if s.until != nil {
			// The lease's end bounds the save twice: here, and where the store writes (a
			// process paused between this check and its write must not land the save after
			// the next holder took over: ack.WithSaveDeadline).
			until := s.until()
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ack.WithSaveDeadline(ctx, until), until)
			defer cancel()
		}
		if err := s.inner.Save(ctx, key, value); err != nil {
			return err
		}
	}
	pos, err := ack.ParsePosition(value)
	if err != nil {
		return nil
	}
	s.smu.Lock()
	if cur, ok := s.saved[key]; !ok || pos.Compare(cur) > 0 {
		s.saved[key] = pos
	}
	s.smu.Unlock()
	return nil
}

// end makes every later Save do nothing, after waiting for the saves in progress.
func (s *claimStore) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
}

// isEnded reports whether end was called.
func (s *claimStore) isEnded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ended
}

// ackList returns the acks that move the server's cursors of streams to their saved
// positions: for each stream whose saved position starts at an offset past its cursor, that
// offset (a response boundary: everything before it is finished and saved). It also returns
// the streams acked, in the same order.
func ackList[T any](s *claimStore, streams []*streamRun[T]) ([]dsclient.StreamAck, []*streamRun[T]) {
	s.smu.Lock()
	defer s.smu.Unlock()
	var acks []dsclient.StreamAck
	var which []*streamRun[T]
	for _, sr := range streams {
		pos, ok := s.saved[sr.key]
		if !ok || isSentinel(pos.Offset) {
			continue
		}
		if (ack.Position{Offset: pos.Offset}).Compare(ack.Position{Offset: string(sr.acked)}) <= 0 {
			continue // not past the cursor: nothing to ack
		}
		acks = append(acks, dsclient.StreamAck{Stream: sr.link.Path, Offset: dsclient.Offset(pos.Offset)})
		which = append(which, sr)
	}
	return acks, which
}

// claimObserver forwards a stream producer's events, but not the commits and saves of a
// claim that was lost (its saves do not happen).
type claimObserver struct {
	ProducerObserver
	cr *claimStore
}

func (o claimObserver) Committed(e CommitEvent) {
	if !o.cr.isEnded() && o.cr.live() {
		o.ProducerObserver.Committed(e)
	}
}

func (o claimObserver) CheckpointSaved(e CheckpointEvent) {
	if o.cr.inner != nil && !o.cr.isEnded() && o.cr.live() {
		o.ProducerObserver.CheckpointSaved(e)
	}
}

// isSentinel reports whether o is -1 or now: no offset the server returned.
func isSentinel(o string) bool {
	return o == protocol.OffsetBeginning || o == protocol.OffsetNow || o == ""
}
