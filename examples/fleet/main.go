package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// Config is what the flags set.
type Config struct {
	Users, Subs, Workers int
	// Duration is how long the writer appends, at Rate events per second in all.
	Duration time.Duration
	Rate     int
	// Lease is every subscription's lease.
	Lease time.Duration
	// KillAfter is when the busiest worker is killed, from the start (or later, once a
	// worker holds a claim); 0: never.
	KillAfter time.Duration
	// Procs runs each worker in a process of its own.
	Procs bool
	// Progress is how often a progress line is printed; 0: never.
	Progress time.Duration
}

func main() {
	childMain() // a worker process (-procs): runs and exits
	cfg := Config{}
	flag.IntVar(&cfg.Users, "users", 100, "per-user streams")
	flag.IntVar(&cfg.Subs, "subs", 4, "subscriptions, each over the streams of a share of the users (users/<k>/*)")
	flag.IntVar(&cfg.Workers, "workers", 3, "workers")
	flag.DurationVar(&cfg.Duration, "duration", 8*time.Second, "how long the writer appends")
	flag.IntVar(&cfg.Rate, "rate", 2000, "events appended per second, spread over the users")
	flag.DurationVar(&cfg.Lease, "lease", 2*time.Second, "the subscriptions' lease (1s to 10m)")
	flag.DurationVar(&cfg.KillAfter, "kill-after", 3*time.Second, "kill the busiest worker this long after the start, once a worker holds a claim (0: never)")
	flag.BoolVar(&cfg.Procs, "procs", false, "run each worker in a process of its own (killed with SIGKILL) rather than in this one")
	flag.DurationVar(&cfg.Progress, "progress", time.Second, "how often to print a progress line (0: never)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, cfg, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Summary is what a run did.
type Summary struct {
	Users, Appended  int
	Rows, Deliveries int
	Misplaced        int // rows whose position is not their event's number
	Killed           string
	KilledHeld       []string
	Takeovers        map[string]time.Duration // subscription → time from the kill to its takeover
	AtTails          bool
	Workers          []WorkerSummary
	Elapsed          time.Duration
}

// WorkerSummary is one worker's part of a Summary.
type WorkerSummary struct {
	Name              string
	State             string
	Claims            int
	Ends              map[string]int
	Messages, Streams int
}

// worker is a running worker, in this process or another.
type worker struct {
	name string
	kill func()       // crash it
	stop func() error // drain it and return its error
}

func run(ctx context.Context, cfg Config, out io.Writer) (Summary, error) {
	var sum Summary
	out = &syncWriter{w: out} // the takeover lines come from goroutines of their own
	if cfg.Users <= 0 || cfg.Subs <= 0 || cfg.Workers <= 0 || cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Lease < time.Second || cfg.KillAfter < 0 {
		return sum, errors.New("-users, -subs, -workers, -rate and -duration must be > 0, -lease >= 1s, -kill-after >= 0")
	}
	t0 := time.Now()
	srv, err := dstest.NewServer(dstest.Options{LongPollTimeout: time.Second})
	if err != nil {
		return sum, err
	}
	defer srv.Close()
	root := srv.StreamURL("")

	// The application's part, once: the wake stream, the subscriptions (one per share of
	// the users) and a stream per user.
	jsonStream := dsclient.CreateOptions{ContentType: "application/json"}
	client, err := dsclient.NewClient()
	if err != nil {
		return sum, err
	}
	if _, err := client.Stream(root+"wake/fleet").Create(ctx, jsonStream); err != nil {
		return sum, err
	}
	var subs []*dsclient.Subscription
	var ids []string
	for k := range cfg.Subs {
		s := client.Subscription(root, fmt.Sprintf("users-%d", k))
		if _, _, err := s.Create(ctx, dsclient.SubscriptionConfig{
			Pattern: fmt.Sprintf("users/%d/*", k), WakeStream: "wake/fleet", LeaseTTL: cfg.Lease,
		}); err != nil {
			return sum, err
		}
		subs, ids = append(subs, s), append(ids, s.ID())
	}
	users := make([]*dsclient.Stream, cfg.Users)
	for u := range users {
		users[u] = client.Stream(fmt.Sprintf("%susers/%d/u%03d", root, u%cfg.Subs, u))
		if _, err := users[u].Create(ctx, jsonStream); err != nil {
			return sum, err
		}
	}
	where := "in this process"
	if cfg.Procs {
		where = "each in a process of its own"
	}
	fmt.Fprintf(out, "fleet: %d user streams under %d subscriptions (lease %v), %d workers %s; appending %d events/s for %v\n",
		cfg.Users, cfg.Subs, cfg.Lease, cfg.Workers, where, cfg.Rate, cfg.Duration)

	// The workers.
	t := newTally()
	var workers []*worker
	defer func() {
		for _, w := range workers { // after a failure: nothing is left running
			w.kill()
			w.stop()
		}
	}()
	var dir string
	if cfg.Procs {
		if dir, err = os.MkdirTemp("", "sluice-fleet-checkpoints-"); err != nil {
			return sum, err
		}
		defer os.RemoveAll(dir)
	}
	store := new(ack.MemoryStore) // shared by the workers of this process
	for i := range cfg.Workers {
		wc := workerConfig{Name: fmt.Sprintf("w%d", i+1), Root: root, Subs: ids, Checkpoints: dir}
		t.setState(wc.Name, "running")
		var w *worker
		if cfg.Procs {
			w, err = startProcess(wc, t)
		} else {
			w = startInProcess(ctx, wc, store, t)
		}
		if err != nil {
			return sum, err
		}
		workers = append(workers, w)
	}

	// The writer: events spread over the users, each user's numbered 0, 1, 2, ….
	next := make([]int64, cfg.Users)
	var appended atomic.Int64
	writeErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick := max(1, cfg.Rate/100)
		end := time.Now().Add(cfg.Duration)
		for u := 0; time.Now().Before(end); {
			select {
			case <-ctx.Done():
				writeErr <- ctx.Err()
				return
			case <-tick.C:
			}
			for range perTick {
				i := u % cfg.Users
				ev := Event{User: fmt.Sprintf("u%03d", i), N: next[i], Amount: next[i]%100 + 1}
				if _, err := users[i].AppendJSON(ctx, ev, dsclient.AppendOptions{}); err != nil {
					writeErr <- err
					return
				}
				next[i]++
				appended.Add(1)
				u++
			}
		}
		writeErr <- nil
	}()

	// Progress, the kill and the takeovers, until the writer is done.
	var progress <-chan time.Time
	if cfg.Progress > 0 {
		tk := time.NewTicker(cfg.Progress)
		defer tk.Stop()
		progress = tk.C
	}
	var killAt <-chan time.Time
	if cfg.KillAfter > 0 {
		killAt = time.After(cfg.KillAfter)
	}
	var killedAt time.Time
	var killDue bool            // KillAfter has passed: kill once a worker holds a claim
	var changed <-chan struct{} // while the kill waits for a claim: the tally's next change
	takeovers := make(chan string, cfg.Subs)
	sum.Takeovers = map[string]time.Duration{}
	for writing := true; writing; {
		select {
		case err := <-writeErr:
			if err != nil {
				return sum, fmt.Errorf("writer: %w", err)
			}
			writing = false
		case <-progress:
			printProgress(out, t0, appended.Load(), t)
		case <-killAt:
			killAt, killDue = nil, true
		case <-changed:
		}
		if killDue {
			victim, held, next := t.busiest()
			if held == 0 {
				changed = next // no claim held yet: look again at the next change
				continue
			}
			killDue, changed = false, nil
			sum.Killed = victim
			killedAt = time.Now()
			for _, w := range workers {
				if w.name == sum.Killed {
					w.kill() // for a process, returns once all it wrote is read
				}
			}
			sum.KilledHeld = t.kill(sum.Killed, killedAt)
			how := "its network cut and its work in flight lost, as a crashed host's"
			if cfg.Procs {
				how = "SIGKILL"
			}
			fmt.Fprintf(out, "%6.1fs  killed %s (%s); it held %s\n", time.Since(t0).Seconds(), sum.Killed, how, list(sum.KilledHeld))
			for _, sub := range sum.KilledHeld {
				go func() {
					if t.wait(10*cfg.Lease+30*time.Second, func(t *tally) bool { _, ok := t.takenOverLocked(sub, sum.Killed, killedAt); return ok }) {
						w, _ := t.takenOver(sub, sum.Killed, killedAt)
						fmt.Fprintf(out, "%6.1fs  %s taken over by %s, %.1fs after the kill\n", time.Since(t0).Seconds(), sub, w.worker, w.at.Sub(killedAt).Seconds())
					}
					takeovers <- sub
				}()
			}
		}
	}
	sum.Users, sum.Appended = cfg.Users, int(appended.Load())

	// Every event reaches the sink, every cursor the tail of its stream.
	if !t.wait(10*cfg.Lease+30*time.Second, func(t *tally) bool { return len(t.rows) >= sum.Appended }) {
		printProgress(out, t0, appended.Load(), t)
		return sum, fmt.Errorf("only %d of %d events reached the sink", len(t.rows), sum.Appended)
	}
	for range sum.KilledHeld {
		<-takeovers
	}
	for d := time.Now().Add(10 * time.Second); time.Now().Before(d); time.Sleep(50 * time.Millisecond) {
		if sum.AtTails = atTails(ctx, subs); sum.AtTails {
			break
		}
	}
	printProgress(out, t0, appended.Load(), t)

	// Drain the workers.
	for _, w := range workers {
		err := w.stop()
		state := "drained"
		if w.name == sum.Killed {
			state = "killed"
		} else if err != nil {
			state = "failed: " + err.Error()
		}
		t.setState(w.name, state)
	}
	workers = nil
	sum.Elapsed = time.Since(t0)

	t.mu.Lock()
	sum.Rows, sum.Deliveries, sum.Misplaced = len(t.rows), t.deliveries, len(t.misplaced)
	for _, sub := range sum.KilledHeld {
		for _, w := range t.wins {
			if w.sub == sub && w.worker != sum.Killed && w.at.After(killedAt) {
				sum.Takeovers[sub] = w.at.Sub(killedAt)
				break
			}
		}
	}
	for _, n := range t.order {
		w := t.workers[n]
		sum.Workers = append(sum.Workers, WorkerSummary{Name: n, State: w.state, Claims: w.claims, Ends: w.ends, Messages: w.messages, Streams: len(w.streams)})
	}
	t.mu.Unlock()
	printSummary(out, sum)
	switch {
	case sum.Rows != sum.Appended:
		return sum, fmt.Errorf("%d rows for %d events", sum.Rows, sum.Appended)
	case sum.Misplaced != 0:
		return sum, fmt.Errorf("%d rows at a position other than their event's number", sum.Misplaced)
	case !sum.AtTails:
		return sum, errors.New("the subscriptions' cursors did not reach the streams' tails")
	}
	return sum, nil
}

// startInProcess starts a worker in this process. Its kill cuts its network and loses its
// work in flight; the server sees what it would see of a crashed host.
func startInProcess(ctx context.Context, wc workerConfig, store ack.CheckpointStore, t *tally) *worker {
	dead := new(atomic.Bool)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := runWorker(wctx, wc, store, t, dead)
		done <- err
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
			if dead.Load() {
				err = nil // its failures to release are those of a dead worker
			}
		})
		return err
	}
	return &worker{name: wc.Name, kill: func() { dead.Store(true) }, stop: stop}
}

