package dsclient_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// Helpers for tests that serve a handler in process, through dstest.Transport, so that they
// can run in a testing/synctest bubble on its fake clock.

// inproc returns a handle on the stream at path, served by h without sockets.
func inproc(h http.Handler, path string, opts ...ds.Option) *ds.Stream {
	hc := &http.Client{Transport: dstest.NewTransport(h)}
	return ds.NewStream("http://inproc.test"+path, append([]ds.Option{ds.WithHTTPClient(hc)}, opts...)...)
}

// exactRetry is a retry policy without jitter: 100ms doubling up to 5s.
func exactRetry(attempts int) ds.Option {
	return ds.WithRetry(ds.RetryPolicy{MaxAttempts: attempts, Jitter: ds.NoJitter})
}

// request is one request a test server saw.
type seenRequest struct {
	at     time.Duration // since the server was made (fake time in a bubble)
	offset string
	live   string
}

// recorder records the requests a handler sees.
type recorder struct {
	mu    sync.Mutex
	start time.Time
	reqs  []seenRequest
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (rec *recorder) add(r *http.Request) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	q := r.URL.Query()
	rec.reqs = append(rec.reqs, seenRequest{at: time.Since(rec.start), offset: q.Get("offset"), live: q.Get("live")})
	return len(rec.reqs)
}

func (rec *recorder) all() []seenRequest {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seenRequest(nil), rec.reqs...)
}

// gaps returns the time between consecutive requests.
func (rec *recorder) gaps() []time.Duration {
	reqs := rec.all()
	var out []time.Duration
	for i := 1; i < len(reqs); i++ {
		out = append(out, reqs[i].at-reqs[i-1].at)
	}
	return out
}

// protoHeaders sets a read response's protocol headers.
func protoHeaders(w http.ResponseWriter, ctype, next string, upToDate, closed bool) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Stream-Next-Offset", next)
	if upToDate {
		h.Set("Stream-Up-To-Date", "true")
	}
	if closed {
		h.Set("Stream-Closed", "true")
	}
	h.Set("Stream-Cursor", "1")
}

// sseEvents writes SSE events: data then control, for each (data, next) pair.
func sseWrite(w io.Writer, data, next string, upToDate, closed bool) {
	if data != "" {
		fmt.Fprintf(w, "event: data\ndata:%s\n\n", data)
	}
	fmt.Fprintf(w, "event: control\ndata:{\"streamNextOffset\":%q,\"streamCursor\":\"1\",\"upToDate\":%v,\"streamClosed\":%v}\n\n", next, upToDate, closed)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// events collects every observer event as text, for tests that look into them.
type events struct {
	ds.NopObserver
	mu  sync.Mutex
	log []string
}

func (e *events) add(kind string, v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf("%s %+v", kind, v))
}

func (e *events) RequestStart(ev ds.RequestStartEvent)     { e.add("start", ev) }
func (e *events) RequestDone(ev ds.RequestDoneEvent)       { e.add("done", ev) }
func (e *events) Retry(ev ds.RetryEvent)                   { e.add("retry", ev) }
func (e *events) Reconnect(ev ds.ReconnectEvent)           { e.add("reconnect", ev) }
func (e *events) Chunk(ev ds.ChunkEvent)                   { e.add("chunk", ev) }
func (e *events) ConsumerBatch(ev ds.ConsumerBatchEvent)   { e.add("batch", ev) }
func (e *events) WriterBatch(ev ds.WriterBatchEvent)       { e.add("writer", ev) }
func (e *events) OffsetRejected(ev ds.OffsetRejectedEvent) { e.add("rejected", ev) }
func (e *events) count(prefix string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, l := range e.log {
		if strings.HasPrefix(l, prefix+" ") {
			n++
		}
	}
	return n
}

func (e *events) text() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.log, "\n")
}

// readInts reads a JSON stream of {"n":…} items with r until io.EOF or an error, returning
// the numbers.
func readInts(r *ds.ChunkReader) ([]int, error) {
	var got []int
	for {
		c, err := r.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		for {
			var e event
			err := c.DecodeItem(&e)
			if err == io.EOF {
				break
			}
			if err != nil {
				return got, err
			}
			got = append(got, e.N)
		}
	}
}

func ints(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func bg() context.Context { return context.Background() }

// fakeStream serves a closed-or-open JSON stream of n items {"n":i}, per items a response
// (or an SSE batch), with offsets "0_%05d" counting items. Hooks let a test break it.
type fakeStream struct {
	n, per int
	closed bool
	lpWait time.Duration // how long a long-poll at the tail waits before a 204
	rec    *recorder
	// body, if set, may change a response (or SSE data event) body and its next offset;
	// req is the request's number (from 1), from the item it starts at.
	body func(req int, live string, from int, body []byte, next string) ([]byte, string)
	// before, if set, runs first; returning true means it answered (or stalled) itself.
	before func(req int, w http.ResponseWriter, r *http.Request) bool
}

func offsetOf(i int) string { return fmt.Sprintf("0_%05d", i) }

func (f *fakeStream) items(from, to int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"n":%d}`, i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := f.rec.add(r)
	if f.before != nil && f.before(req, w, r) {
		return
	}
	q := r.URL.Query()
	from := 0
	if o := q.Get("offset"); o != "-1" {
		fmt.Sscanf(o, "0_%d", &from)
	}
	live := q.Get("live")
	chunk := func(from int) ([]byte, string, int) {
		to := min(from+f.per, f.n)
		body, next := f.items(from, to), offsetOf(to)
		if f.body != nil {
			body, next = f.body(req, live, from, body, next)
		}
		return body, next, to
	}
	switch live {
	case "sse":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for from < f.n {
			body, next, to := chunk(from)
			sseWrite(w, string(body), next, to == f.n, f.closed && to == f.n)
			from = to
		}
		if f.closed {
			sseWrite(w, "", offsetOf(f.n), true, true)
			return
		}
		sseWrite(w, "", offsetOf(f.n), true, false)
		<-r.Context().Done()
		return
	case "long-poll":
		if from >= f.n {
			if !f.closed {
				select {
				case <-time.After(f.lpWait):
				case <-r.Context().Done():
					return
				}
			}
			protoHeaders(w, "application/json", offsetOf(f.n), true, f.closed)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	body, next, to := chunk(from)
	protoHeaders(w, "application/json", next, to == f.n, f.closed && to == f.n)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}
