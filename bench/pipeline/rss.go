package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-go/sluice/bench/internal/dsload"
	"github.com/sluice-go/sluice/dsclient"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// slowSink configures the memory runs: a pipeline over a stream already holding n events
// whose batch handler sleeps per batch, stopped after limit events or after timeout.
type slowSink struct {
	N       int           `json:"n"`
	Limit   int64         `json:"limit"`
	Delay   time.Duration `json:"delay"`
	Timeout time.Duration `json:"timeout"`
	// MaxInFlight is the pipeline's MaxInFlight, the one bound on what the producer holds;
	// 0 for its default.
	MaxInFlight int `json:"max_in_flight"`
}

// slowResult is what a memory child reports on its last line of output.
type slowResult struct {
	Seen       int64 `json:"seen"`
	ElapsedNS  int64 `json:"elapsed_ns"`
	MaxPending int   `json:"max_pending"`
	// FirstNS is the time from the start of the run to the end of the first batch.
	FirstNS int64  `json:"first_ns"`
	Err     string `json:"err,omitempty"`
	// HWMKiB is the child's own peak resident set size (VmHWM of /proc/self/status, KiB),
	// read by the child just before it reports.
	HWMKiB int64 `json:"hwm_kib"`
	// MaxRSSKiB is the child's ru_maxrss as the parent's wait4 reports it (KiB on Linux),
	// filled by the parent. On Linux it is at least the parent's peak RSS at the time of the
	// spawn: Go starts children with vfork (the child runs on the parent's address space until
	// exec), and exec carries the old address space's high-water mark into ru_maxrss.
	MaxRSSKiB int64 `json:"-"`
}

// vmHWM returns this process's peak resident set size (VmHWM, KiB), or 0 if unknown.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// runSlowSink runs the slow-sink pipeline over streamURL in this process: the producer, the
// pipeline of the throughput runs with a sleeping batch handler.
// It stops the pipeline once cfg.Limit events were handled or cfg.Timeout passed, and checks
// that the events handled were each handled once, with exact amounts.
func runSlowSink(ctx context.Context, streamURL string, cfg slowSink) slowResult {
	c := httpClient()
	defer c.CloseIdleConnections()
	p, err := ds.NewProducer(ds.ProducerOptions[dsload.Event]{Stream: dsclient.NewStream(streamURL, dsclient.WithHTTPClient(c))})
	if err != nil {
		return slowResult{Err: err.Error()}
	}
	t := newTally(cfg.N)
	var maxPending, first atomic.Int64
	reached := make(chan struct{})
	var once sync.Once
	var start time.Time
	pl, err := catchUpPipeline(p, t, cfg.Delay, cfg.MaxInFlight, func(seen int64) {
		first.CompareAndSwap(0, int64(time.Since(start)))
		if pend := int64(p.Stats().Pending); pend > maxPending.Load() {
			maxPending.Store(pend)
		}
		if seen >= cfg.Limit {
			once.Do(func() { close(reached) })
		}
	})
	if err != nil {
		return slowResult{Err: err.Error()}
	}
	start = time.Now()
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	select {
	case <-reached:
	case <-timer.C:
	case err := <-done:
		done <- err
	}
	pl.Stop()
	err = <-done
	res := slowResult{Seen: t.total(), ElapsedNS: int64(time.Since(start)), MaxPending: int(maxPending.Load()), FirstNS: first.Load()}
	switch {
	case err != nil:
		res.Err = err.Error()
	case res.Seen == 0:
		res.Err = "no event handled"
	default:
		if err := t.partial(); err != nil {
			res.Err = err.Error()
		}
	}
	return res
}

// childMain runs one memory run (the -child-rss mode) and prints its result as JSON.
func childMain(streamURL, cfgJSON string) {
	var cfg slowSink
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fatalf("-child-cfg: %v", err)
	}
	var res slowResult
	if streamURL != "idle" {
		res = runSlowSink(context.Background(), streamURL, cfg)
	}
	res.HWMKiB = vmHWM()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// spawnSlowSink runs a memory run in a child process (this binary with -child-rss) and returns
// its result with the child's peak RSS (getrusage ru_maxrss, KiB on Linux).
func spawnSlowSink(streamURL string, cfg slowSink) (slowResult, error) {
	cfgJSON, _ := json.Marshal(cfg)
	exe, err := os.Executable()
	if err != nil {
		return slowResult{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-child-rss", streamURL, "-child-cfg", string(cfgJSON))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return slowResult{}, fmt.Errorf("child: %w\n%s", err, stderr.Bytes())
	}
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	var res slowResult
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
		return slowResult{}, fmt.Errorf("child output %q: %w", stdout.Bytes(), err)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return res, errors.New("no rusage for the child on this system")
	}
	res.MaxRSSKiB = ru.Maxrss
	return res, nil
}

func mib(kib int64) string { return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) }
