package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
)

// child is a running child process, as the parent sees it.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{} // closed once its output is read and it exited

	mu       sync.Mutex
	changed  chan struct{}
	ready    bool
	progress childLine // the last "p" or "done" line
	done     bool
	err      string
	claims   []childLine // "won" and "end" lines
	fdPeak   int         // the most sockets /proc/<pid>/fd showed
}

// startChild starts a child of this program with cfg and waits until it is ready.
func startChild(cfg childCfg) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, _ := json.Marshal(cfg)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: cfg.Name, cmd: cmd, stdin: stdin, exited: make(chan struct{}), changed: make(chan struct{})}
	go c.read(stdout)
	if !c.wait(time.Minute, func(c *child) bool { return c.ready || c.done }) || !c.ready {
		c.kill()
		return nil, fmt.Errorf("child %s did not start: %s", cfg.Name, c.err)
	}
	return c, nil
}

func (c *child) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l childLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // a line cut by a kill
		}
		c.mu.Lock()
		switch l.Kind {
		case "ready":
			c.ready = true
		case "p":
			c.progress = l
		case "done":
			c.progress, c.done = l, true
		case "won", "end":
			c.claims = append(c.claims, l)
		case "error":
			c.err, c.done = l.Err, true
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	io.Copy(io.Discard, r)
	c.cmd.Wait()
	c.mu.Lock()
	c.done = true
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	close(c.exited)
}

// wait blocks until cond holds (evaluated under the child's lock at every line) or the
// timeout passes, and reports whether it held.
func (c *child) wait(timeout time.Duration, cond func(*child) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, ch := cond(c), c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// start tells the child to go.
func (c *child) start() { io.WriteString(c.stdin, "go\n") }

// stop asks the child to drain (SIGTERM) and waits until it has exited.
func (c *child) stop(timeout time.Duration) error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("child %s did not drain within %v", c.name, timeout)
	}
	if c.err != "" {
		return errors.New(c.err)
	}
	return nil
}

// kill kills the child (SIGKILL) and waits until its output is read.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.exited
}

// sample records the sockets the child has open now (from /proc/<pid>/fd; Linux only: a
// no-op elsewhere).
func (c *child) sample() {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid))
	if err != nil {
		return
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid), e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	c.mu.Lock()
	c.fdPeak = max(c.fdPeak, n)
	c.mu.Unlock()
}

// snapshot returns the child's last progress line and its /proc peak.
func (c *child) snapshot() (childLine, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.progress, c.fdPeak
}

// held returns the subscriptions the child held at at, by its claim lines.
func (c *child) held(at time.Time) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.heldLocked(at)
}

// heldLocked is held with the child's lock held.
func (c *child) heldLocked(at time.Time) []string {
	last := map[string]childLine{}
	for _, l := range c.claims {
		if l.T < at.UnixNano() {
			last[l.Sub] = l
		}
	}
	var out []string
	for s, l := range last {
		if l.Kind == "won" {
			out = append(out, s)
		}
	}
	return out
}

// wonAfter returns when the child first won sub after at.
func (c *child) wonAfter(sub string, at time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.claims {
		if l.Kind == "won" && l.Sub == sub && l.T > at.UnixNano() {
			return time.Unix(0, l.T), true
		}
	}
	return time.Time{}, false
}

// result is one run: n messages through one or more children.
type result struct {
	rate    float64 // messages per second, from go to the last acknowledged batch
	elapsed time.Duration
	peak    int64 // the most connections one child had open at once (counting dialer)
	fdPeak  int   // the same, sampled from /proc/<pid>/fd
	claims  int   // claims won, over the children
	invalid string
}

// expected returns the n, sum and xor of the ids 0..n-1.
func expected(n int64) (int64, uint64) {
	var x uint64
	for id := range n {
		x ^= hash(id)
	}
	return n * (n - 1) / 2, x
}

