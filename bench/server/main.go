// Command server benchmarks the in-memory Durable Streams server of package dstest side by
// side with the reference server (@durable-streams/server 0.3.7, started from Node through
// internal/refserver): catch-up read throughput of a stream of small JSON messages, and
// append throughput with one and with several concurrent writers.
//
// Both servers run in processes of their own (dstest in a child process of this binary) and
// are driven by the same bare net/http client in this process, without compression (unless
// -gzip). Rounds alternate which server goes first; the table shows medians and the ratio
// dstest / reference.
//
//	cd bench && go run ./server                                  # the measured run
//	go run ./server -n 100000 -appends 2000 -rounds 1            # a smoke run
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/machine"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

var (
	nMsgs    = flag.Int("n", 1_000_000, "JSON messages in the stream that catch-up reads read")
	batch    = flag.Int("batch", 100, "messages per POST when filling the read stream")
	reads    = flag.Int("reads", 3, "catch-up reads of the whole stream per round (the round's figure is their median)")
	appends  = flag.Int("appends", 20_000, "appends per append workload and round")
	clients  = flag.String("clients", "1,16", "concurrent writers of the append workloads, comma-separated")
	rounds   = flag.Int("rounds", 5, "rounds; the servers' order alternates")
	servers  = flag.String("servers", "dstest,reference", "servers to run: dstest, reference")
	gzipFlag = flag.Bool("gzip", false, "ask for gzip responses (both servers then compress bodies of 1 KiB or more)")
	serve    = flag.Bool("serve", false, "internal: serve dstest on a loopback port, print its URL, stop when stdin closes")
	pngOut   = flag.String("png", "", "write a PNG chart of the table (each workload's ratio dstest / reference) to this file; default none")
)

