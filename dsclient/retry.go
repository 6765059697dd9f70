package dsclient

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how often and how fast a failed request is retried. Transient failures are
// retried: network errors, responses cut off mid-body, 429 (honouring Retry-After) and 5xx.
// Other 4xx never are. Appends are retried only when it is safe (see [AppendOptions]).
//
// Start from [DefaultRetryPolicy] and change fields; [RetryPolicy.Validate] rejects bad values
// (a zero InitialDelay or Multiplier is an error, not a default).
type RetryPolicy struct {
	// MaxRetries is how many times a request is retried after its first attempt; 0 disables
	// retries. Must be >= 0. Default: 5.
	MaxRetries int
	// InitialDelay is the delay before the first retry. Must be > 0. Default: 100ms.
	InitialDelay time.Duration
	// MaxDelay caps the delay between retries (a server's Retry-After may exceed it). Must
	// be >= InitialDelay. Default: 5s.
	MaxDelay time.Duration
	// Multiplier grows the delay after each retry. Must be >= 1. Default: 2.
	Multiplier float64
	// Jitter is the fraction of each delay that is randomised, in [0, 1]: the delay d becomes
	// a uniform value in [d*(1-Jitter), d]. Default: 0.5.
	Jitter float64
}

// DefaultRetryPolicy returns the default policy: 5 retries, 100ms doubling up to 5s, half
// jitter.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxRetries: 5, InitialDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second, Multiplier: 2, Jitter: 0.5}
}

// Validate reports every invalid field at once, each named, wrapped in [ErrInvalidArgument].
func (p RetryPolicy) Validate() error {
	var probs []string
	if p.MaxRetries < 0 {
		probs = append(probs, fmt.Sprintf("maxRetries: must be >= 0, got %d", p.MaxRetries))
	}
	if p.InitialDelay <= 0 {
		probs = append(probs, fmt.Sprintf("initialDelayMs: must be > 0, got %s", p.InitialDelay))
	}
	if p.MaxDelay < p.InitialDelay {
		probs = append(probs, fmt.Sprintf("maxDelayMs: must be >= initialDelayMs (%s), got %s", p.InitialDelay, p.MaxDelay))
	}
	if !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 0) {
		probs = append(probs, fmt.Sprintf("multiplier: must be >= 1, got %g", p.Multiplier))
	}
	if !(p.Jitter >= 0 && p.Jitter <= 1) {
		probs = append(probs, fmt.Sprintf("jitter: must be in [0, 1], got %g", p.Jitter))
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: RetryPolicy: %s", ErrInvalidArgument, strings.Join(probs, "; "))
}

// delay returns the pause before retry number n (0-based), before jitter and Retry-After.
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

// Backoff is the delay sequence of a [RetryPolicy] for callers that loop themselves (the
// [Consumer] uses one for reconnects). The zero value is not usable; make one with
// [RetryPolicy.Backoff]. Not safe for concurrent use.
type Backoff struct {
	p RetryPolicy
	n int
}

// Backoff returns a fresh delay sequence for p.
func (p RetryPolicy) Backoff() *Backoff { return &Backoff{p: p} }

// Next returns the next delay and advances the sequence.
func (b *Backoff) Next() time.Duration {
	d := b.p.delay(b.n)
	if b.n < 64 {
		b.n++
	}
	return d
}

// Reset starts the sequence again, after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts returns how many delays were handed out since the last reset.
func (b *Backoff) Attempts() int { return b.n }

// sleep waits d or until ctx ends.
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
