package fleettest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-go/sluice/ack/pgstore"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/internal/fleettest"
	"github.com/sluice-go/sluice/internal/refserver"
)

func TestMain(m *testing.M) {
	fleettest.ChildMain() // a child process of the test: runs it and exits
	os.Exit(m.Run())
}

// The scenario's shape.
const (
	lease       = 2 * time.Second // every subscription's lease
	groups      = 4               // subscriptions, one pattern each
	perGroup    = 50              // streams per pattern: 200 in all
	initial     = 20              // events in each stream before the workers start
	perAppend   = 5               // events per append of the writers
	writers     = 4               // writer goroutines, each owning a quarter of the streams
	maxInFlight = 400             // each worker pipeline's MaxInFlight
	serverPort  = 4437
)

// TestFleetNetns is the multi-host proof of the subscription worker: a server on one host,
// three worker processes on three others, PostgreSQL shared through a forwarder; one worker
// killed, one stopped past its lease, one restarted; every event ends up in the table once.
func TestFleetNetns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the multi-host run takes half a minute (go test without -short runs it)")
	}
	requireNetns(t)
	pool := pgPool(t)
	t.Run("dstest", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "dstest-server")
		build := exec.Command("go", "build", "-o", bin, "github.com/sluice-go/sluice/dsclient/dstest/cmd/dstest-server")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build dstest-server: %v\n%s", err, out)
		}
		f := newFleet(t, pool, "dstest")
		f.startServer(f.net.Host("srv").Command(bin, "-addr", net.JoinHostPort(f.net.Host("srv").Addr, strconv.Itoa(serverPort)),
			"-long-poll-timeout", "1s", "-default-lease-ttl", lease.String(), "-min-lease-ttl", "1s", "-quiet"), false)
		f.run()
	})
	t.Run("refserver", func(t *testing.T) {
		if !refserver.Available() {
			if os.Getenv(refserver.RequireEnv) == "1" {
				t.Fatalf("node and npm are required (%s=1)", refserver.RequireEnv)
			}
			t.Skipf("node and npm are not installed; set %s=1 to make this a failure", refserver.RequireEnv)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := refserver.Install(ctx); err != nil { // in the root namespace: the hosts have no route out
			t.Fatal(err)
		}
		f := newFleet(t, pool, "refserver")
		srv := f.net.Host("srv")
		f.startServer(childCommand(t, srv, "refserver", fleettest.RefServerConfig{Host: srv.Addr, Port: serverPort, LongPoll: time.Second}), true)
		f.run()
	})
}

// fleet is one run of the scenario against one server.
type fleet struct {
	t      *testing.T
	label  string // the server's name, in every line the test prints
	net    *fleettest.Net
	fwd    *fleettest.Forwarder
	pool   *pgxpool.Pool
	id     string // the run's part of table, stream and subscription names
	root   string // the stream root URL
	client *dsclient.Client
	subs   []*dsclient.Subscription
	groups [][]*stream // the streams of each subscription's pattern
	rows   string      // the sink's table
	ck     string      // the checkpoint store's table
	audit  string      // every write to ck: by whom, when
	log    *eventLog

	mu    sync.Mutex
	procs map[string]*proc // by worker name
	order []string         // worker names in start order
}

// stream is one stream the writers append to; next is its number of events so far.
type stream struct {
	path   string // root-relative
	urlp   string // its URL's path, as in the rows' stream column
	tag    string // its last segment
	group  int
	handle *dsclient.Stream
	next   int64 // owned by its writer while writers run
}

// newFleet makes the hosts (srv, w1, w2, w3), the forwarder to PostgreSQL and the tables.
func newFleet(t *testing.T, pool *pgxpool.Pool, label string) *fleet {
	t.Helper()
	n, err := fleettest.NewNet("srv", "w1", "w2", "w3")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("removing the hosts: %v", err)
		}
	})
	fwd, err := fleettest.Forward(net.JoinHostPort(n.Gateway, "0"), pgTarget)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fwd.Close() })
	f := &fleet{t: t, label: label, net: n, fwd: fwd, pool: pool, id: "f" + strings.ReplaceAll(n.ID, "-", "_"),
		log: newEventLog(), procs: map[string]*proc{}}
	f.rows, f.ck, f.audit = "fleet_rows_"+f.id, "fleet_ck_"+f.id, "fleet_audit_"+f.id
	f.say("hosts: server %s (%s), workers %s (%s), %s (%s), %s (%s); PostgreSQL through %s; bridge %s",
		n.Hosts[0].NS, n.Hosts[0].Addr, n.Hosts[1].Name, n.Hosts[1].Addr, n.Hosts[2].Name, n.Hosts[2].Addr,
		n.Hosts[3].Name, n.Hosts[3].Addr, fwd.Addr(), n.Bridge)
	f.tables()
	return f
}

