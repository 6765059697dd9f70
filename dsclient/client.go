package dsclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// Client holds what every stream handle shares: the HTTP client (with its connection pool),
// default headers and query parameters, the retry policy and the observer. Make one with
// [NewClient] and reuse it; it is safe for concurrent use and cheap to keep.
type Client struct {
	cfg config
}

type config struct {
	httpClient  *http.Client
	headers     []dynValue
	params      []dynValue
	retry       retryConfig
	observer    Observer
	contentType string
}

// retryConfig is a handle's retry policy.
type retryConfig struct {
	RetryPolicy // as given; zero fields mean the defaults
}

func newRetryConfig(p RetryPolicy) retryConfig { return retryConfig{RetryPolicy: p} }

// policy returns the policy single operations follow.
func (c retryConfig) policy() RetryPolicy { return c.RetryPolicy }

// optionError reports an invalid option, in the form every option problem takes.
func optionError(option, format string, args ...any) error {
	return optcheck.Of("dsclient", ErrInvalidArgument, []optcheck.FieldError{{Field: option, Problem: fmt.Sprintf(format, args...)}})
}

// applyOptions applies every option to c and reports the problems of them all at once.
func applyOptions(c *config, opts []Option) error {
	var probs []optcheck.FieldError
	for _, o := range opts {
		err := o(c)
		var oe *optcheck.Error
		switch {
		case err == nil:
		case errors.As(err, &oe):
			probs = append(probs, oe.Problems...)
		default:
			probs = append(probs, optcheck.FieldError{Field: "Option", Problem: err.Error()})
		}
	}
	return optcheck.Of("dsclient", ErrInvalidArgument, probs)
}

// dynValue is a header or query parameter, static or computed per request.
type dynValue struct {
	name  string
	value string
	fn    func(context.Context) (string, error)
}

// Option configures a [Client] or a [Stream] handle. Header and parameter options add to
// those inherited from the client; the others replace them. Invalid options are reported
// all at once, each named (WithHeader, WithRetry.MaxDelay, …), in an [*OptionsError].
type Option func(*config) error

// WithHTTPClient sets the HTTP client. Default: a client with a tuned transport (see
// [NewTransport]) and no overall timeout (reads can be long-lived; use contexts and
// [ReadOptions.IdleTimeout]).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return optionError("WithHTTPClient", "nil client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithHeader adds a header sent with every request.
func WithHeader(name, value string) Option {
	return func(c *config) error {
		if name == "" {
			return optionError("WithHeader", "empty name")
		}
		c.headers = append(slices.Clip(c.headers), dynValue{name: name, value: value})
		return nil
	}
}

// WithHeaderFunc adds a header whose value fn computes for every request, including every
// retry and every long-poll or SSE reconnect (so an expiring token is refreshed). fn gets the
// request's context; an error from fn fails the operation without sending. An empty value
// omits the header.
func WithHeaderFunc(name string, fn func(ctx context.Context) (string, error)) Option {
	return func(c *config) error {
		if name == "" || fn == nil {
			return optionError("WithHeaderFunc", "empty name or nil func")
		}
		c.headers = append(slices.Clip(c.headers), dynValue{name: name, fn: fn})
		return nil
	}
}

// WithParam adds a query parameter sent with every request.
func WithParam(name, value string) Option {
	return func(c *config) error {
		if name == "" {
			return optionError("WithParam", "empty name")
		}
		c.params = append(slices.Clip(c.params), dynValue{name: name, value: value})
		return nil
	}
}

// WithParamFunc adds a query parameter computed for every request, like [WithHeaderFunc]. An
// empty value omits the parameter.
func WithParamFunc(name string, fn func(ctx context.Context) (string, error)) Option {
	return func(c *config) error {
		if name == "" || fn == nil {
			return optionError("WithParamFunc", "empty name or nil func")
		}
		c.params = append(slices.Clip(c.params), dynValue{name: name, fn: fn})
		return nil
	}
}

// WithRetry sets the retry policy (its zero fields mean the defaults). Default: the zero
// [RetryPolicy], see [DefaultRetryPolicy]. Reads and the [Consumer] may change fields of it
// ([ReadOptions.Retry]).
func WithRetry(p RetryPolicy) Option {
	return func(c *config) error {
		ch := optcheck.New("dsclient", ErrInvalidArgument)
		p.check(ch, "WithRetry.")
		if err := ch.Err(); err != nil {
			return err
		}
		c.retry = newRetryConfig(p)
		return nil
	}
}

// WithObserver sets the observer of requests, retries, reads and batches. Default: none.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		c.observer = o
		return nil
	}
}

// WithContentType sets the content type a handle uses to create the stream and to append
// when [CreateOptions.ContentType] or [AppendOptions.ContentType] is empty. Default:
// application/octet-stream.
func WithContentType(ct string) Option {
	return func(c *config) error {
		c.contentType = ct
		return nil
	}
}

