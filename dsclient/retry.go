package dsclient

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// RetryPolicy says how often and how fast failed requests are tried again. Transient failures
// are retried: network errors, responses cut off mid-body, timeouts, 429 (honouring
// Retry-After), 5xx, and for reads the end of an SSE response and an offset the server sent
// backwards. Other 4xx never are. Appends are retried only when it is safe (see
// [AppendOptions]).
//
// The zero value is the default policy; each zero field means its documented default, so
// that a policy states only what it changes. [DefaultRetryPolicy] returns the defaults
// spelled out.
//
// A single operation (Create, Head, Append, …) counts its own attempts. A read ([Stream.Reader])
// counts the failures since it last made progress — an item or byte delivered, or a response
// read to its end — so that a server that answers and then breaks the body backs off
// exponentially instead of being asked again and again.
type RetryPolicy struct {
	// MaxAttempts bounds how many times an operation is tried (the first attempt included)
	// before its last failure is returned: 1 disables retries. [UnlimitedAttempts] retries
	// for as long as the context lives, which long-running readers and writers want.
	// Must be >= 1 or UnlimitedAttempts. Default: 6 (5 retries).
	MaxAttempts int
	// InitialDelay is the delay before the first retry. Must be >= 0. Default: 100ms.
	InitialDelay time.Duration
	// MaxDelay caps the delay between retries (a server's Retry-After may exceed it). Must
	// be >= InitialDelay. Default: 5s, or InitialDelay when that is larger.
	MaxDelay time.Duration
	// Multiplier grows the delay after each retry. Must be >= 1. Default: 2.
	Multiplier float64
	// Jitter is the fraction of each delay that is randomised, in [0, 1]: a delay d becomes
	// a uniform value in [d*(1-Jitter), d]. [NoJitter] makes delays exact. Default: 0.5.
	Jitter float64
}

const (
	// UnlimitedAttempts, as [RetryPolicy.MaxAttempts], retries for as long as the
	// operation's context lives.
	UnlimitedAttempts = -1
	// NoJitter, as [RetryPolicy.Jitter], makes every delay exact.
	NoJitter = -1.0
)

// Defaults of [RetryPolicy]'s zero fields.
const (
	DefaultMaxAttempts  = 6
	DefaultInitialDelay = 100 * time.Millisecond
	DefaultMaxDelay     = 5 * time.Second
	DefaultMultiplier   = 2.0
	DefaultJitter       = 0.5
)

// DefaultRetryPolicy returns the default policy with every field spelled out: 6 attempts,
// 100ms doubling up to 5s, half jitter. It is what the zero RetryPolicy means.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: DefaultMaxAttempts, InitialDelay: DefaultInitialDelay,
		MaxDelay: DefaultMaxDelay, Multiplier: DefaultMultiplier, Jitter: DefaultJitter}
}

// Validate reports every invalid field at once, each by its path (RetryPolicy.MaxDelay), in
// an [*OptionsError] that matches [ErrInvalidArgument]. Zero fields are valid: they mean the
// defaults.
func (p RetryPolicy) Validate() error {
	c := optcheck.New("dsclient", ErrInvalidArgument)
	p.check(c, "RetryPolicy.")
	return c.Err()
}

// check records p's problems on c, each field prefixed with prefix.
func (p RetryPolicy) check(c *optcheck.Checker, prefix string) {
	if p.MaxAttempts < 0 && p.MaxAttempts != UnlimitedAttempts {
		c.Bad(prefix+"MaxAttempts", "must be >= 1, 0 for the default or UnlimitedAttempts (-1), got %d", p.MaxAttempts)
	}
	if p.InitialDelay < 0 {
		c.Bad(prefix+"InitialDelay", "must be >= 0, got %s", p.InitialDelay)
	}
	if p.MaxDelay < 0 {
		c.Bad(prefix+"MaxDelay", "must be >= 0, got %s", p.MaxDelay)
	} else if p.MaxDelay > 0 && p.MaxDelay < p.InitialDelay {
		c.Bad(prefix+"MaxDelay", "must be >= InitialDelay (%s), got %s", p.InitialDelay, p.MaxDelay)
	}
	if p.Multiplier != 0 && !(p.Multiplier >= 1 && !math.IsInf(p.Multiplier, 0)) {
		c.Bad(prefix+"Multiplier", "must be >= 1, got %g", p.Multiplier)
	}
	if p.Jitter != NoJitter && !(p.Jitter >= 0 && p.Jitter <= 1) {
		c.Bad(prefix+"Jitter", "must be in [0, 1] or NoJitter (-1), got %g", p.Jitter)
	}
}