// say logs a line of what happened, prefixed so that scripts/fleet-netns.sh can show it.
func (f *fleet) say(format string, args ...any) {
	f.t.Helper()
	f.t.Logf("fleet[%s]: "+format, append([]any{f.label}, args...)...)
}

// exec runs SQL statements on the root namespace's pool, failing the test on error.
func (f *fleet) exec(sqls ...string) {
	f.t.Helper()
	for _, s := range sqls {
		if _, err := f.pool.Exec(context.Background(), s); err != nil {
			f.t.Fatalf("%s: %v", s, err)
		}
	}
}

// tables creates the sink's table (each row records which worker wrote it and when, by
// PostgreSQL's application_name and clock), the checkpoint store's table, and a trigger
// that records every checkpoint write the same way; they are dropped when the test ends.
func (f *fleet) tables() {
	f.t.Cleanup(func() {
		f.pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+f.rows+", "+f.ck+", "+f.audit)
		f.pool.Exec(context.Background(), "DROP FUNCTION IF EXISTS "+f.audit+"_fn()")
	})
	f.exec(`CREATE TABLE `+f.rows+` (
			stream text NOT NULL, position bigint NOT NULL, n bigint NOT NULL, s text NOT NULL,
			writer text NOT NULL DEFAULT current_setting('application_name'),
			written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
			PRIMARY KEY (stream, position))`,
		`CREATE TABLE `+f.audit+` (tbl text, op text, key text, source text, val text, writer text, at timestamptz)`)
	if _, err := pgstore.New(context.Background(), f.pool, pgstore.Options{Table: f.ck}); err != nil {
		f.t.Fatal(err)
	}
	f.exec(`CREATE FUNCTION `+f.audit+`_fn() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF TG_TABLE_NAME = '`+f.ck+`' THEN
				INSERT INTO `+f.audit+` VALUES (TG_TABLE_NAME, TG_OP, NEW.key, NEW.source, NEW."offset", current_setting('application_name'), clock_timestamp());
			ELSE
				INSERT INTO `+f.audit+` VALUES (TG_TABLE_NAME, TG_OP, OLD.stream, OLD.stream, OLD.position::text, current_setting('application_name'), clock_timestamp());
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER audit AFTER INSERT OR UPDATE ON `+f.ck+` FOR EACH ROW EXECUTE FUNCTION `+f.audit+`_fn()`,
		`CREATE TRIGGER audit AFTER UPDATE OR DELETE ON `+f.rows+` FOR EACH ROW EXECUTE FUNCTION `+f.audit+`_fn()`)
}

// startServer starts the server process and waits for its URL: the first line it prints,
// bare (dstest-server) or as {"url": ...} (the reference server's child).
func (f *fleet) startServer(cmd *exec.Cmd, jsonLine bool) {
	f.t.Helper()
	lines := make(chan string, 1)
	if jsonLine {
		stdin, err := cmd.StdinPipe() // kept open: closing it stops the server
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(func() { stdin.Close() })
	}
	p := start(f.t, "server", f.net.Host("srv"), cmd, func(l string) {
		select {
		case lines <- l:
		default:
		}
	})
	base := firstLine(f.t, p, lines, time.Minute)
	if jsonLine {
		var v struct{ URL string }
		if err := json.Unmarshal([]byte(base), &v); err != nil {
			f.t.Fatalf("server: %q: %v", base, err)
		}
		base = v.URL
	}
	f.root = strings.TrimRight(base, "/") + "/v1/stream/"
	retry := dsclient.DefaultRetryPolicy()
	retry.InitialDelay, retry.MaxDelay = 10*time.Millisecond, 200*time.Millisecond
	c, err := dsclient.NewClient(dsclient.WithRetry(retry))
	if err != nil {
		f.t.Fatal(err)
	}
	f.client = c
	f.say("server on host srv: %s", f.root)
}

