package dstest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-go/sluice/internal/optcheck"
)

// A Fault makes requests on one path misbehave, for testing clients: fail with a status, wait,
// drop the connection before answering or in the middle of the body, or cut an SSE stream
// short. Install one with [Handler.InjectFault] or [Server.InjectFault]; it applies to the
// next Count matching requests, then is gone.
//
// At most one of Status, Drop, DropMidBody and TruncateSSEAfter may be set; Delay combines
// with any of them (it comes first) or stands alone (the request is then served normally,
// late).
type Fault struct {
	// Method restricts the fault to requests with this method (any case). Default: "", every
	// method.
	Method string

	// Count is how many matching requests get the fault. Default: 0, meaning 1.
	Count int

	// Delay is how long to wait before anything else, honouring the request's context.
	// Default: 0, no wait.
	Delay time.Duration

	// Status, when set, answers the request with this status and a plain-text body instead of
	// serving it. Default: 0, the request is served.
	Status int

	// RetryAfter, with Status, sends a Retry-After header of this many seconds (rounded up).
	// Default: 0, no header.
	RetryAfter time.Duration

	// Drop closes the connection without any response. Default: false.
	Drop bool

	// DropMidBody serves the request but closes the connection after DropAfterBytes bytes of
	// the response body, so the client sees the headers (with the full Content-Length) and a
	// body that ends early. Default: false.
	DropMidBody bool

	// DropAfterBytes is how many body bytes DropMidBody lets through. Default: 0, meaning half
	// the body when its length is known (and always fewer than all of it), else none.
	DropAfterBytes int

	// TruncateSSEAfter, for an SSE read, sends this many complete events (data and control
	// events count alike), then the start of another event, and closes the connection: the
	// stream ends abruptly with no closing control event. Requests that are not SSE reads are
	// served normally. Default: 0, off.
	TruncateSSEAfter int
}

func (f Fault) validate() error {
	c := optcheck.New("dstest", nil)
	f.check(c)
	return c.Err()
}

// check records every problem of f in c.
func (f Fault) check(c *optcheck.Checker) {
	if f.Count < 0 {
		c.Bad("Fault.Count", "must be >= 0, got %d", f.Count)
	}
	if f.Delay < 0 {
		c.Bad("Fault.Delay", "must be >= 0, got %v", f.Delay)
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 999) {
		c.Bad("Fault.Status", "must be an HTTP status (100-999), got %d", f.Status)
	}
	if f.RetryAfter < 0 {
		c.Bad("Fault.RetryAfter", "must be >= 0, got %v", f.RetryAfter)
	} else if f.RetryAfter > 0 && f.Status == 0 {
		c.Bad("Fault.RetryAfter", "needs Status")
	}
	if f.DropAfterBytes < 0 {
		c.Bad("Fault.DropAfterBytes", "must be >= 0, got %d", f.DropAfterBytes)
	} else if f.DropAfterBytes > 0 && !f.DropMidBody {
		c.Bad("Fault.DropAfterBytes", "needs DropMidBody")
	}
	if f.TruncateSSEAfter < 0 {
		c.Bad("Fault.TruncateSSEAfter", "must be >= 0, got %d", f.TruncateSSEAfter)
	}
	kinds := 0
	for _, set := range []bool{f.Status != 0, f.Drop, f.DropMidBody, f.TruncateSSEAfter > 0} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		c.Bad("Fault", "at most one of Status, Drop, DropMidBody and TruncateSSEAfter may be set")
	}
	if kinds == 0 && f.Delay == 0 {
		c.Bad("Fault", "nothing to do: set Delay, Status, Drop, DropMidBody or TruncateSSEAfter")
	}
}

// faultTable holds the installed faults, first in first out per path.
type faultTable struct {
	mu     sync.Mutex
	byPath map[string][]*pendingFault
}

type pendingFault struct {
	f    Fault
	left int
}

// InjectFault installs f for the next f.Count requests on path, which is a URL path such as
// "/v1/stream/orders" or, without a leading "/", a stream name under the prefix. Faults on one
// path apply in the order they were installed; a request takes the first whose Method
// matches. It returns an error naming every invalid field.
func (h *Handler) InjectFault(path string, f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if path == "" {
		return errors.New("dstest: InjectFault: empty path")
	}
	if !strings.HasPrefix(path, "/") {
		path = h.opts.Prefix + path
	}
	h.faults.add(path, f)
	return nil
}