// NewTransport returns the transport of the default HTTP client: [http.DefaultTransport]'s
// settings with a larger idle pool per host and idle connections closed after 4s. Many
// servers (Node's among them) close idle keep-alive connections after 5s; closing ours first
// keeps a request from being written on a connection the server is closing, which would make
// a non-idempotent append's outcome unknown.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 4 * time.Second
	return t
}

var defaultHTTPClient = &http.Client{Transport: NewTransport()}

// NewClient returns a client configured by opts. It fails with an [*OptionsError] naming
// every invalid option. It does no I/O.
func NewClient(opts ...Option) (*Client, error) {
	c := &Client{cfg: config{httpClient: defaultHTTPClient, retry: newRetryConfig(RetryPolicy{})}}
	if err := applyOptions(&c.cfg, opts); err != nil {
		return nil, err
	}
	return c, nil
}

var defaultClient, _ = NewClient()

// Stream returns a handle to the stream at rawURL. It does no I/O: the handle is a cheap
// value to keep and pass around, safe for concurrent use. opts add headers and parameters to
// the client's (or replace its other settings) for this handle only.
//
// The URL may carry credentials in its user info (https://user:token@host/...): they are sent
// with every request (as HTTP basic authentication) but never shown: see [Stream.URL].
//
// Stream never fails: an invalid URL or option is reported, as [ErrInvalidArgument], by the
// handle's first operation.
func (c *Client) Stream(rawURL string, opts ...Option) *Stream {
	s := &Stream{cfg: c.cfg}
	s.cfg.headers = slices.Clip(s.cfg.headers)
	s.cfg.params = slices.Clip(s.cfg.params)
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message repeats the raw URL, credentials included
		}
		s.url = displayRaw(rawURL)
		s.err = invalidArg("stream", s.url, "invalid URL: %v", err)
		return s
	}
	s.url = displayURL(u)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		s.err = invalidArg("stream", s.url, "URL scheme must be http or https")
	case u.Host == "":
		s.err = invalidArg("stream", s.url, "URL has no host")
	}
	if s.err != nil {
		return s
	}
	s.base = u
	w := *u
	w.RawQuery, w.ForceQuery, w.Fragment, w.RawFragment = "", false, "", ""
	s.wire = w.String()
	if err := applyOptions(&s.cfg, opts); err != nil {
		s.err = &Error{Op: "stream", URL: s.url, Kind: ErrInvalidArgument, Err: err, BytePos: -1}
	}
	return s
}

// NewStream returns a handle on a client with default settings plus opts; see
// [Client.Stream].
func NewStream(rawURL string, opts ...Option) *Stream {
	return defaultClient.Stream(rawURL, opts...)
}

// request describes one HTTP exchange, retried as its retry class allows.
type request struct {
	op      Op
	method  string
	query   []kv // protocol parameters
	header  []kv // protocol headers
	body    []byte
	ctype   string
	offset  Offset // for error context on reads
	safety  retrySafety
	retry   *RetryPolicy // overrides the handle's policy when set
	noRetry bool

	// Reads: answerTimeout gives up an attempt whose response headers have not arrived in
	// time (answer, when set, computes it for each attempt, and timedOut hears of each
	// attempt given up); idleTimeout then gives up a body that sends nothing for that long.
	// Zero: none.
	answerTimeout time.Duration
	answer        func() time.Duration
	timedOut      func()
	idleTimeout   time.Duration
}

type kv struct{ k, v string }

type retrySafety int

const (
	// idempotent: retried on any transient failure.
	idempotent retrySafety = iota
	// unsafe: retried only when the request provably did not reach the server, or the server
	// said it did not process it (429, 503).
	unsafe
	// always: retried on any transient failure although not idempotent (opt-in).
	unsafeAlways
)

