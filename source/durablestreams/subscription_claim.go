package durablestreams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/dsclient"
)

// errLeaseEnding is why a claim whose heartbeats have not succeeded is stopped before its
// lease passes.
var errLeaseEnding = errors.New("durablestreams: no heartbeat succeeded in time; the claim was stopped before its lease could pass")

// errSuperseded is why a webhook wake is given up when the server delivers a newer one.
var errSuperseded = errors.New("durablestreams: the server issued a newer wake")

// lease is what a claim holds: a pull-wake dsclient.Claim or a webhook dsclient.Wake.
type lease interface {
	// ack acks (a heartbeat that renews the lease, or with done the end of the claim).
	ack(ctx context.Context, acks []dsclient.StreamAck, done bool) (dsclient.AckResult, error)
	// release gives the lease back without acking more.
	release(ctx context.Context) error
	// deadline is when the lease passes without a heartbeat, by this process's clock; zero
	// once the claim ended.
	deadline() time.Time
	generation() int64
	wakeID() string
}

// pullLease is a pull-wake claim.
type pullLease struct{ c *dsclient.Claim }

func (l pullLease) ack(ctx context.Context, acks []dsclient.StreamAck, done bool) (dsclient.AckResult, error) {
	return l.c.Ack(ctx, acks, done)
}
func (l pullLease) release(ctx context.Context) error { return l.c.Release(ctx) }
func (l pullLease) deadline() time.Time               { return l.c.Deadline() }
func (l pullLease) generation() int64                 { return l.c.Generation() }
func (l pullLease) wakeID() string                    { return l.c.WakeID() }

// webhookLease is a webhook wake, acked through its callback. The server starts its lease
// when it issues the wake; the worker's clock counts it from the first callback it makes.
type webhookLease struct {
	w   *dsclient.Wake
	ttl time.Duration

	mu    sync.Mutex
	dl    time.Time
	ended bool
}

func (l *webhookLease) ack(ctx context.Context, acks []dsclient.StreamAck, done bool) (dsclient.AckResult, error) {
	start := time.Now()
	res, err := l.w.Callback(ctx, acks, done)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case claimOver(err) || err == nil && done:
		l.ended, l.dl = true, time.Time{}
	case err == nil && !l.ended && start.Add(l.ttl).After(l.dl):
		l.dl = start.Add(l.ttl)
	}
	return res, err
}

// release ends the wake with no more acks: the server wakes the subscription again for
// what is left.
func (l *webhookLease) release(ctx context.Context) error {
	_, err := l.ack(ctx, nil, true)
	return err
}

func (l *webhookLease) deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dl
}
func (l *webhookLease) generation() int64 { return l.w.Generation }
func (l *webhookLease) wakeID() string    { return l.w.WakeID }

// claimOver reports whether err says that the worker no longer holds the claim: fenced,
// the subscription deleted, or the token refused (expired).
func claimOver(err error) bool {
	return errors.Is(err, dsclient.ErrFenced) || errors.Is(err, dsclient.ErrSubscriptionNotFound) ||
		errors.Is(err, dsclient.ErrUnauthorized)
}

// claimRun is one claim held: its pending streams, read by the producer's Produce; the
// committer that closes each stream once its messages are finished; and the runner (the
// subscription's goroutine, in hold) that heartbeats and ends it.
type claimRun[T any] struct {
	p       *SubscriptionProducer[T]
	s       *subState[T]
	l       lease
	streams []*streamRun[T]
	store   *claimStore
	begun   time.Time
	margin  time.Duration

	messages atomic.Int64

	killOnce   sync.Once
	killed     atomic.Bool
	killCh     chan struct{}
	killReason ClaimEndReason // set before killCh is closed
	killErr    error
	watchdog   *time.Timer

	waitCtx    context.Context // the committer's waits; cancelled to close at once
	waitCancel context.CancelFunc

	cmu       sync.Mutex
	toClose   []*streamRun[T]
	left      int // streams not closed (nor dropped)
	caught    int // streams read to their tail
	stopping  bool
	noAcks    bool          // an ack was refused: end without acking
	poke      chan struct{} // capacity 1: the committer has work
	allClosed chan struct{} // closed when left reaches 0
}

