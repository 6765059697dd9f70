package dsclient_test

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// handlerTransport is an http.RoundTripper that serves each request with a handler in the
// test process, through dstest's in-process Transport: no sockets, so that writer tests run
// inside testing/synctest bubbles with a fake clock. before, when set, sees each request
// first and may answer it itself (ok true: its response or error is the outcome, the handler
// never sees the request); after, when set, may replace the handler's answer (for example
// with an error, as if the response were lost after the server stored the append).
type handlerTransport struct {
	inner  *dstest.Transport
	before func(r *http.Request) (resp *http.Response, err error, ok bool)
	after  func(r *http.Request, resp *http.Response) (*http.Response, error)
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.before != nil {
		if resp, err, ok := t.before(r); ok {
			if r.Body != nil {
				r.Body.Close()
			}
			return resp, err
		}
	}
	resp, err := t.inner.RoundTrip(r)
	if err != nil || t.after == nil {
		return resp, err
	}
	out, err := t.after(r, resp)
	if out != resp {
		resp.Body.Close()
	}
	return out, err
}

// errRefused is what a dial to a server that is down returns: the request was never sent.
var errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// errReset is a connection reset after the request was sent: the server may have processed it.
var errReset = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// inProcess returns an in-process server handler and a JSON stream handle on it named name,
// created, whose requests go through tr (its handler is set here).
func inProcess(t testing.TB, tr *handlerTransport, name string, opts ...ds.Option) (*dstest.Handler, *ds.Stream) {
	t.Helper()
	h, err := dstest.NewHandler(dstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h, through(t, tr, h, name, opts...)
}

// viaRef returns a JSON stream handle named name on the reference server, created, whose
// requests go through tr to a reverse proxy in the test process.
func viaRef(t testing.TB, tr *handlerTransport, name string, opts ...ds.Option) *ds.Stream {
	t.Helper()
	u, err := url.Parse(ref(t).URL)
	if err != nil {
		t.Fatal(err)
	}
	return through(t, tr, httputil.NewSingleHostReverseProxy(u), name, opts...)
}

// through makes h tr's handler and returns a created JSON stream handle named name whose
// requests go through tr.
func through(t testing.TB, tr *handlerTransport, h http.Handler, name string, opts ...ds.Option) *ds.Stream {
	t.Helper()
	tr.inner = dstest.NewTransport(h)
	opts = append([]ds.Option{ds.WithHTTPClient(&http.Client{Transport: tr}), ds.WithContentType("application/json")}, opts...)
	s := ds.NewStream("http://dstest.invalid/v1/stream/"+name, opts...)
	if _, err := s.Create(t.Context(), ds.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}