// buildRequest makes the HTTP request for one attempt, evaluating dynamic headers and params.
func (s *Stream) buildRequest(ctx context.Context, r *request) (*http.Request, error) {
	// Query: the URL's own parameters, then the handle's, then the protocol's; sorted by key
	// for cache friendliness (protocol section 10.1).
	var pairs []kv
	if s.base.RawQuery != "" {
		for _, part := range strings.Split(s.base.RawQuery, "&") {
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			k, _ = url.QueryUnescape(k)
			v, _ = url.QueryUnescape(v)
			pairs = append(pairs, kv{k, v})
		}
	}
	for _, p := range s.cfg.params {
		v := p.value
		if p.fn != nil {
			var err error
			if v, err = p.fn(ctx); err != nil {
				return nil, fmt.Errorf("query parameter %q: %w", p.name, err)
			}
			if v == "" {
				continue
			}
		}
		pairs = append(pairs, kv{p.name, v})
	}
	pairs = append(pairs, r.query...)
	u := s.wire
	if len(pairs) > 0 {
		slices.SortStableFunc(pairs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		var b strings.Builder
		b.Grow(len(u) + 64)
		b.WriteString(u)
		for i, p := range pairs {
			if i == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(p.k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(p.v))
		}
		u = b.String()
	}
	var req *http.Request
	var err error
	if r.body != nil {
		req, err = http.NewRequestWithContext(ctx, r.method, u, bytesReader(r.body))
	} else {
		req, err = http.NewRequestWithContext(ctx, r.method, u, nil)
	}
	if err != nil {
		return nil, redactErr(err, s.url)
	}
	for _, h := range s.cfg.headers {
		v := h.value
		if h.fn != nil {
			if v, err = h.fn(ctx); err != nil {
				return nil, fmt.Errorf("header %q: %w", h.name, err)
			}
			if v == "" {
				continue
			}
		}
		req.Header.Set(h.name, v)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for _, h := range r.header {
		req.Header.Set(h.k, h.v)
	}
	return req, nil
}

// do sends r, retrying transient failures as r's safety allows, with a retrier of its own
// (the handle's policy, or r.retry). It returns the response of a 2xx (the caller closes its
// body) or an *Error. Non-2xx bodies are read (up to 4 KiB) and closed here.
func (s *Stream) do(ctx context.Context, r *request) (*http.Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	pol := s.cfg.retry.policy()
	if r.retry != nil {
		pol = *r.retry
	}
	return s.doWith(ctx, r, newRetrier(pol, s.cfg.observer, s.url))
}

// doWith is do through the retrier rt. A read's retrier lives across its requests, so that
// attempts without progress add up.
func (s *Stream) doWith(ctx context.Context, r *request, rt *retrier) (*http.Response, error) {
	if s.err != nil {
		return nil, s.err
	}
	obs := s.cfg.observer
	for {
		attempt := rt.b.n + 1
		if r.answer != nil {
			r.answerTimeout = r.answer()
		}
		actx, wd := ctx, (*watchdog)(nil)
		if r.answerTimeout > 0 {
			actx, wd = watch(ctx, r.answerTimeout)
		}
		req, err := s.buildRequest(actx, r)
		if err != nil {
			if wd != nil {
				wd.stop()
			}
			return nil, &Error{Op: r.op, URL: s.url, Kind: ErrInvalidArgument, Offset: r.offset, Err: err, Attempts: attempt - 1, BytePos: -1}
		}
		var tr *sendTrace
		if r.safety == unsafe {
			req, tr = withSendTrace(req)
		}
		var start time.Time
		if obs != nil {
			obs.RequestStart(RequestStartEvent{Op: r.op, Method: r.method, URL: s.url, Attempt: attempt})
			start = time.Now()
		}
		resp, err := s.cfg.httpClient.Do(req)
		if err != nil {
			if wd != nil {
				wd.stop()
			}
			err = redactErr(err, s.url)
			if obs != nil {
				obs.RequestDone(RequestDoneEvent{Op: r.op, Method: r.method, URL: s.url, Attempt: attempt, Duration: time.Since(start), Err: err})
			}
			if ctx.Err() != nil {
				return nil, &Error{Op: r.op, URL: s.url, Kind: ErrNetwork, Offset: r.offset, Err: ctx.Err(), Attempts: attempt, BytePos: -1}
			}
			e := &Error{Op: r.op, URL: s.url, Kind: ErrNetwork, Offset: r.offset, Err: err, Attempts: attempt, BytePos: -1}
			if wd.timedOut() {
				e.Kind, e.Err = ErrTimeout, fmt.Errorf("no response within %s", r.answerTimeout)
				if r.timedOut != nil {
					r.timedOut()
				}
			}
			retry := r.safety != unsafe || tr.notSent() || isDialError(err)
			if r.noRetry || !retry {
				return nil, e
			}
			if err := rt.retry(ctx, e); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if obs != nil {
				obs.RequestDone(RequestDoneEvent{Op: r.op, Method: r.method, URL: s.url, Attempt: attempt, Status: resp.StatusCode, Duration: time.Since(start)})
			}
			if wd != nil {
				// The body is read under the idle timeout, if any; closing it releases the
				// watchdog.
				if wd.idle = r.idleTimeout; wd.idle > 0 {
					wd.kick(wd.idle)
				} else {
					wd.timer.Stop()
				}
				resp.Body = &watchedBody{ReadCloser: resp.Body, w: wd}
			}
			return resp, nil
		}
		e := s.statusError(r, resp)
		if wd != nil {
			wd.stop()
		}
		e.Attempts = attempt
		if obs != nil {
			obs.RequestDone(RequestDoneEvent{Op: r.op, Method: r.method, URL: s.url, Attempt: attempt, Status: resp.StatusCode, Duration: time.Since(start), Err: e})
		}
		retry := retryableStatus(resp.StatusCode) && (r.safety != unsafe || refusedStatus(resp.StatusCode))
		if r.noRetry || !retry {
			return nil, e
		}
		if err := rt.retry(ctx, e); err != nil {
			return nil, err
		}
	}
}

// isDialError reports whether err happened while connecting, before anything was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