// runChildren starts the children, tells them to go at once, waits until they have
// acknowledged n messages in all (workers) or ended (single), stops them, and checks
// exactly-once: the count, the sum and the xor of the ids' hashes over all children.
func runChildren(cfgs []childCfg, n int64, timeout time.Duration) result {
	var cs []*child
	defer func() {
		for _, c := range cs {
			select {
			case <-c.exited:
			default:
				c.kill()
			}
		}
	}()
	for _, cfg := range cfgs {
		c, err := startChild(cfg)
		if err != nil {
			return result{invalid: err.Error()}
		}
		cs = append(cs, c)
	}
	t0 := time.Now()
	for _, c := range cs {
		c.start()
	}
	total := func() (sum int64) {
		for _, c := range cs {
			p, _ := c.snapshot()
			sum += p.N
		}
		return sum
	}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond) // samples the children's sockets meanwhile
	for total() < n && time.Now().Before(deadline) && !anyFailed(cs) {
		<-tick.C
		for _, c := range cs {
			c.sample()
		}
	}
	tick.Stop()
	var last int64
	for _, c := range cs {
		p, _ := c.snapshot()
		last = max(last, p.Last)
	}
	var res result
	for _, c := range cs {
		if err := c.stop(30 * time.Second); err != nil && res.invalid == "" {
			res.invalid = fmt.Sprintf("%s: %v", c.name, err)
		}
	}
	var gotN, gotSum int64
	var gotXor uint64
	for _, c := range cs {
		p, fd := c.snapshot()
		gotN, gotSum, gotXor = gotN+p.N, gotSum+p.Sum, gotXor^p.Xor
		res.peak, res.fdPeak = max(res.peak, p.Peak), max(res.fdPeak, fd)
		c.mu.Lock()
		for _, l := range c.claims {
			if l.Kind == "won" {
				res.claims++
			}
		}
		c.mu.Unlock()
	}
	res.elapsed = time.Unix(0, last).Sub(t0)
	if res.elapsed > 0 {
		res.rate = float64(n) / res.elapsed.Seconds()
	}
	wantSum, wantXor := expected(n)
	switch {
	case res.invalid != "":
	case gotN != n:
		res.invalid = fmt.Sprintf("%d messages acknowledged, want %d", gotN, n)
	case gotSum != wantSum || gotXor != wantXor:
		res.invalid = "the ids acknowledged are not 0..n-1 once each"
	}
	return res
}

func anyFailed(cs []*child) bool {
	for _, c := range cs {
		c.mu.Lock()
		failed := c.err != ""
		c.mu.Unlock()
		if failed {
			return true
		}
	}
	return false
}

// layout is a set of streams under the patterns of subscriptions, on one server.
type layout struct {
	root    string
	prefix  string
	subs    []*dsclient.Subscription
	streams []*dsclient.Stream
}

// makeLayout creates, on srv, a wake stream and nsubs subscriptions (prefix/<k>/*, lease
// lease), then nstreams streams under them, stream i holding the events of ids
// i*perStream .. (i+1)*perStream-1 in one append each. The subscriptions exist first, so
// that the streams are linked from their beginning.
func makeLayout(ctx context.Context, c *dsclient.Client, srv *dsload.Server, prefix string, nsubs, nstreams, perStream int, lease time.Duration) (*layout, error) {
	root := srv.StreamURL("")
	l := &layout{root: root, prefix: prefix}
	jsonStream := dsclient.CreateOptions{ContentType: "application/json"}
	if _, err := c.Stream(root+prefix+"-wake").Create(ctx, jsonStream); err != nil {
		return nil, err
	}
	for k := range nsubs {
		s := c.Subscription(root, fmt.Sprintf("%s-%d", prefix, k))
		if _, _, err := s.Create(ctx, dsclient.SubscriptionConfig{Pattern: fmt.Sprintf("%s/%d/*", prefix, k), WakeStream: prefix + "-wake", LeaseTTL: lease}); err != nil {
			return nil, err
		}
		l.subs = append(l.subs, s)
	}
	l.streams = make([]*dsclient.Stream, nstreams)
	for i := range l.streams {
		l.streams[i] = c.Stream(fmt.Sprintf("%s%s/%d/s%05d", root, prefix, i%nsubs, i))
	}
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]dsload.Event, perStream)
			for i := w; i < nstreams; i += 8 {
				if _, err := l.streams[i].Create(ctx, jsonStream); err != nil {
					errs <- err
					return
				}
				for j := range batch {
					batch[j] = dsload.NewEvent(int64(i*perStream + j))
				}
				if _, err := dsclient.AppendJSONBatch(ctx, l.streams[i], batch, dsclient.AppendOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return l, nil
}

// ids returns the subscriptions' ids.
func (l *layout) ids() []string {
	var out []string
	for _, s := range l.subs {
		out = append(out, s.ID())
	}
	return out
}

// remove deletes the subscriptions and the streams, so that the server's memory does not
// grow from round to round.
func (l *layout) remove(ctx context.Context, c *dsclient.Client) {
	for _, s := range l.subs {
		s.Delete(ctx)
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, s := range l.streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			s.Delete(ctx)
			<-sem
		}()
	}
	wg.Wait()
	c.Stream(l.root + l.prefix + "-wake").Delete(ctx)
}
