// Command subscriptions benchmarks the subscription worker (durablestreams.SubscriptionProducer)
// on many streams against the single-stream producer on one, on the in-process server
// (dsclient/dstest) and on the reference server (@durable-streams/server, in Node):
//
//   - throughput: 1,000 streams × 1,000 events (under the patterns of 6 subscriptions, so
//     that 2 and 3 workers can share them out) through 1, 2 and 3 workers, against one
//     stream of the same 1M events through the single-stream Producer; the same pipeline
//     in every run (4 processors, a batcher of 1000 / 50 ms), every message acknowledged
//     and checked exactly-once;
//   - failover: 3 workers on a backlog behind a slow sink; the worker holding the most claims
//     is SIGKILLed, and the gap is the time until another worker has claimed each of its
//     subscriptions;
//   - connections: the most TCP connections one worker has open at once, reading 100
//     streams and reading 1,000.
//
// Every worker, and the single-stream reader, is a child process of this binary (so that
// its connections are its own, counted by a counting dialer and cross-checked in
// /proc/<pid>/fd); the servers run in this process (dstest) or in Node.
//
//	cd bench && go run ./subscriptions -png results/subscriptions.png   # the full run
//	go run ./subscriptions -streams 100 -events 100 -rounds 1 -failover-rounds 1 -conn-events 50   # a smoke run
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "subscriptions: "+format+"\n", args...)
	os.Exit(2)
}

// Targets of issue 13.
const (
	targetRatio    = 0.7  // one worker on 1,000 streams, x the single-stream producer on one
	targetGapExtra = 1.0  // seconds over the lease
	targetConns    = 1.25 // peak connections at the most streams / at the fewest
)

// config is what the flags set.
type config struct {
	streams, events, subs int
	workers               []int
	rounds                int
	lease                 time.Duration
	failoverRounds        int
	failoverStreams       int
	failoverEvents        int
	sinkDelay             time.Duration
	killAfter             time.Duration
	connStreams           []int
	connEvents            int
	timeout               time.Duration
	profile               string
	perTurn, maxOpen      int
}

