// Command pipeline benchmarks reading a Durable Streams stream into a Sluice pipeline, end to
// end, on the in-process server (dsclient/dstest) and on the reference server
// (@durable-streams/server, in Node through internal/refserver):
//
//   - catch-up throughput of a stream of ~100-byte JSON orders: a bare net/http reader, the
//     client alone (JSONItems) and the pipeline (Producer, 4 processors, a batcher of
//     1000 / 50 ms summing the amounts, every message acknowledged), side by side;
//   - peak RSS of a pipeline with a slow sink over streams of different lengths, each run in a
//     child process of this binary;
//   - live latency from an append's send time to the batch handler, in SSE and long-poll
//     modes;
//   - crash recovery: a child SIGKILLed at half of a 1M-event catch-up served as one
//     response, then a run from its checkpoint to the end: the redelivered messages.
//
// The throughput table also has a hand-written parallel reader (GOMAXPROCS decoders), the
// limit the pipeline is measured against, and takes the decoder as a variant (-decoders).
//
// Every run checks exactly-once delivery (each event once, the sum of the amounts exact); a
// run that fails the check is INVALID and left out of the medians.
//
//	cd bench && go run ./pipeline                        # the full run
//	go run ./pipeline -n 100000 -rounds 1 -rss-sizes 100000,500000 -appends 500   # a smoke run
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pipeline: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	var (
		sizes       = flag.String("n", "1000000", "throughput: stream sizes (events), comma-separated")
		rounds      = flag.Int("rounds", 5, "rounds of every measurement; the order of the variants alternates from round to round")
		servers     = flag.String("servers", strings.Join(dsload.ServerNames, ","), "servers to run against: "+strings.Join(dsload.ServerNames, ","))
		parts       = flag.String("parts", "throughput,rss,latency,crash", "parts to run: throughput, rss, latency, crash")
		decs        = flag.String("decoders", "std", "throughput: the decoders of the parallel reader and the pipeline, comma-separated (std is the producer's default decoding): "+strings.Join(decoders.Names(), ","))
		crashN      = flag.Int("crash-n", 1_000_000, "crash: events in the stream, served as one response")
		crashDec    = flag.String("crash-decoder", "std", "crash: the pipeline's decoder")
		crashIv     = flag.Duration("crash-interval", 0, "crash: the producer's CheckpointInterval (0: its default, 1s)")
		pngOut      = flag.String("png", "", "write PNG charts of the tables beside this path (results/pipeline.png gives results/pipeline-throughput-dstest.png, ...); default none")
		rssSizes    = flag.String("rss-sizes", "1000000,5000000", "memory: stream sizes (events), comma-separated; the ratio is last / first")
		rssLimit    = flag.Int64("rss-limit", 200_000, "memory: stop each run after the sink handled this many events")
		rssDelay    = flag.Duration("rss-delay", 20*time.Millisecond, "memory: the slow sink's sleep per batch of 1000")
		rssTimeout  = flag.Duration("rss-timeout", time.Minute, "memory: stop each run after this long (the reference server takes seconds to start a response of millions of events)")
		rssInFlight = flag.Int("rss-max-in-flight", 0, "memory: the pipeline's MaxInFlight (0: its default, 2512 here; the producer reads no more than it)")
		appends     = flag.Int("appends", 2000, "latency: appends (one event each) per run")
		rate        = flag.Float64("rate", 500, "latency: appends per second")
		childRSS    = flag.String("child-rss", "", "internal: run one memory run over this stream URL and report")
		childCrash  = flag.String("child-crash", "", "internal: run one crash child over this stream URL")
		childCfg    = flag.String("child-cfg", "", "internal: the JSON configuration of a -child-rss or -child-crash run")
		cpuprofile  = flag.String("cpuprofile", "", "throughput: write a CPU profile of the first pipeline run to this file")
	)
	flag.Parse()
	if *childRSS != "" {
		childMain(*childRSS, *childCfg)
		return
	}
	if *childCrash != "" {
		crashChildMain(*childCrash, *childCfg)
		return
	}
	ns, err := parseSizes(*sizes)
	if err != nil {
		fatalf("-n: %v", err)
	}
	rss, err := parseSizes(*rssSizes)
	if err != nil {
		fatalf("-rss-sizes: %v", err)
	}
	if *rounds <= 0 || *appends <= 0 || *rate <= 0 || *rssLimit <= 0 || *crashN < 2 {
		fatalf("-rounds, -appends, -rate and -rss-limit must be > 0, -crash-n >= 2")
	}
	decList, err := decoders.Parse(*decs)
	if err != nil {
		fatalf("-decoders: %v", err)
	}
	if _, err := decoders.Parse(*crashDec); err != nil {
		fatalf("-crash-decoder: %v", err)
	}
	want := map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		p = strings.TrimSpace(p)
		if p != "throughput" && p != "rss" && p != "latency" && p != "crash" {
			fatalf("-parts: unknown part %q (known: throughput, rss, latency, crash)", p)
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
	streams := &filled{urls: map[string]string{}}
	if want["throughput"] {
		profileFile = *cpuprofile
		throughputPart(ctx, srvs, streams, ns, *rounds, readersFor(decList), *pngOut, machine)
	}
	if want["rss"] {
		rssPart(ctx, srvs, streams, rss, *rounds, slowSink{Limit: *rssLimit, Delay: *rssDelay, Timeout: *rssTimeout, MaxInFlight: *rssInFlight}, *pngOut, machine)
	}
	if want["latency"] {
		latencyPart(ctx, srvs, *appends, *rate, *rounds, *pngOut, machine)
	}
	if want["crash"] {
		crashPart(ctx, srvs, streams, *crashN, *rounds, *crashDec, *crashIv, *pngOut, machine)
	}
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number of events", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// filled remembers the streams of events 0..n-1 already filled on each server, so that parts
// share them.
type filled struct{ urls map[string]string }

func (f *filled) get(ctx context.Context, srv *dsload.Server, n int) string {
	key := fmt.Sprintf("%s/%d", srv.Name, n)
	if u, ok := f.urls[key]; ok {
		return u
	}
	u := srv.StreamURL(fmt.Sprintf("bench-pipeline-%d-%d", n, time.Now().UnixNano()))
	start := time.Now()
	if err := dsload.Fill(ctx, dsclient.NewStream(u, dsclient.WithHTTPClient(httpClient())), n, 10_000); err != nil {
		fatalf("fill %s: %v", srv.Name, err)
	}
	fmt.Fprintf(os.Stderr, "filled %d events on %s in %.1fs\n", n, srv.Name, time.Since(start).Seconds())
	f.urls[key] = u
	return u
}

func newTable() *tabwriter.Writer {
	return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// throughputPart prints the catch-up table: for each server and size, each reader's median
// rate over the rounds, the median of its per-round ratio to the bare reader and, for a
// pipeline, to the parallel reader with the same decoder; then the targets of issue 15.
func throughputPart(ctx context.Context, srvs []*dsload.Server, streams *filled, ns []int, rounds int, rds []reader, pngBase, machine string) {
	fmt.Printf("\n== catch-up throughput, whole stream, %d round(s); x bare, x parallel = medians of the per-round ratios\n", rounds)
	tw := newTable()
	fmt.Fprintln(tw, "server\tevents\treader\tmsg/s\tx bare\tx parallel\texactly-once\t")
	var notes, targets []string
	var charts []chart.Chart
	var chartNames []string
	parallelOf := func(i int) int { // the parallel reader with pipeline i's decoder
		for k, rd := range rds {
			if rd.kind == "parallel" && rd.decoder == rds[i].decoder {
				return k
			}
		}
		return -1
	}
	for _, srv := range srvs {
		for _, n := range ns {
			u := streams.get(ctx, srv, n)
			rates := make([][]float64, len(rds))
			ratios := make([][]float64, len(rds))
			parRatios := make([][]float64, len(rds))
			invalid := make([]string, len(rds))
			for r := range rounds {
				round := make([]float64, len(rds))
				for k := range rds {
					i := (k + r) % len(rds)
					t := newTally(n)
					runtime.GC()
					stopProfile := maybeProfile(rds[i].kind == "pipeline")
					start := time.Now()
					err := rds[i].run(ctx, u, t)
					d := time.Since(start)
					stopProfile()
					if err == nil {
						err = t.verdict()
					}
					if err != nil {
						invalid[i] = err.Error()
						continue
					}
					round[i] = float64(n) / d.Seconds()
					rates[i] = append(rates[i], round[i])
				}
				for i := range rds {
					if round[i] > 0 && round[0] > 0 {
						ratios[i] = append(ratios[i], round[i]/round[0])
					}
					if p := parallelOf(i); rds[i].kind == "pipeline" && p >= 0 && round[i] > 0 && round[p] > 0 {
						parRatios[i] = append(parRatios[i], round[i]/round[p])
					}
				}
			}
			var rows []chart.Row
			for i, rd := range rds {
				check := "ok"
				if invalid[i] != "" {
					check = "INVALID"
					notes = append(notes, fmt.Sprintf("%s %d %s: %s", srv.Name, n, rd.name, invalid[i]))
				}
				xpar := "-"
				if rd.kind == "pipeline" {
					xpar = fmt.Sprintf("%.2fx", dsload.Median(parRatios[i]))
				}
				rate := dsload.Median(rates[i])
				fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%.2fx\t%s\t%s\t\n", srv.Name, n, rd.name, rate, dsload.Median(ratios[i]), xpar, check)
				rows = append(rows, chart.Row{Label: rd.name, Value: rate, Highlight: rd.kind == "pipeline",
					Text: fmt.Sprintf("%s  %.2fx bare", thousands(rate), dsload.Median(ratios[i]))})
				if rd.kind != "pipeline" {
					continue
				}
				xb, xp := dsload.Median(ratios[i]), dsload.Median(parRatios[i])
				ok := invalid[i] == ""
				if rd.decoder == "std" {
					targets = append(targets, fmt.Sprintf("target (%s, %d events): %s >= 1.6x the bare reader: %.2fx %s", srv.Name, n, rd.name, xb, passFail(ok && xb >= 1.6)))
				}
				targets = append(targets, fmt.Sprintf("target (%s, %d events): %s >= 0.85x %s: %.2fx %s", srv.Name, n, rd.name, rds[parallelOf(i)].name, xp, passFail(ok && xp >= 0.85)))
			}
			charts = append(charts, chart.Chart{
				Title: fmt.Sprintf("catch-up throughput, %s server, %d events (median of %d rounds)\n%s", srv.Name, n, rounds, machine),
				Unit:  "msg/s", Rows: rows, Target: 1.6 * dsload.Median(rates[0]), TargetLabel: "target: pipeline (std) >= 1.6x bare",
			})
			name := "throughput-" + srv.Name
			if len(ns) > 1 {
				name += "-" + strconv.Itoa(n)
			}
			chartNames = append(chartNames, name)
		}
	}
	tw.Flush()
	for _, s := range notes {
		fmt.Println("  INVALID:", s)
	}
	for _, s := range targets {
		fmt.Println(s)
	}
	fmt.Println("(the targets are for the in-process server; the reference server is the bottleneck of its reads)")
	writeCharts(pngBase, chartNames, charts)
}

// writeCharts writes each chart beside the -png base path (nothing if it is empty).
func writeCharts(base string, names []string, charts []chart.Chart) {
	if base == "" {
		return
	}
	var files []chart.File
	for i, c := range charts {
		files = append(files, chart.File{Path: chart.PartPath(base, names[i]), Chart: c})
	}
	if err := chart.Write(files...); err != nil {
		fatalf("-png: %v", err)
	}
	for _, f := range files {
		fmt.Println("chart:", f.Path)
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// rssPart prints the memory table: for each server, the median peak RSS of the slow-sink child
// over each stream size, and the ratio of the last size's to the first's.
func rssPart(ctx context.Context, srvs []*dsload.Server, streams *filled, sizes []int, rounds int, cfg slowSink, pngBase, machine string) {
	inFlight := "default"
	if cfg.MaxInFlight > 0 {
		inFlight = strconv.Itoa(cfg.MaxInFlight)
	}
	fmt.Printf("\n== peak RSS, slow sink (%v per batch of 1000, stopped after %d events or %v), %s MaxInFlight, child processes, %d round(s)\n",
		cfg.Delay, cfg.Limit, cfg.Timeout, inFlight, rounds)
	fmt.Println("peak RSS = the child's VmHWM; ru_maxrss = getrusage of the child, which on Linux is at least the parent's peak at the spawn (vfork + exec)")
	if idle, err := spawnSlowSink("idle", cfg); err == nil {
		fmt.Printf("the same binary doing nothing: peak RSS %s MiB, ru_maxrss %s MiB (this process's peak now: %s MiB)\n", mib(idle.HWMKiB), mib(idle.MaxRSSKiB), mib(vmHWM()))
	}
	tw := newTable()
	fmt.Fprintln(tw, "server\tevents in stream\tfirst batch s\thandled\tmax pending\tpeak RSS MiB\tx first size\tru_maxrss MiB\texactly-once\t")
	var notes []string
	var rows []chart.Row
	for _, srv := range srvs {
		urls := make([]string, len(sizes))
		for i, n := range sizes {
			urls[i] = streams.get(ctx, srv, n)
		}
		rssKiB := make([][]int64, len(sizes))
		maxrss := make([][]int64, len(sizes))
		seen := make([][]int64, len(sizes))
		pend := make([][]int64, len(sizes))
		firsts := make([][]float64, len(sizes))
		invalid := make([]string, len(sizes))
		for r := range rounds {
			for k := range sizes {
				i := (k + r) % len(sizes)
				c := cfg
				c.N = sizes[i]
				res, err := spawnSlowSink(urls[i], c)
				if err == nil && res.Err != "" {
					err = fmt.Errorf("%s", res.Err)
				}
				if err != nil {
					invalid[i] = err.Error()
					continue
				}
				rssKiB[i] = append(rssKiB[i], res.HWMKiB)
				maxrss[i] = append(maxrss[i], res.MaxRSSKiB)
				seen[i] = append(seen[i], res.Seen)
				pend[i] = append(pend[i], int64(res.MaxPending))
				firsts[i] = append(firsts[i], time.Duration(res.FirstNS).Seconds())
			}
		}
		first := dsload.Median(rssKiB[0])
		for i, n := range sizes {
			check := "ok"
			if invalid[i] != "" {
				check = "INVALID"
				notes = append(notes, fmt.Sprintf("%s %d: %s", srv.Name, n, invalid[i]))
			}
			m := dsload.Median(rssKiB[i])
			ratio := "-"
			if first > 0 && m > 0 {
				ratio = fmt.Sprintf("%.2fx", float64(m)/float64(first))
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%d\t%d\t%s\t%s\t%s\t%s\t\n", srv.Name, n, dsload.Median(firsts[i]), dsload.Median(seen[i]), dsload.Median(pend[i]), mib(m), ratio, mib(dsload.Median(maxrss[i])), check)
			rows = append(rows, chart.Row{Label: fmt.Sprintf("%s, %s events", srv.Name, thousands(float64(n))), Value: float64(m) / 1024,
				Text: fmt.Sprintf("%s MiB  %s", mib(m), ratio), Highlight: true})
		}
	}
	tw.Flush()
	writeCharts(pngBase, []string{"rss"}, []chart.Chart{{
		Title: fmt.Sprintf("peak RSS of a pipeline with a slow sink, by stream length (median of %d rounds)\n%s", rounds, machine),
		Unit:  "MiB (VmHWM of the child)", Rows: rows,
	}})
	for _, s := range notes {
		fmt.Println("  INVALID:", s)
	}
	fmt.Println("target: peak RSS of the largest stream within 1.10x of the smallest's")
}

// latencyPart prints the live latency table: per server and live mode, the medians over the
// rounds of each run's p50 and p99.
func latencyPart(ctx context.Context, srvs []*dsload.Server, n int, rate float64, rounds int, pngBase, machine string) {
	fmt.Printf("\n== live latency, append (1 event per POST, %d at %.0f/s) -> batch handler (batch size 1), %d round(s)\n", n, rate, rounds)
	modes := []dsclient.LiveMode{dsclient.LiveSSE, dsclient.LiveLongPoll}
	tw := newTable()
	fmt.Fprintln(tw, "server\tmode\tp50 ms\tp99 ms\tmax ms\texactly-once\t")
	var notes []string
	var rows []chart.Row
	for _, srv := range srvs {
		p50 := make([][]float64, len(modes))
		p99 := make([][]float64, len(modes))
		pmax := make([][]float64, len(modes))
		invalid := make([]string, len(modes))
		for r := range rounds {
			for k := range modes {
				i := (k + r) % len(modes)
				u := srv.StreamURL(fmt.Sprintf("bench-live-%s-%d", modes[i], time.Now().UnixNano()))
				res, err := runLatency(ctx, u, modes[i], n, rate)
				if err != nil {
					invalid[i] = err.Error()
					continue
				}
				p50[i] = append(p50[i], ms(res.p(50)))
				p99[i] = append(p99[i], ms(res.p(99)))
				pmax[i] = append(pmax[i], ms(res.p(100)))
			}
		}
		for i, m := range modes {
			check := "ok"
			if invalid[i] != "" {
				check = "INVALID"
				notes = append(notes, fmt.Sprintf("%s %s: %s", srv.Name, m, invalid[i]))
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t\n", srv.Name, m, dsload.Median(p50[i]), dsload.Median(p99[i]), dsload.Median(pmax[i]), check)
			rows = append(rows,
				chart.Row{Label: fmt.Sprintf("%s %s p50", srv.Name, m), Value: dsload.Median(p50[i]), Text: fmt.Sprintf("%.2f ms", dsload.Median(p50[i]))},
				chart.Row{Label: fmt.Sprintf("%s %s p99", srv.Name, m), Value: dsload.Median(p99[i]), Text: fmt.Sprintf("%.2f ms", dsload.Median(p99[i])), Highlight: true})
		}
	}
	tw.Flush()
	writeCharts(pngBase, []string{"latency"}, []chart.Chart{{
		Title: fmt.Sprintf("live latency, append -> batch handler, %d appends at %.0f/s (median of %d rounds)\n%s", n, rate, rounds, machine),
		Unit:  "ms", Rows: rows, Target: 5, TargetLabel: "target: p99 < 5 ms with SSE (< 10 ms long-poll)",
	}})
	for _, s := range notes {
		fmt.Println("  INVALID:", s)
	}
	fmt.Println("targets: p99 < 5 ms with SSE, < 10 ms with long-poll (loopback)")
}

// profileFile is where the first pipeline run writes its CPU profile ("" for none).
var profileFile string

// maybeProfile starts the CPU profile if this run is a pipeline run and the profile has not
// been taken yet; it returns the function that stops it.
func maybeProfile(pipelineRun bool) func() {
	if !pipelineRun || profileFile == "" {
		return func() {}
	}
	f, err := os.Create(profileFile)
	profileFile = ""
	if err != nil {
		fatalf("-cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fatalf("-cpuprofile: %v", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
