package fleettest

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Forwarder accepts TCP connections on one address and relays each to a target address: it
// lets the hosts of a [Net] reach a service that listens on the root namespace's loopback
// only (PostgreSQL on 127.0.0.1:5432). Close stops it and closes every connection.
type Forwarder struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Forward listens on addr ("10.77.3.1:0" picks a free port) and relays every connection to
// target. It returns once listening; the relaying runs in goroutines Close waits for.
func Forward(addr, target string) (*Forwarder, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &Forwarder{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

// Addr returns the address the forwarder listens on, such as "10.77.3.1:40123".
func (f *Forwarder) Addr() string { return f.ln.Addr().String() }

func (f *Forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

// track records c, reporting false once the forwarder is closed.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

func (f *Forwarder) relay(c net.Conn) {
	defer f.wg.Done()
	defer f.untrack(c)
	defer c.Close()
	t, err := net.DialTimeout("tcp", f.target, 10*time.Second)
	if err != nil {
		return
	}
	if !f.track(t) {
		t.Close()
		return
	}
	defer f.untrack(t)
	defer t.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Half-close so that the other direction can finish; a full close follows.
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	<-done
}

// Close stops listening, closes every relayed connection and waits for the relays to end.
func (f *Forwarder) Close() error {
	err := f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
