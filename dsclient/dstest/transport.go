package dstest

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"runtime/debug"
	"strconv"
	"sync"
)

// Transport is an [http.RoundTripper] that serves each request with an [http.Handler] in
// the same process, without sockets: a [Handler], or any handler a test writes to misbehave.
// Give it to a client with &http.Client{Transport: t}.
//
// Because nothing goes through the network, a goroutine blocked on a request served by a
// Transport (a long-poll, an SSE stream, a stalled body) is durably blocked in the sense of
// [testing/synctest]: tests of timeouts, backoff and reconnects can run in a bubble, on its
// fake clock, instead of sleeping. Create the Transport, the handler's timers and the client
// inside the bubble.
//
// It behaves like a connection to a server: the handler runs in its own goroutine with a
// request whose context ends when the client's does or when the client closes the response
// body; the response is streamed through a pipe (a handler's Write blocks until the client
// reads); a handler that panics (as [http.ErrAbortHandler] does for a dropped connection)
// breaks the connection: RoundTrip fails if no header was sent, else the body ends with
// [io.ErrUnexpectedEOF]; so does a body shorter than its Content-Length. Requests carry no
// Accept-Encoding, so handlers answer uncompressed. It is safe for concurrent use.
type Transport struct {
	h http.Handler
}

// NewTransport returns a transport that serves every request with h.
func NewTransport(h http.Handler) *Transport { return &Transport{h: h} }

// errConnReset is what a client sees of a connection the handler dropped.
var errConnReset = errors.New("dstest: connection reset by the in-process server")

// RoundTrip serves req with the handler. It returns when the handler has sent the response
// headers (or finished, or dropped the connection), or when req's context ends.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	sreq := req.Clone(sctx)
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "192.0.2.1:1234"
	sreq.Host = req.URL.Host
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: make(http.Header), pw: pw, ready: make(chan struct{}), req: req}
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{})
	}
	go w.serve(t.h, sreq, cancel)
	select {
	case <-w.ready:
	case <-ctx.Done():
		cancel()
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	if w.resp == nil {
		cancel()
		return nil, errConnReset
	}
	resp := w.resp
	body := &pipeBody{pr: pr, cancel: cancel}
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	body.stop = stop
	if req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		body.Close()
		resp.Body = http.NoBody
	} else {
		resp.Body = body
	}
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// pipeWriter is the handler's ResponseWriter: headers go to RoundTrip once, the body into
// the pipe.
type pipeWriter struct {
	header  http.Header
	pw      *io.PipeWriter
	req     *http.Request
	ready   chan struct{} // closed once resp is set, or the handler is gone without a response
	once    sync.Once
	resp    *http.Response
	length  int64 // declared Content-Length, or -1
	written int64
}

func (w *pipeWriter) Header() http.Header { return w.header }

// WriteHeader sends the response headers to the client. Informational statuses are ignored.
func (w *pipeWriter) WriteHeader(code int) {
	if code < 200 {
		return
	}
	w.once.Do(func() {
		h := w.header.Clone()
		w.length = -1
		if cl, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && cl >= 0 {
			w.length = cl
		}
		w.resp = &http.Response{
			Status:        strconv.Itoa(code) + " " + http.StatusText(code),
			StatusCode:    code,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        h,
			ContentLength: w.length,
			Request:       w.req,
		}
		close(w.ready)
	})
}

// Write streams p to the client, blocking until the client has read it.
func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	n, err := w.pw.Write(p)
	w.written += int64(n)
	return n, err
}

// Flush does nothing: every Write reaches the client at once.
func (w *pipeWriter) Flush() { w.WriteHeader(http.StatusOK) }

// serve runs the handler and ends the response the way a server ends a connection.
func (w *pipeWriter) serve(h http.Handler, req *http.Request, cancel context.CancelFunc) {
	defer cancel()
	defer func() {
		p := recover()
		switch {
		case p != nil:
			w.pw.CloseWithError(io.ErrUnexpectedEOF)
		case w.length >= 0 && w.written < w.length:
			w.pw.CloseWithError(io.ErrUnexpectedEOF)
		default:
			w.pw.Close()
		}
		w.once.Do(func() { close(w.ready) }) // no response: the connection was dropped
		closeBody(req)
		if p != nil && p != http.ErrAbortHandler {
			// As net/http's server does: the connection is dropped, the panic logged.
			log.Printf("dstest: panic serving %s %s: %v\n%s", req.Method, req.URL.Path, p, debug.Stack())
		}
	}()
	h.ServeHTTP(w, req)
	w.WriteHeader(http.StatusOK)
}

// pipeBody is the client's response body.
type pipeBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
	stop   func() bool
	once   sync.Once
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

// Close closes the body; the handler's request context ends, as when a client hangs up.
func (b *pipeBody) Close() error {
	b.once.Do(func() {
		b.stop()
		b.pr.Close()
		b.cancel()
	})
	return nil
}