func newClaimRun[T any](s *subState[T], l lease, pending []dsclient.LinkedStream) *claimRun[T] {
	p := s.p
	cr := &claimRun[T]{p: p, s: s, l: l, begun: time.Now(), margin: s.margin,
		killCh: make(chan struct{}), poke: make(chan struct{}, 1), allClosed: make(chan struct{})}
	cr.store = newClaimStore(p.opts.Checkpoints, cr.live)
	cr.store.until = func() time.Time { return cr.l.deadline().Add(-cr.margin) }
	cr.waitCtx, cr.waitCancel = context.WithCancel(p.runCtx)
	for _, ls := range pending {
		sr := newStreamRun(cr, ls)
		cr.store.floor(sr.key, sr.link.AckedOffset)
		cr.streams = append(cr.streams, sr)
	}
	cr.left = len(cr.streams)
	return cr
}

// live reports whether the claim may still be read and saved: not lost, and its lease not
// within the margin of passing.
func (c *claimRun[T]) live() bool {
	if c.killed.Load() {
		return false
	}
	d := c.l.deadline()
	return !d.IsZero() && time.Now().Before(d.Add(-c.margin))
}

// isStopping reports whether the claim's reads were stopped.
func (c *claimRun[T]) isStopping() bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.stopping
}

// startWatchdog arms the timer that stops the claim when its lease gets within the margin
// of passing. It runs on its own, so that a runner stuck in a request (or a paused
// process's runner) cannot keep a lost claim alive.
func (c *claimRun[T]) startWatchdog() {
	t := time.AfterFunc(time.Hour, c.checkDeadline)
	t.Stop()
	c.watchdog = t
	c.checkDeadline()
}

func (c *claimRun[T]) checkDeadline() {
	if c.killed.Load() {
		return
	}
	d := c.l.deadline()
	if d.IsZero() {
		return // ended: acked done or released
	}
	left := time.Until(d.Add(-c.margin))
	if left <= 0 {
		c.kill(ClaimExpired, errLeaseEnding)
		return
	}
	c.watchdog.Reset(left)
}

// kill ends a claim that is lost or about to be: it stops reading its streams and saving
// their positions at once (waiting only for saves in progress), and tells the runner. The
// first call wins.
func (c *claimRun[T]) kill(reason ClaimEndReason, err error) {
	c.killOnce.Do(func() {
		c.killReason, c.killErr = reason, err
		c.killed.Store(true)
		c.store.end()
		c.p.stopStreams(c)
		c.waitCancel()
		close(c.killCh)
	})
}

// finished records that sr was read to its tail (caughtUp) or stopped: the committer closes
// it once its messages are finished.
func (c *claimRun[T]) finished(sr *streamRun[T], caughtUp bool) {
	c.cmu.Lock()
	c.toClose = append(c.toClose, sr)
	if caughtUp {
		c.caught++
	}
	c.cmu.Unlock()
	c.wake()
}

func (c *claimRun[T]) wake() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// stop stops reading the claim's streams (a drain, or the claim's age); with force the
// committer no longer waits for their messages to finish.
func (c *claimRun[T]) stop(force bool) {
	stopped, dropped := c.p.stopStreams(c)
	c.cmu.Lock()
	c.stopping = true
	c.toClose = append(c.toClose, stopped...)
	c.left -= dropped
	c.cmu.Unlock()
	if force {
		c.waitCancel()
	}
	c.wake()
}

// commit closes each finished stream once its messages are finished: its producer's last
// save. It closes allClosed when every stream of the claim is closed, and returns early
// when the claim is killed.
func (c *claimRun[T]) commit() {
	defer c.p.wg.Done()
	for {
		c.cmu.Lock()
		for len(c.toClose) == 0 && c.left > 0 {
			c.cmu.Unlock()
			select {
			case <-c.poke:
			case <-c.killCh:
				return
			}
			c.cmu.Lock()
		}
		if c.left == 0 {
			c.cmu.Unlock()
			close(c.allClosed)
			return
		}
		sr := c.toClose[0]
		c.toClose[0] = nil
		c.toClose = c.toClose[1:]
		c.cmu.Unlock()

		sr.turn.Lock() // no read of it is in progress
		sr.turn.Unlock()
		if sr.prod != nil {
			sr.prod.waitFinished(c.waitCtx) //nolint:errcheck // cancelled: close with what is finished
			if err := sr.prod.Close(c.p.runCtx); err != nil {
				c.p.log.Warn("durablestreams: saving a stream's position failed; the next holder reads again from the last save",
					"subscription", c.s.id, "stream", sr.link.Path, "err", err)
			}
		}
		c.cmu.Lock()
		c.left--
		c.cmu.Unlock()
	}
}