func main() {
	childMain() // a child process of the suite: runs and exits
	var (
		cfg     config
		workers = flag.String("workers", "1,2,3", "throughput: worker counts, comma-separated")
		servers = flag.String("servers", strings.Join(dsload.ServerNames, ","), "servers to run against: "+strings.Join(dsload.ServerNames, ","))
		parts   = flag.String("parts", "throughput,failover,conns", "parts to run: throughput, failover, conns")
		conns   = flag.String("conn-streams", "100,1000", "connections: stream counts, comma-separated (the first is the reference)")
		pngOut  = flag.String("png", "", "write PNG charts of the tables beside this path (results/subscriptions.png gives results/subscriptions-throughput.png, ...); default none")
	)
	flag.IntVar(&cfg.streams, "streams", 1000, "throughput: streams")
	flag.IntVar(&cfg.events, "events", 1000, "throughput: events per stream (the single stream holds streams × events)")
	flag.IntVar(&cfg.subs, "subs", 6, "throughput and connections: subscriptions the streams are shared out by")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of the throughput and connections parts; the order of the variants alternates")
	flag.DurationVar(&cfg.lease, "lease", 2*time.Second, "failover: the subscriptions' lease (1s to 10m)")
	flag.IntVar(&cfg.failoverRounds, "failover-rounds", 5, "failover: kills")
	flag.IntVar(&cfg.failoverStreams, "failover-streams", 30, "failover: streams (under 3 subscriptions)")
	flag.IntVar(&cfg.failoverEvents, "failover-events", 5000, "failover: events per stream")
	flag.DurationVar(&cfg.sinkDelay, "sink-delay", 200*time.Millisecond, "failover: the slow sink's sleep per batch")
	flag.DurationVar(&cfg.killAfter, "kill-after", 1500*time.Millisecond, "failover: how long after the start the busiest worker is killed")
	flag.IntVar(&cfg.connEvents, "conn-events", 200, "connections: events per stream")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "the longest one run may take")
	flag.IntVar(&cfg.perTurn, "per-turn", 0, "throughput and connections: the workers' MaxMessagesPerTurn (0: the default)")
	flag.IntVar(&cfg.maxOpen, "max-open", 0, "throughput and connections: the workers' MaxOpenStreams (0: the default)")
	flag.StringVar(&cfg.profile, "child-profile", "", "throughput: write a CPU profile of every child's run into this directory")
	flag.Parse()
	var err error
	if cfg.workers, err = parseInts(*workers); err != nil {
		fatalf("-workers: %v", err)
	}
	if cfg.connStreams, err = parseInts(*conns); err != nil {
		fatalf("-conn-streams: %v", err)
	}
	if cfg.streams <= 0 || cfg.events <= 0 || cfg.subs <= 0 || cfg.rounds <= 0 || cfg.failoverRounds <= 0 || cfg.failoverStreams < 3 ||
		cfg.failoverEvents <= 0 || cfg.connEvents <= 0 || cfg.lease < time.Second {
		fatalf("sizes and rounds must be > 0, -failover-streams >= 3, -lease >= 1s")
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		p = strings.TrimSpace(p)
		if p != "throughput" && p != "failover" && p != "conns" {
			fatalf("-parts: unknown part %q (known: throughput, failover, conns)", p)
		}
		want[p] = true
	}

	ctx := context.Background()
	machine := dsload.MachineInfo()
	fmt.Println(machine)
	var srvs []*dsload.Server
	for _, name := range strings.Split(*servers, ",") {
		srv, err := dsload.Start(ctx, strings.TrimSpace(name))
		if err != nil {
			fatalf("-servers: %v", err)
		}
		defer srv.Close()
		srvs = append(srvs, srv)
	}
	client, err := dsclient.NewClient(dsclient.WithHTTPClient(httpClient()))
	if err != nil {
		fatalf("%v", err)
	}
	var charts []chart.File
	if want["throughput"] {
		charts = append(charts, throughputPart(ctx, client, srvs, cfg, *pngOut, machine)...)
	}
	if want["failover"] {
		charts = append(charts, failoverPart(ctx, client, srvs, cfg, *pngOut, machine)...)
	}
	if want["conns"] {
		charts = append(charts, connsPart(ctx, client, srvs, cfg, *pngOut, machine)...)
	}
	if *pngOut != "" {
		if err := chart.Write(charts...); err != nil {
			fatalf("-png: %v", err)
		}
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func httpClient() *http.Client { return &http.Client{Transport: dsload.Transport()} }

func newTable() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// printTargets prints a part's target lines under one heading.
func printTargets(targets []string) {
	fmt.Println("targets (issue 13):")
	for _, t := range targets {
		fmt.Println("  " + t)
	}
}

func pass(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// thousands writes v rounded, with a thousands separator.
func thousands(v float64) string { return chart.FormatValue(float64(int64(v + 0.5))) }

// unique returns a name prefix no earlier run used.
func unique(kind string) string { return fmt.Sprintf("bench-%s-%d", kind, time.Now().UnixNano()) }

// throughputPart runs, per server and round, the single-stream producer over one stream of
// streams × events and a fleet of w workers over the same events in streams streams, for
// each w, in an order that rotates; it prints each variant's median rate, the median of its
// per-round ratio to the single-stream producer, the most connections one worker had open,
// and the target.
func throughputPart(ctx context.Context, client *dsclient.Client, srvs []*dsload.Server, cfg config, pngBase, machine string) []chart.File {
	n := int64(cfg.streams * cfg.events)
	variants := []string{"single"}
	for _, w := range cfg.workers {
		variants = append(variants, fmt.Sprintf("%d", w))
	}
	short := func(v string) string {
		switch v {
		case "single":
			return "single stream"
		case "1":
			return "1 worker"
		}
		return v + " workers"
	}
	label := func(v string) string {
		if v == "single" {
			return fmt.Sprintf("single-stream producer, 1 stream × %s", thousands(float64(n)))
		}
		w := "worker"
		if v != "1" {
			w = "workers"
		}
		return fmt.Sprintf("subscriptions, %s %s, %s streams × %s", v, w, thousands(float64(cfg.streams)), thousands(float64(cfg.events)))
	}
	fmt.Printf("\n== throughput: %s events, %d round(s); workers are child processes; %d subscriptions share the streams out; x single = median of the per-round ratios\n",
		thousands(float64(n)), cfg.rounds, cfg.subs)
	tw := newTable()
	fmt.Fprintln(tw, "server\tvariant\tmsg/s\tx single\tpeak conns/worker\tclaims\texactly-once\t")
	var targets []string
	var rateRows, ratioRows []chart.Row
	for _, srv := range srvs {
		single := srv.StreamURL(unique("single"))
		t0 := time.Now()
		if err := dsload.Fill(ctx, client.Stream(single), int(n), 10_000); err != nil {
			fatalf("fill %s: %v", srv.Name, err)
		}
		fmt.Fprintf(os.Stderr, "filled %s events on %s in %.1fs\n", thousands(float64(n)), srv.Name, time.Since(t0).Seconds())
		rates := make([][]float64, len(variants))
		ratios := make([][]float64, len(variants))
		peaks := make([][]int64, len(variants))
		claims := make([][]int64, len(variants))
		invalid := make([]string, len(variants))
		for r := range cfg.rounds {
			round := make([]float64, len(variants))
			for k := range variants {
				i := (k + r) % len(variants)
				var res result
				if variants[i] == "single" {
					res = runChildren([]childCfg{{Mode: "single", Stream: single, Name: "single", Profile: cfg.profile}}, n, cfg.timeout)
				} else {
					w, _ := strconv.Atoi(variants[i])
					l, err := makeLayout(ctx, client, srv, unique("tp"), cfg.subs, cfg.streams, cfg.events, 30*time.Second)
					if err != nil {
						fatalf("%s: %v", srv.Name, err)
					}
					var cfgs []childCfg
					for j := range w {
						cfgs = append(cfgs, childCfg{Mode: "worker", Root: l.root, Subs: l.ids(), Name: fmt.Sprintf("w%d", j+1), Profile: cfg.profile, PerTurn: cfg.perTurn, MaxOpen: cfg.maxOpen})
					}
					res = runChildren(cfgs, n, cfg.timeout)
					l.remove(ctx, client)
				}
				fmt.Fprintf(os.Stderr, "round %d %s %s: %s msg/s in %.2fs, peak %d conns %s\n", r+1, srv.Name, label(variants[i]),
					thousands(res.rate), res.elapsed.Seconds(), res.peak, res.invalid)
				if res.invalid != "" {
					invalid[i] = res.invalid
					continue
				}
				round[i] = res.rate
				rates[i] = append(rates[i], res.rate)
				peaks[i] = append(peaks[i], res.peak)
				claims[i] = append(claims[i], int64(res.claims))
			}
			for i := range variants {
				if round[i] > 0 && round[0] > 0 {
					ratios[i] = append(ratios[i], round[i]/round[0])
				}
			}
		}
		for i, v := range variants {
			ok := "ok"
			if invalid[i] != "" {
				ok = "INVALID: " + invalid[i]
			}
			ratio := dsload.Median(ratios[i])
			peak, cl := "-", "-"
			if v != "single" {
				peak, cl = strconv.FormatInt(dsload.Median(peaks[i]), 10), strconv.FormatInt(dsload.Median(claims[i]), 10)
			} else {
				peak = strconv.FormatInt(dsload.Median(peaks[i]), 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t\n", srv.Name, label(v), thousands(dsload.Median(rates[i])), ratio, peak, cl, ok)
			rateRows = append(rateRows, chart.Row{Label: srv.Name + ", " + short(v), Value: dsload.Median(rates[i]), Text: thousands(dsload.Median(rates[i])) + " msg/s", Highlight: v != "single"})
			if v != "single" {
				ratioRows = append(ratioRows, chart.Row{Label: srv.Name + ", " + short(v), Value: ratio, Text: fmt.Sprintf("%.2fx", ratio), Highlight: v == "1"})
			}
			if v == "1" {
				targets = append(targets, fmt.Sprintf("%s: one worker on %s streams at >= %.1fx the single-stream producer on one: %.2fx %s",
					srv.Name, thousands(float64(cfg.streams)), targetRatio, ratio, pass(ratio >= targetRatio && invalid[i] == "")))
			}
		}
	}
	tw.Flush()
	printTargets(targets)
	if pngBase == "" {
		return nil
	}
	return []chart.File{
		{Path: chart.PartPath(pngBase, "throughput"), Chart: chart.Chart{Title: fmt.Sprintf("%s events: %s streams vs 1 (%s)", thousands(float64(n)), thousands(float64(cfg.streams)), machine), Unit: "msg/s", Rows: rateRows}},
		{Path: chart.PartPath(pngBase, "ratio"), Chart: chart.Chart{Title: "Workers x single stream (" + machine + ")", Unit: "x single", Rows: ratioRows,
			Target: targetRatio, TargetLabel: fmt.Sprintf("target %.1fx (one worker)", targetRatio)}},
	}
}

// failoverPart kills, per server and round, the busiest of 3 workers on a backlog behind a
// slow sink and measures the gap until another worker has claimed each subscription it held.
func failoverPart(ctx context.Context, client *dsclient.Client, srvs []*dsload.Server, cfg config, pngBase, machine string) []chart.File {
	fmt.Printf("\n== failover: 3 workers, 3 subscriptions over %d streams × %s events, a sink sleeping %v per batch; the busiest worker SIGKILLed %v after the start; lease %v; %d round(s)\n",
		cfg.failoverStreams, thousands(float64(cfg.failoverEvents)), cfg.sinkDelay, cfg.killAfter, cfg.lease, cfg.failoverRounds)
	tw := newTable()
	fmt.Fprintln(tw, "server\tkills\tclaims taken over\tgap median s\tgap max s\tlease s\t")
	var targets []string
	var rows []chart.Row
	for _, srv := range srvs {
		var gaps []float64
		taken := 0
		var notes []string
		for r := range cfg.failoverRounds {
			gap, n, err := failoverRound(ctx, client, srv, cfg)
			if err != nil {
				notes = append(notes, fmt.Sprintf("round %d: %v", r+1, err))
				continue
			}
			fmt.Fprintf(os.Stderr, "failover %s round %d: %d claim(s) taken over, longest gap %.2fs\n", srv.Name, r+1, n, gap.Seconds())
			gaps = append(gaps, gap.Seconds())
			taken += n
		}
		var worst float64
		for _, g := range gaps {
			worst = max(worst, g)
		}
		med := dsload.Median(gaps)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.1f\t\n", srv.Name, len(gaps), taken, med, worst, cfg.lease.Seconds())
		for _, n := range notes {
			fmt.Fprintf(os.Stderr, "failover %s: %s\n", srv.Name, n)
		}
		limit := cfg.lease.Seconds() + targetGapExtra
		targets = append(targets, fmt.Sprintf("%s: gap after a SIGKILL <= lease + %.0fs (%.1fs): median %.2fs, worst %.2fs %s",
			srv.Name, targetGapExtra, limit, med, worst, pass(len(gaps) > 0 && med <= limit)))
		rows = append(rows, chart.Row{Label: srv.Name + " median", Value: med, Text: fmt.Sprintf("%.2f s", med), Highlight: true},
			chart.Row{Label: srv.Name + " worst", Value: worst, Text: fmt.Sprintf("%.2f s", worst)})
	}
	tw.Flush()
	printTargets(targets)
	if pngBase == "" {
		return nil
	}
	return []chart.File{{Path: chart.PartPath(pngBase, "failover"), Chart: chart.Chart{
		Title: fmt.Sprintf("Failover gap, lease %v (%s)", cfg.lease, machine), Unit: "seconds", Rows: rows,
		Target: cfg.lease.Seconds() + targetGapExtra, TargetLabel: fmt.Sprintf("target: lease + %.0f s", targetGapExtra)}}}
}

// failoverRound runs one kill: it returns the longest gap over the claims the killed worker
// held, and how many there were.
// claimWait bounds how long a failover round waits, past its kill time, for a first claim.
const claimWait = 30 * time.Second

func failoverRound(ctx context.Context, client *dsclient.Client, srv *dsload.Server, cfg config) (time.Duration, int, error) {
	l, err := makeLayout(ctx, client, srv, unique("fo"), 3, cfg.failoverStreams, cfg.failoverEvents, cfg.lease)
	if err != nil {
		return 0, 0, err
	}
	defer l.remove(ctx, client)
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
	for j := range 3 {
		c, err := startChild(childCfg{Mode: "worker", Root: l.root, Subs: l.ids(), Name: fmt.Sprintf("w%d", j+1), SinkDelay: cfg.sinkDelay})
		if err != nil {
			return 0, 0, err
		}
		cs = append(cs, c)
	}
	t0 := time.Now()
	for _, c := range cs {
		c.start()
	}
	time.Sleep(time.Until(t0.Add(cfg.killAfter))) // the scenario's timing: the fleet works a while
	busiest := func() *child {
		var victim *child
		most := 0
		for _, c := range cs {
			if h := len(c.held(time.Now())); h > most {
				victim, most = c, h
			}
		}
		return victim
	}
	// On a loaded machine (or under the race detector) the workers may not have won a claim
	// yet: wait for the first claim line rather than fail the round.
	victim := busiest()
	for deadline, i := time.Now().Add(claimWait), 0; victim == nil && time.Now().Before(deadline); i++ {
		cs[i%len(cs)].wait(50*time.Millisecond, func(c *child) bool { return len(c.heldLocked(time.Now())) > 0 })
		victim = busiest()
	}
	if victim == nil {
		return 0, 0, fmt.Errorf("no worker held a claim %v after the start (was the work done before the kill? make it longer)", cfg.killAfter+claimWait)
	}
	tKill := time.Now()
	victim.kill()
	held := victim.held(tKill)
	if len(held) == 0 {
		return 0, 0, fmt.Errorf("%s held no claim when killed", victim.name)
	}
	var longest time.Duration
	for _, sub := range held {
		var at time.Time
		ok := false
		deadline := time.Now().Add(5*cfg.lease + 30*time.Second)
		for !ok && time.Now().Before(deadline) {
			for _, c := range cs {
				if c == victim {
					continue
				}
				if t, won := c.wonAfter(sub, tKill); won && (!ok || t.Before(at)) {
					at, ok = t, true
				}
			}
			if !ok {
				time.Sleep(10 * time.Millisecond) // the children's lines arrive on their own
			}
		}
		if !ok {
			return 0, 0, fmt.Errorf("%s, held by %s, was not taken over", sub, victim.name)
		}
		longest = max(longest, at.Sub(tKill))
	}
	for _, c := range cs {
		if c != victim {
			c.stop(30 * time.Second)
		}
	}
	return longest, len(held), nil
}

// connsPart runs, per server and round, one worker over each number of streams and prints
// the most connections it had open at once.
func connsPart(ctx context.Context, client *dsclient.Client, srvs []*dsload.Server, cfg config, pngBase, machine string) []chart.File {
	fmt.Printf("\n== connections: one worker (a child process), %d subscriptions, %d events per stream, %d round(s); peak = the most TCP connections open at once (counting dialer; /proc/<pid>/fd sampled every 20 ms)\n",
		cfg.subs, cfg.connEvents, cfg.rounds)
	tw := newTable()
	fmt.Fprintln(tw, "server\tstreams\tpeak conns\tpeak sockets (/proc)\tx fewest\tmsg/s\texactly-once\t")
	var targets []string
	var rows []chart.Row
	for _, srv := range srvs {
		peaks := make([][]int64, len(cfg.connStreams))
		fds := make([][]int64, len(cfg.connStreams))
		rates := make([][]float64, len(cfg.connStreams))
		invalid := make([]string, len(cfg.connStreams))
		for r := range cfg.rounds {
			for k := range cfg.connStreams {
				i := (k + r) % len(cfg.connStreams)
				ns := cfg.connStreams[i]
				l, err := makeLayout(ctx, client, srv, unique("cn"), cfg.subs, ns, cfg.connEvents, 30*time.Second)
				if err != nil {
					fatalf("%s: %v", srv.Name, err)
				}
				res := runChildren([]childCfg{{Mode: "worker", Root: l.root, Subs: l.ids(), Name: "w1", PerTurn: cfg.perTurn, MaxOpen: cfg.maxOpen}}, int64(ns*cfg.connEvents), cfg.timeout)
				l.remove(ctx, client)
				if res.invalid != "" {
					invalid[i] = res.invalid
					continue
				}
				peaks[i] = append(peaks[i], res.peak)
				fds[i] = append(fds[i], int64(res.fdPeak))
				rates[i] = append(rates[i], res.rate)
			}
		}
		base := float64(dsload.Median(peaks[0]))
		var ratio float64
		for i, ns := range cfg.connStreams {
			ok := "ok"
			if invalid[i] != "" {
				ok = "INVALID: " + invalid[i]
			}
			p := float64(dsload.Median(peaks[i]))
			x := 0.0
			if base > 0 {
				x = p / base
			}
			ratio = x
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2f\t%s\t%s\t\n", srv.Name, thousands(float64(ns)), int64(p), dsload.Median(fds[i]), x, thousands(dsload.Median(rates[i])), ok)
			rows = append(rows, chart.Row{Label: fmt.Sprintf("%s, %s streams", srv.Name, thousands(float64(ns))), Value: p, Text: fmt.Sprintf("%d", int64(p)), Highlight: true})
		}
		last := cfg.connStreams[len(cfg.connStreams)-1]
		targets = append(targets, fmt.Sprintf("%s: peak connections independent of the number of streams (%s streams / %s streams <= %.2f): %.2f %s",
			srv.Name, thousands(float64(last)), thousands(float64(cfg.connStreams[0])), targetConns, ratio, pass(ratio > 0 && ratio <= targetConns)))
	}
	tw.Flush()
	printTargets(targets)
	if pngBase == "" {
		return nil
	}
	return []chart.File{{Path: chart.PartPath(pngBase, "conns"), Chart: chart.Chart{
		Title: "Peak connections, 1 worker (" + machine + ")", Unit: "connections", Rows: rows}}}
}