// message is one ~90-byte JSON order; i makes each unique.
func message(i int) []byte {
	return fmt.Appendf(nil, `{"id":%d,"user":"u123","type":"purchase","amount":42.5,"ts":"2024-01-01T00:00:00Z"}`, i)
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *serve {
		serveDstest()
		return
	}
	ctx := context.Background()
	var targets []*target
	for _, name := range strings.Split(*servers, ",") {
		t, err := start(ctx, strings.TrimSpace(name))
		if err != nil {
			log.Fatal(err)
		}
		defer t.stop()
		targets = append(targets, t)
	}
	counts, err := parseInts(*clients)
	if err != nil {
		log.Fatalf("-clients: %v", err)
	}
	client := &http.Client{Transport: &http.Transport{
		DisableCompression:  !*gzipFlag,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     2 * time.Second, // under the reference server's 5 s keep-alive
	}}

	host := machine.Info()
	fmt.Printf("%s\ndstest vs reference server %s; gzip %v\n", host, refserver.Version, *gzipFlag)
	fmt.Printf("read stream: %d messages of ~90 bytes, %d per POST; %d reads per round; %d appends per append workload; %d rounds\n",
		*nMsgs, *batch, *reads, *appends, *rounds)

	workloads := []workload{{
		name: "catch-up read, whole stream", unit: "MB/s",
		run: func(t *target, round int) (float64, error) { return readWorkload(ctx, client, t, round) },
	}}
	for _, c := range counts {
		workloads = append(workloads, workload{
			name: fmt.Sprintf("append 1 message/POST, %d writer(s)", c), unit: "appends/s",
			run: func(t *target, round int) (float64, error) { return appendWorkload(ctx, client, t, round, c, 1) },
		})
	}
	workloads = append(workloads, workload{
		name: fmt.Sprintf("append %d messages/POST, 1 writer", *batch), unit: "msgs/s",
		run: func(t *target, round int) (float64, error) { return appendWorkload(ctx, client, t, round, 1, *batch) },
	})

	results := make([][][]float64, len(workloads)) // [workload][target][round]
	for w := range workloads {
		results[w] = make([][]float64, len(targets))
	}
	for round := range *rounds {
		for k := range targets {
			ti := (k + round) % len(targets)
			t := targets[ti]
			for w, wl := range workloads {
				v, err := wl.run(t, round)
				if err != nil {
					log.Fatalf("round %d, %s, %s: %v", round+1, t.name, wl.name, err)
				}
				results[w][ti] = append(results[w][ti], v)
			}
		}
		fmt.Printf("round %d/%d done\n", round+1, *rounds)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "workload\tunit\t")
	for _, t := range targets {
		fmt.Fprintf(tw, "%s\t", t.name)
	}
	if len(targets) == 2 {
		fmt.Fprint(tw, "ratio\t")
	}
	fmt.Fprintln(tw)
	c := chart.Chart{Title: fmt.Sprintf("dstest against the reference server %s (median of %d rounds)\n%s", refserver.Version, *rounds, host),
		Unit: "x reference server", Target: 1, TargetLabel: "the reference server"}
	for w, wl := range workloads {
		fmt.Fprintf(tw, "%s\t%s\t", wl.name, wl.unit)
		meds := make([]float64, len(targets))
		for ti := range targets {
			meds[ti] = median(results[w][ti])
			fmt.Fprintf(tw, "%.1f\t", meds[ti])
		}
		if len(targets) == 2 {
			fmt.Fprintf(tw, "%.2fx\t", meds[0]/meds[1])
			c.Rows = append(c.Rows, chart.Row{Label: wl.name, Value: meds[0] / meds[1], Highlight: true,
				Text: fmt.Sprintf("%.2fx (%s vs %s %s)", meds[0]/meds[1], chart.FormatValue(meds[0]), chart.FormatValue(meds[1]), wl.unit)})
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "server peak RSS\tMiB\t")
	for _, t := range targets {
		if kib := peakRSSKiB(t.pid); kib > 0 {
			fmt.Fprintf(tw, "%.0f\t", float64(kib)/1024)
		} else {
			fmt.Fprint(tw, "?\t")
		}
	}
	fmt.Fprintln(tw)
	fmt.Println()
	tw.Flush()
	if len(targets) == 2 {
		fmt.Printf("\nmedians over %d rounds; ratio = %s / %s (above 1: %s is faster)\n", *rounds, targets[0].name, targets[1].name, targets[0].name)
	}
	fmt.Println("targets: none (dstest is the test server of the client's own tests; the table says how it compares with the reference server)")
	if *pngOut != "" {
		if len(c.Rows) == 0 {
			log.Fatal("-png: the chart needs both servers")
		}
		if err := chart.Write(chart.File{Path: *pngOut, Chart: c}); err != nil {
			log.Fatalf("-png: %v", err)
		}
		fmt.Println("chart:", *pngOut)
	}
}

type workload struct {
	name, unit string
	run        func(t *target, round int) (float64, error)
}

// target is a running server.
type target struct {
	name string
	url  string
	stop func()
	pid  int // the server's process, for its peak RSS; 0 when unknown

	readStream string // the filled stream of catch-up reads
}

func start(ctx context.Context, name string) (*target, error) {
	switch name {
	case "dstest":
		cmd := exec.Command(os.Args[0], "-serve")
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start dstest: %w", err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			stdin.Close()
			cmd.Wait()
			return nil, fmt.Errorf("dstest did not start: %w", err)
		}
		return &target{name: "dstest", url: strings.TrimSpace(line), pid: cmd.Process.Pid, stop: func() { stdin.Close(); cmd.Wait() }}, nil
	case "reference", "ref":
		srv, err := refserver.Start(ctx, refserver.Options{})
		if err != nil {
			return nil, err
		}
		return &target{name: "reference", url: srv.URL, pid: childPid("node"), stop: func() { srv.Stop() }}, nil
	}
	return nil, fmt.Errorf("-servers: unknown server %q (want dstest or reference)", name)
}