// caughtUp reports whether every stream of the claim was read to its tail.
func (c *claimRun[T]) caughtUp() bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.caught == len(c.streams)
}

// heartbeat acks what is saved and renews the lease, within the lease. It returns the
// ack's error.
func (c *claimRun[T]) heartbeat() error {
	if !c.live() {
		return errLeaseEnding // lost, or too late: the watchdog stops it
	}
	acks, which := ackList(c.store, c.streams)
	d := c.l.deadline()
	ctx, cancel := context.WithDeadline(c.p.runCtx, d.Add(-c.margin))
	start := time.Now()
	_, err := c.l.ack(ctx, acks, false)
	cancel()
	c.p.obs.Heartbeat(HeartbeatEvent{Subscription: c.s.id, Generation: c.l.generation(), Acks: len(acks), Duration: time.Since(start), Err: err})
	if err != nil {
		return err
	}
	for i, sr := range which {
		sr.acked = acks[i].Offset
	}
	return nil
}

// lag reports how far behind the claim is.
func (c *claimRun[T]) lag() LagEvent {
	c.cmu.Lock()
	left := c.left
	c.cmu.Unlock()
	e := LagEvent{Subscription: c.s.id, Held: true, StreamsLeft: left}
	if left == 0 {
		return e
	}
	queued := false
	c.p.mu.Lock()
	prods := make([]*Producer[T], 0, len(c.streams))
	for _, sr := range c.streams {
		switch {
		case sr.state == streamQueued:
			queued = true
		case sr.prod != nil && sr.state != streamDropped:
			prods = append(prods, sr.prod)
		}
	}
	c.p.mu.Unlock()
	if queued {
		e.Oldest = time.Since(c.begun)
	}
	for _, pr := range prods {
		e.Oldest = max(e.Oldest, pr.Stats().OldestPending)
	}
	return e
}

// hold works on a claim until it ends: it queues the claim's streams for reading,
// heartbeats, stops the reads on drain or when the claim is old, and ends the claim once its
// streams are closed: done when they were all read to their tails, else released. It
// returns whether the server issued the next wake.
func (s *subState[T]) hold(cr *claimRun[T]) (nextWake bool) {
	p := s.p
	s.held.Store(cr)
	defer s.held.Store(nil)
	p.log.Debug("durablestreams: claim won", "subscription", s.id, "generation", cr.l.generation(), "streams", len(cr.streams))
	p.addClaim(cr)
	cr.startWatchdog()
	p.wg.Add(1)
	go cr.commit()

	hb := time.NewTimer(s.heartbeat)
	defer hb.Stop()
	age := time.NewTimer(p.opts.MaxClaimAge)
	defer age.Stop()
	drain, closing := p.drainCh, p.closeCh
	var wakes <-chan struct{}
	if s.webhook {
		wakes = s.wakeCh
	}
	for {
		select {
		case <-hb.C:
			if h := testHookHeartbeat.Load(); h != nil {
				(*h)(s.id, p.worker)
			}
			if err := cr.heartbeat(); err != nil {
				switch {
				case claimOver(err):
					cr.kill(ClaimFenced, err)
				case errors.Is(err, errLeaseEnding):
					cr.kill(ClaimExpired, err)
				case errors.Is(err, dsclient.ErrInvalidAck):
					p.log.Error("durablestreams: the server refused the committed positions; releasing the claim without acking",
						"subscription", s.id, "err", err)
					cr.cmu.Lock()
					cr.noAcks = true
					cr.cmu.Unlock()
					cr.stop(true)
				default:
					p.log.Warn("durablestreams: heartbeat failed; will retry", "subscription", s.id, "err", err)
				}
			}
			p.obs.Lag(cr.lag())
			hb.Reset(s.heartbeat)
		case <-cr.killCh:
			return s.afterKill(cr)
		case <-cr.allClosed:
			if cr.killed.Load() {
				return s.afterKill(cr)
			}
			return s.finish(cr)
		case <-age.C:
			p.log.Info("durablestreams: claim reached its maximum age; releasing it to claim again", "subscription", s.id)
			cr.stop(false)
		case <-drain:
			drain = nil
			cr.stop(false)
		case <-closing:
			closing = nil
			cr.stop(true)
		case <-wakes:
			if w := s.peekWake(); w != nil && w.WakeID != cr.l.wakeID() && w.Generation > cr.l.generation() {
				cr.kill(ClaimFenced, errSuperseded)
			}
		}
	}
}

