package durablestreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-go/sluice/dsclient"
)

// defaultLeaseTTL is the protocol's default lease, for a server that reports none.
const defaultLeaseTTL = 30 * time.Second

// subState is one subscription of a producer: its goroutine (run) reads the subscription,
// then claims it (pull-wake) or takes its webhook wakes, and holds one claim at a time.
type subState[T any] struct {
	p   *SubscriptionProducer[T]
	sub *dsclient.Subscription
	id  string

	// Set by setup, on the subscription's goroutine, before any claim.
	webhook    bool
	wakePath   string
	ttl        time.Duration
	heartbeat  time.Duration
	claimEvery time.Duration
	margin     time.Duration

	trigger chan struct{} // capacity 1: claim now

	wmu    sync.Mutex
	wake   *dsclient.Wake // the latest webhook wake not yet taken
	wakeCh chan struct{}  // capacity 1: a wake was offered

	held       atomic.Pointer[claimRun[T]]
	messages   atomic.Uint64
	won        atomic.Uint64
	refused    atomic.Uint64
	ends       [ClaimEndFailed + 1]atomic.Uint64
	generation atomic.Int64
}

func newSubState[T any](p *SubscriptionProducer[T], sub *dsclient.Subscription) *subState[T] {
	return &subState[T]{p: p, sub: sub, id: sub.ID(), trigger: make(chan struct{}, 1), wakeCh: make(chan struct{}, 1)}
}

// poke asks for a claim attempt.
func (s *subState[T]) poke() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// count counts a claim's end.
func (s *subState[T]) count(r ClaimEndReason) {
	if r >= 0 && int(r) < len(s.ends) {
		s.ends[r].Add(1)
	}
}

// run is the subscription's goroutine.
func (s *subState[T]) run() {
	defer s.p.wg.Done()
	if !s.setup() {
		return
	}
	if s.webhook {
		s.serveWakes()
		return
	}
	s.pullWake()
}

// setup reads the subscription: its type, wake stream and lease, from which the intervals
// follow. A subscription that does not exist, or cannot be served, fails the run; transient
// failures are retried until the run drains.
func (s *subState[T]) setup() bool {
	p := s.p
	bo := s.sub.Stream(s.id).RetryPolicy().Backoff()
	for {
		info, err := s.sub.Get(p.runCtx)
		if err == nil {
			return s.configure(info)
		}
		var e *dsclient.Error
		if p.runCtx.Err() != nil {
			return false
		}
		if !errors.As(err, &e) || !e.Temporary() {
			p.setFatal(fmt.Errorf("durablestreams: subscription %q: %w", s.id, err))
			return false
		}
		d := bo.Next()
		p.log.Warn("durablestreams: reading the subscription failed; retrying", "subscription", s.id, "in", d, "err", err)
		if !s.sleep(p.drainCh, d) {
			return false
		}
	}
}

// configure sets the intervals from the subscription's lease.
func (s *subState[T]) configure(info dsclient.SubscriptionInfo) bool {
	p := s.p
	s.webhook = info.Type == dsclient.SubscriptionWebhook
	if s.webhook && p.recv == nil {
		p.setFatal(fmt.Errorf("durablestreams: subscription %q delivers by webhook: set SubscriptionOptions.Webhook and serve WebhookHandler", s.id))
		return false
	}
	s.wakePath = info.WakeStream
	s.ttl = info.LeaseTTL
	if s.ttl <= 0 {
		s.ttl = defaultLeaseTTL
	}
	s.margin = p.opts.LeaseMargin
	if s.margin == 0 {
		s.margin = s.ttl / 5
	} else if s.margin >= s.ttl/2 {
		p.log.Warn("durablestreams: LeaseMargin leaves too little of the lease; using a fifth of it",
			"subscription", s.id, "lease", s.ttl, "margin", s.margin)
		s.margin = s.ttl / 5
	}
	s.heartbeat = p.opts.HeartbeatInterval
	if s.heartbeat == 0 {
		s.heartbeat = s.ttl / 3
	} else if s.heartbeat >= s.ttl-s.margin {
		p.log.Warn("durablestreams: HeartbeatInterval does not fit inside the lease; using a third of it",
			"subscription", s.id, "lease", s.ttl, "interval", s.heartbeat)
		s.heartbeat = s.ttl / 3
	}
	s.claimEvery = p.opts.ClaimInterval
	if s.claimEvery == 0 {
		s.claimEvery = s.ttl
	}
	p.log.Info("durablestreams: joined the subscription's workers", "subscription", s.id, "type", string(info.Type),
		"lease", s.ttl, "heartbeat", s.heartbeat, "streams", len(info.Streams))
	return true
}