// withDefaults returns p with every zero field set to its default. p must be valid.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(DefaultMaxDelay, p.InitialDelay)
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	switch p.Jitter {
	case 0:
		p.Jitter = DefaultJitter
	case NoJitter:
		p.Jitter = 0
	}
	return p
}

// over returns p with its zero fields taken from base: a policy that changes some fields of
// another.
func (p RetryPolicy) over(base RetryPolicy) RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = base.MaxAttempts
	}
	if p.InitialDelay == 0 {
		p.InitialDelay = base.InitialDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = base.MaxDelay
	}
	if p.Multiplier == 0 {
		p.Multiplier = base.Multiplier
	}
	if p.Jitter == 0 {
		p.Jitter = base.Jitter
	}
	return p
}

// delay returns the pause before retry number n (0-based), jitter included.
func (p RetryPolicy) delay(n int) time.Duration {
	d := float64(p.InitialDelay) * math.Pow(p.Multiplier, float64(n))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.MaxDelay)
	}
	if p.Jitter > 0 {
		d -= d * p.Jitter * rand.Float64()
	}
	return time.Duration(d)
}

// Backoff is the delay sequence of a [RetryPolicy] with its count of failed attempts: the
// one piece that every retry loop of the client (requests, reads, the [Consumer]) is built
// on, exported for callers that loop themselves, such as the pipeline's producer. Make one
// with [RetryPolicy.Backoff]. Not safe for concurrent use.
type Backoff struct {
	p RetryPolicy // defaults applied
	n int         // failed attempts since the last Reset
}

// Backoff returns a fresh delay sequence for p (zero fields meaning the defaults). An invalid
// p is used as far as it makes sense: negative durations count as zero.
func (p RetryPolicy) Backoff() *Backoff {
	p.InitialDelay, p.MaxDelay = max(p.InitialDelay, 0), max(p.MaxDelay, 0)
	return &Backoff{p: p.withDefaults()}
}

// Next counts a failed attempt and returns the delay before the next one.
func (b *Backoff) Next() time.Duration {
	d := b.p.delay(min(b.n, 64))
	b.n++
	return d
}

// Reset starts the sequence again, after progress.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts returns how many failed attempts were counted since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Exhausted reports whether the policy allows no further attempt: as many attempts as
// MaxAttempts have failed. It is never true with [UnlimitedAttempts].
func (b *Backoff) Exhausted() bool {
	return b.p.MaxAttempts != UnlimitedAttempts && b.n >= b.p.MaxAttempts
}

// Wait counts a failed attempt and sleeps before the next one: the policy's delay, or
// retryAfter (a server's Retry-After) when that is longer. It returns ctx's error if ctx ends
// first. It does not check [Backoff.Exhausted]; callers decide.
func (b *Backoff) Wait(ctx context.Context, retryAfter time.Duration) error {
	return sleep(ctx, max(b.Next(), retryAfter))
}

// retrier is the one owner of retries inside the client: a [Backoff] (policy and attempt
// count), the observer that hears of each retry, and the one sleep. Stream.do, the chunk
// reader (requests, resumed bodies, SSE reconnects, rejected offsets) and the Consumer all
// retry through one.
type retrier struct {
	b   Backoff
	obs Observer
	url string // redacted
}

func newRetrier(p RetryPolicy, obs Observer, url string) *retrier {
	return &retrier{b: *p.Backoff(), obs: obs, url: url}
}

// retry decides about a failed attempt: it returns cause, with its attempt count, when the
// policy allows no more attempts, and otherwise reports the retry, sleeps and returns nil.
// When ctx ends during the sleep it returns cause joined with ctx's error.
func (rt *retrier) retry(ctx context.Context, cause *Error) error {
	rt.b.n++ // this failure
	cause.Attempts = rt.b.n
	if rt.b.Exhausted() {
		return cause
	}
	d := max(rt.b.p.delay(min(rt.b.n-1, 64)), cause.RetryAfter)
	if rt.obs != nil {
		rt.obs.Retry(RetryEvent{Op: cause.Op, URL: rt.url, Attempt: rt.b.n + 1, Delay: d, Err: cause})
	}
	if err := sleep(ctx, d); err != nil {
		cause.Err = errors.Join(cause.Err, err)
		return cause
	}
	return nil
}

// progress resets the attempt count: the operation moved forward.
func (rt *retrier) progress() { rt.b.n = 0 }

// sleep waits d or until ctx ends, returning ctx's error in that case. It is the one sleep
// of the client.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// retryableStatus reports whether a status is transient.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code >= 500
}

// refusedStatus reports whether a status says the server did not process the request at all
// (so even a non-idempotent append may be sent again).
func refusedStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable
}
