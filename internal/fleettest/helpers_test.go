package fleettest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/internal/fleettest"
)

// pgRequireEnv makes a missing PostgreSQL a test failure instead of a skip.
const pgRequireEnv = "SLUICE_REQUIRE_POSTGRES"

// pgTarget is where PostgreSQL listens, in the root namespace.
const pgTarget = "127.0.0.1:5432"

// requireNetns skips t, saying why, when network namespaces cannot be made here; with
// SLUICE_REQUIRE_NETNS=1 it fails t instead.
func requireNetns(t *testing.T) {
	t.Helper()
	if err := fleettest.Check(); err != nil {
		if os.Getenv(fleettest.RequireEnv) == "1" {
			t.Fatalf("the multi-host test cannot run (%s=1 requires it): %v", fleettest.RequireEnv, err)
		}
		t.Skipf("the multi-host test cannot run here: %v (set %s=1 to make this a failure)", err, fleettest.RequireEnv)
	}
}

// pgPool connects to the local PostgreSQL, skipping t when it is unreachable (failing it when
// SLUICE_REQUIRE_POSTGRES=1).
func pgPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	dsn := "postgres://postgres@" + pgTarget + "/test?sslmode=disable"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if os.Getenv(pgRequireEnv) == "1" {
			t.Fatalf("PostgreSQL at %s is required (%s=1): %v", pgTarget, pgRequireEnv, err)
		}
		t.Skipf("PostgreSQL at %s unreachable (%v); set %s=1 to make this a failure", pgTarget, err, pgRequireEnv)
	}
	t.Cleanup(pool.Close)
	return pool
}

// wevent is a worker's event, with the worker's name.
type wevent struct {
	W string
	fleettest.Event
}

// won reports whether e is a claim won.
func (e wevent) won() bool { return e.Kind == "claim" && e.Result == "won" }

// eventLog is every worker's events, in the order they were read, with a broadcast of every
// change.
type eventLog struct {
	mu      sync.Mutex
	evs     []wevent
	changed chan struct{}
}

func newEventLog() *eventLog { return &eventLog{changed: make(chan struct{})} }

func (l *eventLog) add(e wevent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

// waitFor waits until cond, evaluated on the events so far, holds, or timeout passes; it
// reports whether cond held.
func (l *eventLog) waitFor(timeout time.Duration, cond func(evs []wevent) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ok, ch := cond(l.evs), l.changed
		l.mu.Unlock()
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

// events returns a copy of the events so far.
func (l *eventLog) events() []wevent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wevent(nil), l.evs...)
}

// heldAt returns the subscriptions worker w held at time at, as its events say: those whose
// last claim event or end before at is a claim won. The result is sorted.
func heldAt(evs []wevent, w string, at time.Time) []string {
	last := map[string]wevent{}
	for _, e := range evs {
		if e.W != w || !e.T.Before(at) || !(e.won() || e.Kind == "end") {
			continue
		}
		if p, ok := last[e.Sub]; !ok || !e.T.Before(p.T) {
			last[e.Sub] = e
		}
	}
	var out []string
	for sub, e := range last {
		if e.won() {
			out = append(out, sub)
		}
	}
	sort.Strings(out)
	return out
}

// firstWin returns the first claim of sub won after at by a worker accepted by who, if any.
func firstWin(evs []wevent, sub string, at time.Time, who func(string) bool) (wevent, bool) {
	var best wevent
	found := false
	for _, e := range evs {
		if e.won() && e.Sub == sub && e.T.After(at) && who(e.W) && (!found || e.T.Before(best.T)) {
			best, found = e, true
		}
	}
	return best, found
}

// proc is a child process on a host: a worker, or a server.
type proc struct {
	name   string
	host   *fleettest.Host
	cmd    *exec.Cmd
	stderr string        // the file its standard error goes to
	exited chan struct{} // closed once it exited and its output is read
	err    error         // Wait's, once exited is closed
}

// start starts cmd as proc name and hands every line of its standard output to line (from
// a goroutine of its own). The process is killed when the test ends, if it still runs.
func start(t *testing.T, name string, host *fleettest.Host, cmd *exec.Cmd, line func(string)) *proc {
	t.Helper()
	p := &proc{name: name, host: host, cmd: cmd, exited: make(chan struct{}), stderr: filepath.Join(t.TempDir(), name+".stderr")}
	errf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s on %s: %v", name, host.Name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line(sc.Text())
		}
		io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		errf.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.exited
	})
	return p
}

// signal sends sig to the process unless it has exited.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(sig)
	}
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail returns the last lines of the process's standard error.
func (p *proc) tail(lines int) string {
	b, _ := os.ReadFile(p.stderr)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// childCommand returns the command that runs this test binary on host h as a child of kind
// ("worker", "refserver") with configuration cfg.
func childCommand(t *testing.T, h *fleettest.Host, kind string, cfg any) *exec.Cmd {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), fleettest.ChildEnv+"="+kind, fleettest.ConfigEnv+"="+string(js))
	return cmd
}

// firstLine waits for the first line a server process prints (its URL), or fails t.
func firstLine(t *testing.T, p *proc, lines <-chan string, timeout time.Duration) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-p.exited:
		t.Fatalf("%s exited before listening: %v\n%s", p.name, p.err, p.tail(20))
	case <-time.After(timeout):
		t.Fatalf("%s did not listen within %v\n%s", p.name, timeout, p.tail(20))
	}
	return ""
}

// ms formats d in seconds with two decimals.
func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