// sleep waits d; it returns false when stop is closed or the run ends first.
func (s *subState[T]) sleep(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-s.p.runCtx.Done():
		return false
	}
}

// jitter varies d by up to 10% either way, so that workers started together do not claim
// in step.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// pullWake claims a pull-wake subscription when its wake stream names it, at start, every
// ClaimInterval, and again at once when a claim ends with the next wake issued, until the
// run drains.
func (s *subState[T]) pullWake() {
	p := s.p
	ctx, cancel := context.WithCancel(p.runCtx)
	defer cancel()
	if s.wakePath != "" {
		from := s.wakeTail(ctx)
		p.wg.Add(1)
		go s.follow(ctx, from)
	}
	s.poke()
	timer := time.NewTimer(jitter(s.claimEvery))
	defer timer.Stop()
	for {
		select {
		case <-p.drainCh:
			return
		case <-p.runCtx.Done():
			return
		case <-s.trigger:
		case <-timer.C:
		}
		if p.isDraining() {
			return
		}
		next := s.claimOnce()
		timer.Reset(jitter(s.claimEvery))
		if next {
			s.poke()
		}
	}
}

// claimOnce tries to claim the subscription and, when it wins, holds the claim until it
// ends. It returns whether the server issued the next wake as the claim ended.
func (s *subState[T]) claimOnce() bool {
	p := s.p
	start := time.Now()
	c, err := s.sub.Claim(p.runCtx, p.worker)
	ev := ClaimEvent{Subscription: s.id, Worker: p.worker, Duration: time.Since(start)}
	var se *dsclient.SubscriptionError
	switch {
	case err == nil:
		pending := c.Pending()
		ev.Result, ev.Generation, ev.Streams, ev.Pending = ClaimWon, c.Generation(), len(c.Streams()), len(pending)
		s.won.Add(1)
		s.generation.Store(c.Generation())
		p.obs.ClaimAttempted(ev)
		return s.hold(newClaimRun(s, pullLease{c}, pending))
	case p.runCtx.Err() != nil:
		return false
	case errors.Is(err, dsclient.ErrAlreadyClaimed):
		ev.Result = ClaimAlreadyClaimed
		if errors.As(err, &se) {
			ev.Holder, ev.Generation = se.Holder, se.Generation
		}
		s.refused.Add(1)
	case errors.Is(err, dsclient.ErrNoPendingWork):
		ev.Result = ClaimNoPendingWork
	default:
		ev.Result, ev.Err = ClaimFailed, err
		p.log.Warn("durablestreams: claim failed; will try again", "subscription", s.id, "err", err)
	}
	p.obs.ClaimAttempted(ev)
	return false
}

// wakeTailTimeout bounds the read of the wake stream's tail before the first claim.
const wakeTailTimeout = 5 * time.Second

// wakeTail returns the wake stream's tail, read before the first claim: following from there,
// the follower sees every wake event appended after that claim, however late its first read
// reaches the server. When the tail cannot be read in time it returns [dsclient.Now] (a wake
// missed then is covered by the claims every ClaimInterval).
func (s *subState[T]) wakeTail(ctx context.Context) dsclient.Offset {
	ctx, cancel := context.WithTimeout(ctx, min(s.claimEvery, wakeTailTimeout))
	defer cancel()
	info, err := s.sub.Stream(s.wakePath).Head(ctx)
	if err != nil || info.NextOffset == "" {
		if s.p.runCtx.Err() == nil {
			s.p.log.Warn("durablestreams: could not read the wake stream's tail; following from now", "subscription", s.id,
				"wake_stream", s.wakePath, "err", err)
		}
		return dsclient.Now
	}
	return info.NextOffset
}