// startProcess starts a worker process: this program again, with childEnv set. Its kill is
// SIGKILL.
func startProcess(wc workerConfig, t *tally) (*worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, _ := json.Marshal(wc)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan line, 1)
	go func() {
		exit := readLines(wc.Name, stdout, t)
		cmd.Wait()
		exited <- exit
	}()
	var once sync.Once
	var werr error
	wait := func() error {
		once.Do(func() {
			exit := <-exited
			if exit.Err != "" {
				werr = errors.New(exit.Err)
			}
		})
		return werr
	}
	return &worker{
		name: wc.Name,
		kill: func() {
			cmd.Process.Kill()
			wait()
		},
		stop: func() error {
			cmd.Process.Signal(syscall.SIGTERM) // it drains: acks and releases its claims
			return wait()
		},
	}, nil
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// atTails reports whether every stream of every subscription is acked up to its tail.
func atTails(ctx context.Context, subs []*dsclient.Subscription) bool {
	for _, s := range subs {
		info, err := s.Get(ctx)
		if err != nil {
			return false
		}
		for _, ls := range info.Streams {
			h, err := s.Stream(ls.Path).Head(ctx)
			if err != nil || h.NextOffset != ls.AckedOffset {
				return false
			}
		}
	}
	return true
}

// printProgress prints one line: events appended, rows in the sink, each worker's claims.
func printProgress(out io.Writer, t0 time.Time, appended int64, t *tally) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var held []string
	for _, n := range t.order {
		w := t.workers[n]
		var subs []string
		for s := range w.held {
			subs = append(subs, s)
		}
		sort.Strings(subs)
		mark := ""
		if w.state == "killed" {
			mark = " (killed)"
		}
		held = append(held, fmt.Sprintf("%s%s %s", n, mark, list(subs)))
	}
	fmt.Fprintf(out, "%6.1fs  appended %7d  rows %7d  holding: %s\n", time.Since(t0).Seconds(), appended, len(t.rows), strings.Join(held, "  "))
}