// setup creates the wake stream, the subscriptions (each over one pattern) and the
// streams, each holding its first events.
func (f *fleet) setup(ctx context.Context) {
	f.t.Helper()
	jsonStream := dsclient.CreateOptions{ContentType: "application/json"}
	wake := f.id + "-wake"
	if _, err := f.client.Stream(f.root+wake).Create(ctx, jsonStream); err != nil {
		f.t.Fatal(err)
	}
	for g := range groups {
		s := f.client.Subscription(f.root, fmt.Sprintf("%s-s%d", f.id, g))
		if _, _, err := s.Create(ctx, dsclient.SubscriptionConfig{Pattern: fmt.Sprintf("%s/g%d/*", f.id, g), WakeStream: wake, LeaseTTL: lease}); err != nil {
			f.t.Fatal(err)
		}
		f.subs = append(f.subs, s)
		var group []*stream
		for i := range perGroup {
			tag := fmt.Sprintf("u%03d", i)
			path := fmt.Sprintf("%s/g%d/%s", f.id, g, tag)
			st := &stream{path: path, tag: tag, group: g, handle: s.Stream(path)}
			st.urlp = urlPath(st.handle.URL())
			if _, err := st.handle.Create(ctx, jsonStream); err != nil {
				f.t.Fatal(err)
			}
			if err := st.append(ctx, initial); err != nil {
				f.t.Fatal(err)
			}
			group = append(group, st)
		}
		f.groups = append(f.groups, group)
	}
}

func urlPath(u string) string {
	i := strings.Index(u, "://")
	j := strings.Index(u[i+3:], "/")
	return u[i+3+j:]
}

// append appends the next k events of the stream, numbered from its count so far.
func (s *stream) append(ctx context.Context, k int) error {
	batch := make([]fleettest.Record, k)
	for i := range batch {
		batch[i] = fleettest.Record{N: s.next + int64(i), S: s.tag}
	}
	if _, err := dsclient.AppendJSONBatch(ctx, s.handle, batch, dsclient.AppendOptions{}); err != nil {
		return fmt.Errorf("append to %s: %w", s.path, err)
	}
	s.next += int64(k)
	return nil
}