// follow reads the wake stream live from offset from (its tail before the first claim) and
// asks for a claim at each wake event that names the subscription. Read failures are retried
// with backoff (the claims every ClaimInterval go on meanwhile).
func (s *subState[T]) follow(ctx context.Context, from dsclient.Offset) {
	p := s.p
	defer p.wg.Done()
	st := s.sub.Stream(s.wakePath)
	bo := st.RetryPolicy().Backoff()
	r := st.Reader(ctx, dsclient.ReadOptions{Offset: from, Live: dsclient.LiveLongPoll})
	defer r.Close()
	for {
		c, err := r.Next()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if err == io.EOF {
				p.log.Warn("durablestreams: the wake stream is closed; claiming every ClaimInterval only", "subscription", s.id, "wake_stream", s.wakePath)
				return
			}
			d := min(bo.Next(), s.claimEvery)
			p.log.Warn("durablestreams: following the wake stream failed; retrying", "subscription", s.id,
				"wake_stream", s.wakePath, "in", d, "err", err)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		bo.Reset()
		for {
			raw, err := c.NextItem()
			if err != nil {
				break // the end of the chunk, or a body error the next chunk resumes from
			}
			var ev dsclient.WakeEvent
			if json.Unmarshal(raw, &ev) == nil && ev.SubscriptionID == s.id {
				s.poke()
			}
		}
	}
}

// serveWakes takes the webhook wakes of the subscription one at a time until the run
// drains.
func (s *subState[T]) serveWakes() {
	for {
		w := s.takeWake()
		if w == nil {
			return
		}
		s.holdWake(w)
	}
}

// offerWake hands a verified webhook wake to the subscription's goroutine. A newer wake
// replaces one not yet taken; a repeated delivery of the wake being worked on is ignored.
func (s *subState[T]) offerWake(w *dsclient.Wake) {
	s.wmu.Lock()
	if cr := s.held.Load(); cr != nil && cr.l.wakeID() == w.WakeID {
		s.wmu.Unlock()
		return
	}
	if s.wake == nil || w.Generation >= s.wake.Generation {
		s.wake = w
	}
	s.wmu.Unlock()
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// peekWake returns the wake waiting to be taken, dropping it when it is not newer than the
// one held.
func (s *subState[T]) peekWake() *dsclient.Wake {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if cr := s.held.Load(); cr != nil && s.wake != nil &&
		(s.wake.WakeID == cr.l.wakeID() || s.wake.Generation < cr.l.generation()) {
		s.wake = nil
	}
	return s.wake
}

// takeWake waits for a wake to work on; nil when the run drains first.
func (s *subState[T]) takeWake() *dsclient.Wake {
	p := s.p
	for {
		s.wmu.Lock()
		w := s.wake
		s.wake = nil
		s.wmu.Unlock()
		if w != nil {
			return w
		}
		select {
		case <-s.wakeCh:
		case <-p.drainCh:
			return nil
		case <-p.runCtx.Done():
			return nil
		}
	}
}

// holdWake works on a webhook wake: a first callback (a heartbeat) confirms that the wake
// is current and starts the lease on this process's clock; then the wake is held like a
// claim, and ended through its callback.
func (s *subState[T]) holdWake(w *dsclient.Wake) {
	p := s.p
	l := &webhookLease{w: w, ttl: s.ttl}
	ev := ClaimEvent{Subscription: s.id, Worker: p.worker, Webhook: true, Generation: w.Generation}
	ctx, cancel := context.WithTimeout(p.runCtx, s.ttl-s.margin)
	start := time.Now()
	_, err := l.ack(ctx, nil, false)
	cancel()
	ev.Duration = time.Since(start)
	if err != nil {
		ev.Result, ev.Err = ClaimFailed, err
		p.obs.ClaimAttempted(ev)
		if !claimOver(err) {
			p.log.Warn("durablestreams: taking on a webhook wake failed; the server delivers it again", "subscription", s.id,
				"generation", w.Generation, "err", err)
		}
		return
	}
	pending := w.Pending()
	ev.Result, ev.Streams, ev.Pending = ClaimWon, len(w.Streams), len(pending)
	s.won.Add(1)
	s.generation.Store(w.Generation)
	p.obs.ClaimAttempted(ev)
	s.hold(newClaimRun(s, l, pending)) // the server delivers the next wake by itself
}