// add installs f under key.
func (t *faultTable) add(key string, f Fault) {
	left := f.Count
	if left == 0 {
		left = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byPath == nil {
		t.byPath = make(map[string][]*pendingFault)
	}
	t.byPath[key] = append(t.byPath[key], &pendingFault{f: f, left: left})
}

// InjectWebhookFault makes the next f.Count webhook deliveries of subscription id misbehave,
// so that tests can watch deliveries fail and be retried. Delay waits before the delivery
// is sent; then Status stands for the receiver's answer (the request is not sent: a 2xx
// status is a success without {"done":true}, any other a failure); Drop fails the delivery
// before it is sent, as a connection error; DropMidBody sends it and loses the receiver's
// answer, so that the delivery counts as failed although the receiver got it and is sent
// again. Method (when set) must be POST; RetryAfter, DropAfterBytes and TruncateSSEAfter
// have no meaning here and are refused. The fault may be installed before the subscription
// exists. It returns an [*OptionsError] naming every invalid field.
func (h *Handler) InjectWebhookFault(id string, f Fault) error {
	c := optcheck.New("dstest", nil)
	f.check(c)
	if f.Method != "" && !strings.EqualFold(f.Method, http.MethodPost) {
		c.Bad("Fault.Method", "webhook deliveries are POSTs, got %q", f.Method)
	}
	if f.RetryAfter != 0 {
		c.Bad("Fault.RetryAfter", "has no meaning for a webhook delivery")
	}
	if f.DropAfterBytes != 0 {
		c.Bad("Fault.DropAfterBytes", "has no meaning for a webhook delivery")
	}
	if f.TruncateSSEAfter != 0 {
		c.Bad("Fault.TruncateSSEAfter", "has no meaning for a webhook delivery")
	}
	if id == "" {
		c.Bad("id", "empty subscription id")
	}
	if err := c.Err(); err != nil {
		return err
	}
	h.faults.add(webhookFaultKey(id), f)
	return nil
}

// ClearFaults removes every installed fault, webhook faults included.
func (h *Handler) ClearFaults() { h.faults.clear() }

// PendingFaults returns how many requests (and webhook deliveries) the installed faults will
// still affect.
func (h *Handler) PendingFaults() int {
	t := &h.faults
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, list := range t.byPath {
		for _, p := range list {
			n += p.left
		}
	}
	return n
}

func (t *faultTable) clear() {
	t.mu.Lock()
	clear(t.byPath)
	t.mu.Unlock()
}

// take consumes one use of the first fault on path that matches method.
func (t *faultTable) take(path, method string) (Fault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.byPath[path]
	for i, p := range list {
		if p.f.Method != "" && !strings.EqualFold(p.f.Method, method) {
			continue
		}
		p.left--
		if p.left == 0 {
			list = append(list[:i:i], list[i+1:]...)
			if len(list) == 0 {
				delete(t.byPath, path)
			} else {
				t.byPath[path] = list
			}
		}
		return p.f, true
	}
	return Fault{}, false
}

// applyFault carries out the part of f that acts before the request is served. It reports
// whether the request should then be served.
func (h *Handler) applyFault(w *response, r *http.Request, f Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	switch {
	case f.Drop:
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((f.RetryAfter+time.Second-1)/time.Second), 10))
		}
		httpError(w, f.Status, "injected fault")
		return false
	case f.DropMidBody, f.TruncateSSEAfter > 0:
		w.fault = &f
	}
	return true
}

// armDrop sets where DropMidBody cuts the body, once the headers are known.
func (w *response) armDrop() {
	n := int64(w.fault.DropAfterBytes)
	if cl, err := strconv.ParseInt(w.Header().Get("Content-Length"), 10, 64); err == nil {
		if n == 0 {
			n = cl / 2
		}
		if n >= cl {
			n = max(cl-1, 0)
		}
	}
	w.dropAt = n
}

// drop sends what was written and closes the connection.
func (w *response) drop() {
	http.NewResponseController(w.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}

// sseEvent counts an SSE event just written; a TruncateSSEAfter fault cuts the stream here.
func (w *response) sseEvent() {
	w.events++
	if w.fault != nil && w.fault.TruncateSSEAfter > 0 && w.events >= w.fault.TruncateSSEAfter {
		w.ResponseWriter.Write([]byte("event: data\ndata:"))
		w.drop()
	}
}
