package dstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-go/sluice/internal/protocol"
)

// Server is a [Handler] listening on a loopback port, the way [net/http/httptest.Server] is
// for a plain handler. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:41234, without a trailing slash.
	URL string

	h       *Handler
	srv     *http.Server
	ln      net.Listener
	served  chan struct{}
	closing sync.Once
	err     error
}

// NewServer starts a server on 127.0.0.1 with an unused port. It returns an error naming every
// invalid option, or the listen error. Stop it with [Server.Close]. It starts one goroutine,
// which Close waits for.
func NewServer(opts Options) (*Server, error) {
	return Listen("127.0.0.1:0", opts)
}

// Listen starts a server on addr (host:port; port 0 picks an unused one). Stop it with
// [Server.Close].
func Listen(addr string, opts Options) (*Server, error) {
	h, err := NewHandler(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dstest: listen: %w", err)
	}
	s := &Server{
		URL:    "http://" + ln.Addr().String(),
		h:      h,
		srv:    &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		ln:     ln,
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// ForTest starts a server for t and closes it when t ends; an invalid option or a listen
// error fails t at once.
func ForTest(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Handler returns the server's handler, which holds its streams and faults.
func (s *Server) Handler() *Handler { return s.h }

// StreamURL returns the URL of the named stream under the server's prefix.
func (s *Server) StreamURL(name string) string {
	return s.URL + s.h.opts.Prefix + strings.TrimLeft(name, "/")
}

// SubscriptionURL returns the URL of subscription id, under the reserved __ds route of the
// server's prefix; its actions (claim, ack, release, callback, streams) are below it.
func (s *Server) SubscriptionURL(id string) string {
	return s.URL + s.h.opts.Prefix + protocol.SubscriptionsRoute + url.PathEscape(id)
}

// InjectFault installs a fault; see [Handler.InjectFault].
func (s *Server) InjectFault(path string, f Fault) error { return s.h.InjectFault(path, f) }

// InjectWebhookFault installs a fault on webhook deliveries; see [Handler.InjectWebhookFault].
func (s *Server) InjectWebhookFault(id string, f Fault) error { return s.h.InjectWebhookFault(id, f) }

// ClearFaults removes every installed fault.
func (s *Server) ClearFaults() { s.h.ClearFaults() }

// Close ends live reads, stops accepting connections, waits up to 5 seconds for requests in
// progress, then closes every connection, and waits for the serving goroutine. It returns the
// error that stopped serving, if any other than the close itself. It may be called more than
// once.
func (s *Server) Close() error {
	s.closing.Do(func() {
		s.h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			s.srv.Close()
		}
		<-s.served
	})
	return s.err
}
