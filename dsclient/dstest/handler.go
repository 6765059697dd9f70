package dstest

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler serves the Durable Streams protocol from memory. It is an [http.Handler] to mount in
// any server; [Server] runs one on a loopback port. Its methods are safe for concurrent use.
//
// Every stream lives under [Options.Prefix]; other paths get 404. Paths whose first segment
// under the prefix is "__ds" are the protocol's reserved control routes: subscriptions and
// the webhook signing keys (see the package documentation).
type Handler struct {
	opts Options

	mu      sync.RWMutex
	streams map[string]*stream
	creates int // PUTs that reached the store, for sweeping expired streams

	faults faultTable
	subs   subscriptions

	done      chan struct{} // closed by Close: live reads end
	closeOnce sync.Once

	waitHook atomic.Pointer[func(path string)] // tests: called when a live read starts to wait
}

// NewHandler returns a Handler with no streams and no subscriptions. It returns an
// [*OptionsError] naming every invalid option. It starts no goroutine (webhook deliveries and
// lease timers start goroutines later, which [Handler.Close] ends).
func NewHandler(opts Options) (*Handler, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: o, streams: make(map[string]*stream), done: make(chan struct{})}
	h.initSubscriptions()
	return h, nil
}

// Options returns the handler's options, defaults filled in.
func (h *Handler) Options() Options { return h.opts }

// Close ends every long-poll read (with 204) and SSE response in progress and makes new live
// reads return at once; it stops subscription lease and retry timers and cancels webhook
// deliveries in flight, waiting for them to return. Every route keeps answering, but no wake
// is issued any more. It may be called more than once.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.done)
		h.closeSubscriptions()
	})
}

// Reset deletes every stream and every subscription and clears every injected fault, waking
// live readers of the deleted streams.
func (h *Handler) Reset() {
	h.faults.clear()
	h.resetSubscriptions()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.streams {
		s.dead.Store(true)
		s.mu.Lock()
		s.notifyLocked()
		s.mu.Unlock()
	}
	clear(h.streams)
}

const (
	corsMethods = "GET, POST, PUT, DELETE, HEAD, OPTIONS"
	corsAllow   = "Content-Type, Authorization, If-None-Match, Stream-Seq, Stream-TTL, Stream-Expires-At, " +
		"Stream-Closed, Producer-Id, Producer-Epoch, Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, " +
		"Stream-Fork-Sub-Offset"
	corsExpose = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Stream-TTL, " +
		"Stream-Expires-At, Stream-Sse-Data-Encoding, Producer-Epoch, Producer-Seq, Producer-Expected-Seq, " +
		"Producer-Received-Seq, ETag, Content-Type, Content-Encoding, Location, Retry-After, Vary"
)

// ServeHTTP serves one request of the protocol.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &response{ResponseWriter: w, dropAt: -1}
	if h.opts.Logger != nil {
		defer h.logRequest(r, rw, start)
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Methods", corsMethods)
	hd.Set("Access-Control-Allow-Headers", corsAllow)
	hd.Set("Access-Control-Expose-Headers", corsExpose)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if r.Method == http.MethodOptions {
		rw.WriteHeader(http.StatusNoContent)
		return
	}
	path := r.URL.Path
	if f, ok := h.faults.take(path, r.Method); ok {
		if !h.applyFault(rw, r, f) {
			return
		}
	}
	if !strings.HasPrefix(path, h.opts.Prefix) || len(path) == len(h.opts.Prefix) {
		httpError(rw, http.StatusNotFound, "not a stream URL: streams live under "+h.opts.Prefix)
		return
	}
	if name := path[len(h.opts.Prefix):]; reservedPath(name) {
		rest, ok := strings.CutPrefix(r.URL.EscapedPath(), h.opts.Prefix)
		if !ok {
			rest = name
		}
		h.serveControl(rw, r, rest)
		return
	}
	switch r.Method {
	case http.MethodPut:
		h.serveCreate(rw, r, path)
	case http.MethodPost:
		h.serveAppend(rw, r, path)
	case http.MethodGet:
		h.serveRead(rw, r, path)
	case http.MethodHead:
		h.serveHead(rw, path)
	case http.MethodDelete:
		h.serveDelete(rw, path)
	default:
		rw.Header().Set("Allow", corsMethods)
		httpError(rw, http.StatusMethodNotAllowed, "method not allowed")
	}
}

func (h *Handler) logRequest(r *http.Request, rw *response, start time.Time) {
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	h.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("query", r.URL.RawQuery),
		slog.Int("status", status),
		slog.Int64("bytes", rw.written),
		slog.Duration("duration", time.Since(start)))
}

// httpError answers with status and a one-line plain-text message.
func httpError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Del("Content-Length")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// errBodyTooLarge reports a request body over Options.MaxBodyBytes.
var errBodyTooLarge = errors.New("request body too large")

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 1<<20 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// readBody reads the request body into a pooled buffer, which the caller returns with putBuf.
func (h *Handler) readBody(r *http.Request) (*bytes.Buffer, error) {
	limit := h.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errBodyTooLarge
	}
	buf := getBuf()
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		putBuf(buf)
		return nil, err
	}
	if n > limit {
		putBuf(buf)
		return nil, errBodyTooLarge
	}
	return buf, nil
}

// bodyError answers a failed body read.
func bodyError(w http.ResponseWriter, err error) {
	if errors.Is(err, errBodyTooLarge) {
		httpError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	httpError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
}

// isTrue reports whether a Stream-Closed value means true: exactly "true", any case.
func isTrue(v string) bool { return strings.EqualFold(v, "true") }

// response wraps the ResponseWriter to count what is written and to carry out faults that
// act on the body.
type response struct {
	http.ResponseWriter
	status  int
	written int64
	fault   *Fault // a fault acting during the response, if any
	dropAt  int64  // body bytes after which the connection drops; -1 for none
	events  int    // SSE events written
}

func (w *response) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if w.fault != nil && w.fault.DropMidBody {
		w.armDrop()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *response) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.dropAt >= 0 && w.written+int64(len(p)) >= w.dropAt {
		n, _ := w.ResponseWriter.Write(p[:w.dropAt-w.written])
		w.written += int64(n)
		w.drop()
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush sends what is buffered to the client.
func (w *response) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped ResponseWriter, for [http.ResponseController].
func (w *response) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// waiting reports that a live read of s is about to wait for a change (for tests).
func (h *Handler) waiting(s *stream) {
	if f := h.waitHook.Load(); f != nil {
		(*f)(s.path)
	}
}