func list(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return "[" + strings.Join(s, " ") + "]"
}

// printSummary prints the table of workers and the checks.
func printSummary(out io.Writer, s Summary) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "worker\tstate\tclaims\tdone\treleased\tfenced\texpired\tfailed\tmessages\tstreams\t")
	for _, w := range s.Workers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", w.Name, w.State, w.Claims,
			w.Ends["done"], w.Ends["released"], w.Ends["fenced"], w.Ends["expired"], w.Ends["failed"], w.Messages, w.Streams)
	}
	tw.Flush()
	fmt.Fprintln(out)
	if s.Killed != "" {
		var gaps []string
		for _, sub := range s.KilledHeld {
			gaps = append(gaps, fmt.Sprintf("%s after %.1fs", sub, s.Takeovers[sub].Seconds()))
		}
		fmt.Fprintf(out, "killed:            %s, holding %s; taken over: %s\n", s.Killed, list(s.KilledHeld), strings.Join(gaps, ", "))
	}
	fmt.Fprintf(out, "events appended:   %d to %d user streams\n", s.Appended, s.Users)
	fmt.Fprintf(out, "rows in the sink:  %d, keyed by (stream, position); %d deliveries (%d delivered again after a takeover, inserted once)\n",
		s.Rows, s.Deliveries, s.Deliveries-s.Rows)
	fmt.Fprintf(out, "every message once: %s; every position its event's number: %s; cursors at the tails: %s\n",
		yes(s.Rows == s.Appended), yes(s.Misplaced == 0), yes(s.AtTails))
	fmt.Fprintf(out, "elapsed:           %.1fs\n", s.Elapsed.Seconds())
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}