// serveDstest is the child process: dstest with its defaults (compression as -gzip asks).
func serveDstest() {
	srv, err := dstest.NewServer(dstest.Options{Compression: *gzipFlag})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(srv.URL)
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

// readWorkload fills the read stream once per server, then reads it whole -reads times and
// returns the median rate in MB/s of body bytes.
func readWorkload(ctx context.Context, c *http.Client, t *target, round int) (float64, error) {
	if t.readStream == "" {
		u := fmt.Sprintf("%s/v1/stream/bench-read-%d", t.url, time.Now().UnixNano())
		if err := fill(ctx, c, u, *nMsgs, *batch); err != nil {
			return 0, fmt.Errorf("fill: %w", err)
		}
		t.readStream = u
	}
	var rates []float64
	for range *reads {
		runtime.GC()
		start := time.Now()
		n, err := readAll(ctx, c, t.readStream)
		if err != nil {
			return 0, err
		}
		rates = append(rates, float64(n)/1e6/time.Since(start).Seconds())
	}
	return median(rates), nil
}

// fill appends n messages to a new JSON stream at u, per POSTs of batch.
func fill(ctx context.Context, c *http.Client, u string, n, batch int) error {
	if err := request(ctx, c, "PUT", u, nil, 201); err != nil {
		return err
	}
	var body bytes.Buffer
	for i := 0; i < n; i += batch {
		body.Reset()
		body.WriteByte('[')
		for j := i; j < min(i+batch, n); j++ {
			if j > i {
				body.WriteByte(',')
			}
			body.Write(message(j))
		}
		body.WriteByte(']')
		if err := request(ctx, c, "POST", u, body.Bytes(), 204); err != nil {
			return err
		}
	}
	return nil
}

// readAll reads the stream from the start in one catch-up GET (both servers answer with the
// whole stream) and checks that the body is the JSON array of every message.
func readAll(ctx context.Context, c *http.Client, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u+"?offset=-1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("GET: status %d", resp.StatusCode)
	}
	if resp.Header.Get("Stream-Up-To-Date") != "true" {
		return 0, errors.New("GET: the response does not reach the tail")
	}
	// Count the messages: each starts with {"id":. Checking the count keeps both servers honest
	// without decoding (the client's cost is not what is measured).
	buf := make([]byte, 256<<10)
	var n int64
	count := 0
	var carry []byte
	pat := []byte(`{"id":`)
	for {
		k, err := resp.Body.Read(buf)
		n += int64(k)
		chunk := append(carry, buf[:k]...)
		count += bytes.Count(chunk, pat)
		carry = append(carry[:0], chunk[max(0, len(chunk)-len(pat)+1):]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if count != *nMsgs {
		return n, fmt.Errorf("GET: %d messages, want %d", count, *nMsgs)
	}
	return n, nil
}

// appendWorkload appends -appends POSTs (of per messages each) with writers concurrent writers
// to a new stream, and returns appends per second (messages per second when per > 1).
func appendWorkload(ctx context.Context, c *http.Client, t *target, round, writers, per int) (float64, error) {
	u := fmt.Sprintf("%s/v1/stream/bench-append-%d", t.url, time.Now().UnixNano())
	if err := request(ctx, c, "PUT", u, nil, 201); err != nil {
		return 0, err
	}
	total := *appends
	if per > 1 {
		total = max(1, *appends/per)
	}
	bodies := make([][]byte, 0, 64)
	for i := range 64 {
		var b bytes.Buffer
		if per > 1 {
			b.WriteByte('[')
		}
		for j := range per {
			if j > 0 {
				b.WriteByte(',')
			}
			b.Write(message(i*per + j))
		}
		if per > 1 {
			b.WriteByte(']')
		}
		bodies = append(bodies, b.Bytes())
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	runtime.GC()
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				if err := request(ctx, c, "POST", u, bodies[i%64], 204); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(total*per) / elapsed.Seconds(), nil
}

// request sends one request and checks its status.
func request(ctx context.Context, c *http.Client, method, u string, body []byte, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, u, resp.StatusCode, want)
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want positive integers, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// childPid returns the pid of this process's child whose command name is comm, or 0.
func childPid(comm string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		stat := string(b)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(stat[end+1:])
		if stat[open+1:end] == comm && len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			return pid
		}
	}
	return 0
}

// peakRSSKiB returns the peak resident set size of a running process (VmHWM), or 0.
func peakRSSKiB(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