// write runs the writers until ctx ends: writer w owns every writers-th stream and appends
// perAppend events to each in turn, one append per tick. It returns a function that stops
// them and returns the first error.
func (f *fleet) write(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var all []*stream
	for _, g := range f.groups {
		all = append(all, g...)
	}
	tick := 25 * time.Millisecond
	if raceDetector {
		tick = 60 * time.Millisecond
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk := time.NewTicker(tick) // pacing: the writers append at a steady rate
			defer tk.Stop()
			for i := w; ; i += writers {
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
				// A stop between the append's request and its answer would leave the count
				// unknown: appends run on a context of their own.
				actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := all[i%len(all)].append(actx, perAppend)
				acancel()
				if err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	return func() error {
		cancel()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}

// startWorker starts a worker process called name on host h.
func (f *fleet) startWorker(name string, h *fleettest.Host) *proc {
	f.t.Helper()
	cfg := fleettest.WorkerConfig{
		Name: name, Root: f.root, DSN: "postgres://postgres@" + f.fwd.Addr() + "/test?sslmode=disable",
		Table: f.rows, Checkpoints: f.ck, Pipeline: "fleet", MaxInFlight: maxInFlight,
	}
	for _, s := range f.subs {
		cfg.Subscriptions = append(cfg.Subscriptions, s.ID())
	}
	p := start(f.t, name, h, childCommand(f.t, h, "worker", cfg), func(l string) {
		var e fleettest.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			f.t.Logf("%s: %s", name, l)
			return
		}
		f.log.add(wevent{W: name, Event: e})
	})
	f.mu.Lock()
	f.procs[name] = p
	f.order = append(f.order, name)
	f.mu.Unlock()
	return p
}

// restart starts a new worker on the host of p, which has exited, named after the host and
// how many workers it has run ("w1-2").
func (f *fleet) restart(p *proc) *proc {
	f.mu.Lock()
	k := 1
	for _, n := range f.order {
		if f.procs[n].host == p.host {
			k++
		}
	}
	f.mu.Unlock()
	return f.startWorker(fmt.Sprintf("%s-%d", p.host.Name, k), p.host)
}

// live returns the workers still running, in start order.
func (f *fleet) live() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*proc
	for _, n := range f.order {
		if p := f.procs[n]; p.running() {
			out = append(out, p)
		}
	}
	return out
}

// holder waits until a running worker other than those excluded holds a claim, and returns
// the one holding the most.
func (f *fleet) holder(timeout time.Duration, exclude ...string) *proc {
	f.t.Helper()
	var best *proc
	ok := f.log.waitFor(timeout, func(evs []wevent) bool {
		now, most := time.Now(), 0
		best = nil
		for _, p := range f.live() {
			if slices.Contains(exclude, p.name) {
				continue
			}
			if n := len(heldAt(evs, p.name, now)); n > most {
				best, most = p, n
			}
		}
		return best != nil
	})
	if !ok {
		f.t.Fatalf("no worker (other than %v) held a claim within %v", exclude, timeout)
	}
	return best
}

// count returns the rows in the sink's table.
func (f *fleet) count(ctx context.Context) int64 {
	var n int64
	if err := f.pool.QueryRow(ctx, "SELECT count(*) FROM "+f.rows).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// cursors watches every subscription's cursors until ctx ends, recording any that moves
// backwards (byte-wise, as the protocol orders offsets): a cursor never moves back, and an
// ack from a worker that lost its claim, were it applied, would move it back.
func (f *fleet) cursors(ctx context.Context) (stop func() []string) {
	ctx, cancel := context.WithCancel(ctx)
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := map[string]dsclient.Offset{}
		tk := time.NewTicker(100 * time.Millisecond) // sampling the server's state: there is no event to wait on
		defer tk.Stop()
		for {
			for _, s := range f.subs {
				info, err := s.Get(ctx)
				if err != nil {
					continue
				}
				for _, ls := range info.Streams {
					k := s.ID() + " " + ls.Path
					if old, ok := last[k]; ok && ls.AckedOffset < old && len(bad) < 10 {
						bad = append(bad, fmt.Sprintf("%s: cursor of %s moved back from %s to %s", s.ID(), ls.Path, old, ls.AckedOffset))
					}
					if ls.AckedOffset > last[k] {
						last[k] = ls.AckedOffset
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return func() []string {
		cancel()
		<-done
		return bad
	}
}

// caughtUp reports whether every stream of sub's group is linked and acked up to its tail,
// or describes the first that is not.
func (f *fleet) caughtUp(ctx context.Context, g int) (bool, string) {
	info, err := f.subs[g].Get(ctx)
	if err != nil {
		return false, err.Error()
	}
	if len(info.Streams) != perGroup {
		return false, fmt.Sprintf("%s links %d streams, want %d", f.subs[g].ID(), len(info.Streams), perGroup)
	}
	for _, ls := range info.Streams {
		h, err := f.subs[g].Stream(ls.Path).Head(ctx)
		if err != nil {
			return false, err.Error()
		}
		if ls.AckedOffset != h.NextOffset {
			return false, fmt.Sprintf("%s: %s acked at %s, tail %s", f.subs[g].ID(), ls.Path, ls.AckedOffset, h.NextOffset)
		}
	}
	return true, ""
}

// until polls cond (the database's or the server's state, which have no event to wait on)
// until it holds or timeout passes, failing the test then with cond's last word.
func (f *fleet) until(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			f.dump()
			f.t.Fatalf("%s: not reached within %v: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dump logs the end of every worker's standard error, for a failure's report.
func (f *fleet) dump() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.order {
		if tail := f.procs[n].tail(15); tail != "" {
			f.t.Logf("%s's last log lines:\n%s", n, tail)
		}
	}
}

// subName returns the short name of subscription id ("s2").
func (f *fleet) subName(id string) string { return strings.TrimPrefix(id, f.id+"-") }

// group returns the group of subscription id.
func (f *fleet) group(id string) int {
	g, _ := strconv.Atoi(strings.TrimPrefix(f.subName(id), "s"))
	return g
}

// run is the scenario; see TestFleetNetns.
func (f *fleet) run() {
	t := f.t
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	t0 := time.Now()
	f.setup(ctx)
	f.say("%d streams under %d patterns (%d subscriptions, lease %v), %d events each", groups*perGroup, groups, groups, lease, initial)
	stopCursors := f.cursors(ctx)
	stopWriters := f.write(ctx)
	writing := true
	defer func() {
		if writing {
			stopWriters()
		}
	}()
	for i, h := range f.net.Hosts[1:] {
		f.startWorker(fmt.Sprintf("w%d", i+1), h)
	}
	f.say("workers w1, w2, w3 started on their hosts; writers appending")
	f.until(ctx, time.Minute, "first rows", func() (bool, string) {
		n := f.count(ctx)
		return n >= groups*perGroup*initial/2, fmt.Sprintf("%d rows", n)
	})

	// SIGKILL the worker holding the most claims; its subscriptions are taken over once
	// their leases pass.
	var killed *proc
	var killedHeld []string
	var tKill time.Time
	for attempt := 0; attempt < 3 && len(killedHeld) == 0; attempt++ {
		if killed != nil { // its claims had all ended at the kill: restart it and try again
			f.restart(killed)
		}
		killed = f.holder(30 * time.Second)
		tKill = time.Now()
		killed.signal(syscall.SIGKILL)
		<-killed.exited // its output is read to the end
		killedHeld = heldAt(f.log.events(), killed.name, tKill)
	}
	if len(killedHeld) == 0 {
		t.Fatal("three workers killed, none of them held a claim when killed")
	}
	var gaps []string
	var maxGap time.Duration
	for _, sub := range killedHeld {
		var win wevent
		if !f.log.waitFor(4*lease+20*time.Second, func(evs []wevent) bool {
			var ok bool
			win, ok = firstWin(evs, sub, tKill, func(w string) bool { return w != killed.name })
			return ok
		}) {
			f.dump()
			t.Fatalf("%s, held by %s when it was killed, was not taken over within %v", f.subName(sub), killed.name, 4*lease+20*time.Second)
		}
		gap := win.T.Sub(tKill)
		maxGap = max(maxGap, gap)
		gaps = append(gaps, fmt.Sprintf("%s by %s after %s", f.subName(sub), win.W, secs(gap)))
	}
	// The lease runs from the last heartbeat, sent every third of it, so a gap is a little
	// under the lease, plus the time the next worker takes to claim.
	f.say("killed %s (SIGKILL) holding %d claim(s); taken over: %s; longest gap %s (lease %v)",
		killed.name, len(killedHeld), strings.Join(gaps, ", "), secs(maxGap), lease)

	// Restart the killed worker on its host.
	restarted := f.restart(killed)
	f.say("restarted %s as %s on host %s", killed.name, restarted.name, killed.host.Name)

	// SIGSTOP another worker holding a claim, past its lease; then SIGCONT it. First the
	// fleet runs for a lease, so that the claims taken over are being worked on.
	var stopped *proc
	for attempt := 0; ; attempt++ {
		time.Sleep(lease)
		var fenced int
		stopped, fenced = f.stopPastLease(ctx, restarted.name)
		if fenced > 0 {
			break
		}
		if attempt == 2 {
			t.Fatal("three workers stopped past their lease, none of them had a claim fenced")
		}
		f.say("%s had no claim fenced (it held none when stopped, or their final acks were in flight); again", stopped.name)
	}

	// The writers go on until the restarted worker has won a claim (it has rejoined the
	// fleet), then stop; every event reaches the table.
	var first, ready wevent
	if f.log.waitFor(30*time.Second, func(evs []wevent) bool {
		for _, e := range evs {
			if e.W == restarted.name && e.Kind == "ready" {
				ready = e
			}
			if e.W == restarted.name && e.won() {
				first = e
				return true
			}
		}
		return false
	}) {
		f.say("%s won its first claim %s after it started", restarted.name, secs(first.T.Sub(ready.T)))
	} else {
		f.say("%s won no claim in the 30s after %s was continued", restarted.name, stopped.name)
	}
	if err := stopWriters(); err != nil {
		t.Fatal(err)
	}
	writing = false
	var total int64
	want := map[string]int64{}
	for _, g := range f.groups {
		for _, s := range g {
			total += s.next
			want[s.urlp] = s.next
		}
	}
	tWritten := time.Now()
	f.until(ctx, 90*time.Second, "every event in the table", func() (bool, string) {
		n := f.count(ctx)
		return n >= total, fmt.Sprintf("%d rows of %d", n, total)
	})
	rowsIn := time.Since(tWritten)
	f.until(ctx, 60*time.Second, "cursors at the tails", func() (bool, string) {
		for g := range groups {
			if ok, why := f.caughtUp(ctx, g); !ok {
				return false, why
			}
		}
		return true, ""
	})
	f.say("%d events appended to %d streams; all in the table %s and every cursor at its stream's tail %s after the writers stopped",
		total, groups*perGroup, secs(rowsIn), secs(time.Since(tWritten)))
	if bad := stopCursors(); len(bad) > 0 {
		t.Errorf("cursors moved backwards: %v", bad)
	}

	// Drain every worker (SIGTERM) and read its summary.
	for _, p := range f.live() {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range f.live() {
		select {
		case <-p.exited:
		case <-time.After(40 * time.Second):
			t.Errorf("%s did not drain within 40s after SIGTERM", p.name)
		}
	}
	f.summary()
	f.checkRows(ctx, total, want)
	f.say("the whole run took %s", secs(time.Since(t0)))
}

// stopPastLease stops (SIGSTOP) the running worker, other than exclude, holding the most
// claims, until another worker has taken over every claim it held and at least a lease and
// a half has passed; then continues it (SIGCONT), waits until the claims it held end, and
// checks the fence (checkFence). It returns the worker and how many of the claims it held
// when stopped ended fenced or expired.
func (f *fleet) stopPastLease(ctx context.Context, exclude string) (*proc, int) {
	t := f.t
	stopped := f.holder(30*time.Second, exclude)
	tStop := time.Now()
	stopped.signal(syscall.SIGSTOP)
	heldSoFar := heldAt(f.log.events(), stopped.name, tStop)
	if !f.log.waitFor(4*lease+20*time.Second, func(evs []wevent) bool {
		for _, sub := range heldSoFar {
			if _, ok := firstWin(evs, sub, tStop, func(w string) bool { return w != stopped.name }); !ok {
				return false
			}
		}
		return true
	}) {
		stopped.signal(syscall.SIGCONT)
		f.dump()
		t.Fatalf("the claims of %s (%v) were not taken over while it was stopped", stopped.name, heldSoFar)
	}
	if wait := time.Until(tStop.Add(lease + lease/2)); wait > 0 {
		time.Sleep(wait) // keep it stopped past its lease even if nothing was taken over yet
	}
	tCont := time.Now()
	stopped.signal(syscall.SIGCONT)
	// Its events from before the stop are all written by now; its claims end.
	var stoppedHeld []string
	if !f.log.waitFor(2*lease+20*time.Second, func(evs []wevent) bool {
		stoppedHeld = heldAt(evs, stopped.name, tStop)
		for _, sub := range stoppedHeld {
			ended := false
			for _, e := range evs {
				if e.W == stopped.name && e.Kind == "end" && e.Sub == sub && e.T.After(tStop) {
					ended = true
				}
			}
			if !ended {
				return false
			}
		}
		return true
	}) {
		f.dump()
		t.Fatalf("the claims %s held when stopped (%v) did not end after SIGCONT", stopped.name, stoppedHeld)
	}
	if len(stoppedHeld) == 0 {
		return stopped, 0
	}
	return stopped, f.checkFence(ctx, stopped, tStop, tCont, stoppedHeld)
}

// checkFence checks, from the database, that worker p — stopped at tStop past its lease
// and continued at tCont, holding the claims held — moved no checkpoint of those claims'
// streams after it was continued and before it won them again, and wrote no more rows of
// them than it can have had in flight. It returns how many of those claims ended fenced or
// expired (a claim whose final ack or release was in flight at the stop may have ended
// done, released or failed instead: the server decided on its own clock).
func (f *fleet) checkFence(ctx context.Context, p *proc, tStop, tCont time.Time, held []string) (fenced int) {
	t := f.t
	evs := f.log.events()
	var lines []string
	for _, sub := range held {
		// The claim held at the stop is the last one won before it; its end has its
		// generation.
		var won, end wevent
		for _, e := range evs {
			if e.W == p.name && e.won() && e.Sub == sub && e.T.Before(tStop) {
				won = e
			}
		}
		for _, e := range evs {
			if e.W == p.name && e.Kind == "end" && e.Sub == sub && e.Gen == won.Gen && end.T.IsZero() {
				end = e
			}
		}
		switch end.Result {
		case "fenced", "expired":
			fenced++
		case "done", "released", "failed":
			// Its final ack or release was in flight at the stop: the server took it (or
			// refused it) on its own clock; not a fenced claim, and no violation.
		default:
			var hist []string
			for _, e := range evs {
				if e.Sub == sub && (e.won() || e.Kind == "end") && e.T.After(tStop.Add(-2*lease)) {
					hist = append(hist, fmt.Sprintf("%+.2fs %s %s %s gen %d", e.T.Sub(tStop).Seconds(), e.W, e.Kind, e.Result, e.Gen))
				}
			}
			t.Errorf("%s's claim of %s (generation %d) has no end (%q); the claims of %s around the stop: %s",
				p.name, f.subName(sub), won.Gen, end.Result, f.subName(sub), strings.Join(hist, "; "))
		}
		taken, ok := firstWin(evs, sub, tStop, func(w string) bool { return w != p.name })
		takenBy := "nobody yet"
		if ok {
			takenBy = fmt.Sprintf("%s after %s", taken.W, secs(taken.T.Sub(tStop)))
		}
		// The window in which p must not move the claim's checkpoints: from SIGCONT (while
		// stopped it can do nothing) to its next claim of the subscription, if any.
		until := time.Now().Add(time.Hour)
		if again, ok := firstWin(evs, sub, tCont, func(w string) bool { return w == p.name }); ok {
			until = again.T
		}
		prefix := "%/" + f.id + "/g" + strconv.Itoa(f.group(sub)) + "/%"
		var saves, rows int64
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM `+f.audit+` WHERE tbl = $1 AND writer = $2 AND source LIKE $3 AND at >= $4 AND at < $5`,
			f.ck, p.name, prefix, tCont, until).Scan(&saves); err != nil {
			t.Fatal(err)
		}
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM `+f.rows+` WHERE writer = $1 AND stream LIKE $2 AND written_at >= $3 AND written_at < $4`,
			p.name, prefix, tCont, until).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if saves > 0 {
			var ex []string
			r, _ := f.pool.Query(ctx, `SELECT key, val, at FROM `+f.audit+` WHERE tbl = $1 AND writer = $2 AND source LIKE $3 AND at >= $4 AND at < $5 ORDER BY at LIMIT 3`,
				f.ck, p.name, prefix, tCont, until)
			for r.Next() {
				var k, v string
				var at time.Time
				r.Scan(&k, &v, &at)
				ex = append(ex, fmt.Sprintf("%s = %s at +%s", k, v, secs(at.Sub(tCont))))
			}
			r.Close()
			t.Errorf("%s saved %d checkpoints of %s's streams after SIGCONT, its claim lost: %v", p.name, saves, f.subName(sub), ex)
			f.dump()
		}
		if rows > maxInFlight {
			t.Errorf("%s wrote %d rows of %s's streams after SIGCONT: more than it can have had in flight (%d)", p.name, rows, f.subName(sub), maxInFlight)
		}
		msg := fmt.Sprintf("%s: taken by %s; %s's claim ended %s", f.subName(sub), takenBy, p.name, end.Result)
		if end.Err != "" {
			msg += " (" + end.Err + ")"
		}
		lines = append(lines, msg+fmt.Sprintf("; after SIGCONT it saved %d checkpoints of it and inserted %d rows of messages it had in flight (insert-if-absent)", saves, rows))
	}
	f.say("stopped %s (SIGSTOP) holding %d claim(s) for %s, past its lease; then SIGCONT: %s",
		p.name, len(held), secs(tCont.Sub(tStop)), strings.Join(lines, "; "))
	return fenced
}

// summary logs each worker's claims and messages, from its events.
func (f *fleet) summary() {
	evs := f.log.events()
	type sum struct {
		won, refused int
		ends         map[string]int
		msgs         int64 // of the claims that ended
		stats        int64 // of the final stats, if it drained
		drained      bool
		exit         string
	}
	sums := map[string]*sum{}
	for _, e := range evs {
		s := sums[e.W]
		if s == nil {
			s = &sum{ends: map[string]int{}, exit: "killed"}
			sums[e.W] = s
		}
		switch {
		case e.won():
			s.won++
		case e.Kind == "claim" && e.Result == "already_claimed":
			s.refused++
		case e.Kind == "end":
			s.ends[e.Result]++
			s.msgs += e.Messages
		case e.Kind == "stats" && e.Stats != nil:
			s.drained = true
			for _, ss := range e.Stats.Subscriptions {
				s.stats += int64(ss.Messages)
			}
		case e.Kind == "exit":
			s.exit = "drained"
			if e.Err != "" {
				s.exit = "failed: " + e.Err
				f.t.Errorf("%s: %s", e.W, e.Err)
			}
		}
	}
	for _, n := range f.order {
		s := sums[n]
		if s == nil {
			f.say("%s: no events", n)
			continue
		}
		var ends []string
		for r, k := range s.ends {
			ends = append(ends, fmt.Sprintf("%s %d", r, k))
		}
		sort.Strings(ends)
		if len(ends) == 0 {
			ends = []string{"none"}
		}
		msgs := fmt.Sprintf("messages %d", s.stats)
		if !s.drained {
			msgs = fmt.Sprintf("messages %d in the claims that ended", s.msgs)
		}
		f.say("%s: claims won %d, refused %d; ended: %s; %s; %s", n, s.won, s.refused, strings.Join(ends, ", "), msgs, s.exit)
	}
}

// checkRows checks that the table holds every appended event once, at its own sequence
// number, and that no row was ever updated or deleted.
func (f *fleet) checkRows(ctx context.Context, total int64, want map[string]int64) {
	t := f.t
	var rows, distinct, misplaced, mistagged, changed int64
	if err := f.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (stream, position)),
			count(*) FILTER (WHERE position <> n), count(*) FILTER (WHERE right(stream, length(s) + 1) <> '/' || s)
			FROM `+f.rows).Scan(&rows, &distinct, &misplaced, &mistagged); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM `+f.audit+` WHERE tbl = $1`, f.rows).Scan(&changed); err != nil {
		t.Fatal(err)
	}
	r, err := f.pool.Query(ctx, `SELECT stream, count(*), min(position), max(position) FROM `+f.rows+` GROUP BY stream`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][3]int64{}
	for r.Next() {
		var s string
		var c [3]int64
		if err := r.Scan(&s, &c[0], &c[1], &c[2]); err != nil {
			t.Fatal(err)
		}
		got[s] = c
	}
	r.Close()
	var bad []string
	for s, n := range want {
		if c := got[s]; c != [3]int64{n, 0, n - 1} && len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s: %d rows, positions %d..%d; want %d, 0..%d", s, c[0], c[1], c[2], n, n-1))
		}
	}
	if len(got) != len(want) {
		bad = append(bad, fmt.Sprintf("%d streams in the table, want %d", len(got), len(want)))
	}
	f.say("table: %d rows, %d distinct (stream, position), %d at a position other than their event's number, %d in another stream's place, %d updated or deleted; %d streams, each 0..n-1",
		rows, distinct, misplaced, mistagged, changed, len(got))
	if rows != total || distinct != total || misplaced != 0 || mistagged != 0 || changed != 0 || len(bad) > 0 {
		t.Errorf("want every one of the %d events once at its own number: %v", total, bad)
	}
	// The rows each worker wrote, for the record.
	r, err = f.pool.Query(ctx, `SELECT writer, count(*) FROM `+f.rows+` GROUP BY writer ORDER BY writer`)
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for r.Next() {
		var w string
		var c int64
		r.Scan(&w, &c)
		by = append(by, fmt.Sprintf("%s %d", w, c))
	}
	r.Close()
	f.say("rows by worker: %s", strings.Join(by, ", "))
}