// finish ends a claim whose streams are all closed: acked done with every stream's final
// position when they were all read to their tails, else acked up to what was saved and
// released.
func (s *subState[T]) finish(cr *claimRun[T]) (nextWake bool) {
	p := s.p
	cr.watchdog.Stop()
	acks, _ := ackList(cr.store, cr.streams)
	cr.cmu.Lock()
	noAcks := cr.noAcks
	cr.cmu.Unlock()
	if noAcks {
		acks = nil
	}
	done := cr.caughtUp() && !noAcks
	ctx, cancel := context.WithTimeout(p.runCtx, s.ttl)
	defer cancel()
	end := ClaimEndEvent{Subscription: s.id, Generation: cr.l.generation(), Reason: ClaimDone}
	var err error
	if done {
		var res dsclient.AckResult
		res, err = cr.l.ack(ctx, acks, true)
		end.NextWake = res.NextWake
	} else {
		end.Reason = ClaimReleased
		if len(acks) > 0 {
			_, err = cr.l.ack(ctx, acks, false)
		}
		if err == nil {
			err = cr.l.release(ctx)
		}
	}
	cr.store.end()
	if err != nil {
		end.Reason, end.Err = ClaimEndFailed, err
		if claimOver(err) {
			end.Reason = ClaimFenced
		}
		p.log.Warn("durablestreams: ending the claim failed; the next holder reads again from what was saved",
			"subscription", s.id, "generation", cr.l.generation(), "err", err)
		if p.isDraining() {
			p.closeFailed(fmt.Errorf("durablestreams: subscription %q: ending the claim: %w", s.id, err))
		}
	}
	s.ended(cr, end)
	return end.NextWake
}

// afterKill ends a claim that was lost or stopped before its lease could pass: its
// producers are closed (saving nothing), and a claim stopped on its own is released when
// the server still takes it, so that the next holder need not wait for the lease.
func (s *subState[T]) afterKill(cr *claimRun[T]) bool {
	p := s.p
	cr.watchdog.Stop()
	for _, pr := range p.producers(cr) {
		pr.Close(p.runCtx) //nolint:errcheck // its saves are off: nothing to report
	}
	end := ClaimEndEvent{Subscription: s.id, Generation: cr.l.generation(), Reason: cr.killReason, Err: cr.killErr}
	if cr.killReason == ClaimExpired {
		ctx, cancel := context.WithTimeout(p.runCtx, cr.margin)
		err := cr.l.release(ctx)
		cancel()
		if claimOver(err) {
			end.Reason, end.Err = ClaimFenced, err
		}
	}
	p.log.Warn("durablestreams: claim lost; its streams are left to the next holder", "subscription", s.id,
		"generation", cr.l.generation(), "reason", end.Reason.String(), "err", end.Err)
	s.ended(cr, end)
	return false
}

// ended reports the end of cr.
func (s *subState[T]) ended(cr *claimRun[T], e ClaimEndEvent) {
	e.Held = time.Since(cr.begun)
	e.Messages = cr.messages.Load()
	s.count(e.Reason)
	s.p.obs.ClaimEnded(e)
	s.p.obs.Lag(LagEvent{Subscription: s.id})
}

// testHookHeartbeat, when set by a test, is called by a claim's runner before each
// heartbeat, with the subscription id and the worker's name: blocking in it pauses the
// runner as a stopped process would be paused.
var testHookHeartbeat atomic.Pointer[func(subscription, worker string)]
