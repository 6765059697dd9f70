// Command core benchmarks the Sluice pipeline core side by side with a
// hand-written goroutines-and-channels limit and with peer libraries, on one
// workload: a producer of ~100-byte JSON orders, 4 processors decoding and
// transforming them, a batcher of 100 messages / 50 ms summing the amounts,
// and an acknowledgement for every message, checked for exactly-once.
//
// Each run of each variant is a child process of this binary, so that its
// peak RSS and allocation count are its own. Rounds alternate the order of
// the variants; the table shows medians.
//
// Usage:
//
//	go run ./core [-n 1000000] [-rounds 5] [-modes json,noalloc] [-variants limit,sluice,...]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/machine"
)

// variant is one implementation of the workload. prepare builds it without
// starting anything; the returned run function starts it, returns once every
// goroutine it started has ended, and must not return before every message
// has been acknowledged to chk unless it failed.
type variant struct {
	name    string
	about   string
	prepare func(n int, work workFunc, chk *checker) (run func(ctx context.Context) error, err error)
}

// variants in table order; the limit must come first.
var variants = []variant{
	{"limit", "goroutines and channels by hand, chunked hand-offs", prepareLimit},
	{"sluice", "the Sluice pipeline package: a producer filling the demanded slice, 4 processors, one batcher; defaults otherwise", prepareSluice},
	{"channels-1by1", "goroutines and channels by hand, one message per channel operation", prepareChannels},
	{"go-streams", "reugn/go-streams v0.13.0: ChanSource, Map(4), Batch(100, 50ms), sink", prepareGoStreams},
	{"benthos", "benthos v4.40.0 StreamBuilder: Go input, processor (4 threads), batched output", prepareBenthos},
	{"watermill", "watermill v1.5.1: gochannel pub/sub, router handler (4 at a time), batching subscriber", prepareWatermill},
}

func variantByName(name string) (variant, bool) {
	for _, v := range variants {
		if v.name == name {
			return v, true
		}
	}
	return variant{}, false
}

// result is what a child reports to the parent on its last line of output.
type result struct {
	ElapsedNS int64  `json:"elapsed_ns"`
	Mallocs   uint64 `json:"mallocs"`
	Err       string `json:"err,omitempty"`
	// filled by the parent
	MaxRSSKiB int64 `json:"-"`
}

func main() {
	var (
		n         = flag.Int("n", 1_000_000, "messages per run")
		rounds    = flag.Int("rounds", 5, "rounds; each runs every variant once per mode, in alternating order")
		modes     = flag.String("modes", modeJSON+","+modeNoAlloc, "work modes to run: json (encoding/json decode and transform), noalloc (non-allocating transform)")
		only      = flag.String("variants", "", "comma-separated variants to run (default all): "+strings.Join(variantNames(), ","))
		timeout   = flag.Duration("timeout", 3*time.Minute, "limit for one run of one variant")
		profile   = flag.String("profile", "", "directory to write CPU and allocation profiles of every run into")
		pngOut    = flag.String("png", "", "write a PNG chart of each work mode's table beside this path (results/core.png gives results/core-json.png and results/core-noalloc.png); default none")
		child     = flag.String("child", "", "internal: run this variant once in this process and report")
		childMode = flag.String("mode", "", "internal: the work mode of a -child run")
		cpuProf   = flag.String("cpuprofile", "", "internal: CPU profile file of a -child run")
		memProf   = flag.String("memprofile", "", "internal: allocation profile file of a -child run")
	)
	flag.Parse()

	if *child != "" {
		res := runChild(*child, *childMode, *n, *timeout, *cpuProf, *memProf)
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
		return
	}

	selected := variants
	if *only != "" {
		selected = nil
		for _, name := range strings.Split(*only, ",") {
			v, ok := variantByName(strings.TrimSpace(name))
			if !ok {
				fatalf("-variants: unknown variant %q (known: %s)", name, strings.Join(variantNames(), ", "))
			}
			selected = append(selected, v)
		}
	}
	var modeList []string
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if _, err := workFor(m); err != nil {
			fatalf("-modes: %v", err)
		}
		modeList = append(modeList, m)
	}
	if *n <= 0 || *rounds <= 0 {
		fatalf("-n and -rounds must be > 0")
	}
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			fatalf("-profile: %v", err)
		}
	}
	runParent(selected, modeList, *n, *rounds, *timeout, *profile, *pngOut)
}

func variantNames() []string {
	var names []string
	for _, v := range variants {
		names = append(names, v.name)
	}
	return names
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "core: "+format+"\n", args...)
	os.Exit(2)
}

// runChild runs one variant once and measures it.
func runChild(name, mode string, n int, timeout time.Duration, cpuProf, memProf string) result {
	if name == "idle" { // the baseline: this binary doing nothing
		return result{}
	}
	v, ok := variantByName(name)
	if !ok {
		return result{Err: "unknown variant " + name}
	}
	work, err := workFor(mode)
	if err != nil {
		return result{Err: err.Error()}
	}
	chk := newChecker(n)
	run, err := v.prepare(n, work, chk)
	if err != nil {
		return result{Err: "prepare: " + err.Error()}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if cpuProf != "" {
		f, err := os.Create(cpuProf)
		if err != nil {
			return result{Err: err.Error()}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{Err: err.Error()}
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()

	var res result
	var runErr error
	returned := false
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	select {
	case <-chk.done:
		res.ElapsedNS = int64(chk.doneAt.Sub(start))
	case runErr = <-errc:
		returned = true
		select {
		case <-chk.done: // both were ready
			res.ElapsedNS = int64(chk.doneAt.Sub(start))
		default:
			if runErr == nil {
				runErr = errors.New("returned before every message was acknowledged")
			}
		}
	case <-limit.C:
		runErr = fmt.Errorf("not every message acknowledged after %v", timeout)
	}
	if !returned {
		select {
		case err := <-errc:
			runErr = errors.Join(runErr, err)
		case <-time.After(30 * time.Second):
			runErr = errors.Join(runErr, errors.New("did not stop within 30s of the last acknowledgement"))
		}
		cancel()
	}
	if cpuProf != "" {
		pprof.StopCPUProfile()
	}
	runtime.ReadMemStats(&after)
	res.Mallocs = after.Mallocs - before.Mallocs
	if memProf != "" {
		if f, err := os.Create(memProf); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if err := errors.Join(runErr, chk.verdict()); err != nil {
		res.Err = strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return res
}

// runOne starts a child process for one run and returns its result with its
// peak RSS.
func runOne(name, mode string, n int, timeout time.Duration, profile string) result {
	exe, err := os.Executable()
	if err != nil {
		return result{Err: err.Error()}
	}
	args := []string{"-child", name, "-mode", mode, "-n", fmt.Sprint(n), "-timeout", timeout.String()}
	if profile != "" {
		base := profile + "/" + name + "-" + mode
		args = append(args, "-cpuprofile", base+".cpu.pprof", "-memprofile", base+".alloc.pprof")
	}
	cmd := exec.Command(exe, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.Discard
	if os.Getenv("CORE_BENCH_VERBOSE") != "" {
		cmd.Stderr = os.Stderr
	}
	runErr := cmd.Run()
	var res result
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		res = result{Err: fmt.Sprintf("child failed: %v", errors.Join(runErr, err))}
	}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSSKiB = ru.Maxrss
		}
	}
	return res
}

type key struct{ mode, variant string }

func runParent(selected []variant, modes []string, n, rounds int, timeout time.Duration, profile, pngOut string) {
	host := machine.Info()
	fmt.Printf("sluice core benchmark: %d messages of ~%d-byte JSON, %d processors, batches of %d / %v\n%s\n",
		n, len(payload(int64(n/2))), processors, batchSize, batchTimeout, host)
	idle := runOne("idle", modeJSON, n, timeout, "")
	results := map[key][]result{}
	for r := range rounds {
		for _, mode := range modes {
			order := slices.Clone(selected)
			if r%2 == 1 {
				slices.Reverse(order)
			}
			for _, v := range order {
				res := runOne(v.name, mode, n, timeout, profile)
				results[key{mode, v.name}] = append(results[key{mode, v.name}], res)
				status := "ok"
				if res.Err != "" {
					status = "INVALID: " + res.Err
				}
				fmt.Fprintf(os.Stderr, "round %d/%d %-7s %-10s %10.0f msg/s %6.2f allocs/msg %6.1f MiB  %s\n",
					r+1, rounds, mode, v.name, msgPerSec(n, res), float64(res.Mallocs)/float64(n), mib(res.MaxRSSKiB), status)
			}
		}
	}
	fmt.Println()
	for _, mode := range modes {
		c := printTable(mode, selected, results, n)
		if pngOut != "" {
			c.Title += "\n" + host
			path := chart.PartPath(pngOut, mode)
			if err := chart.Write(chart.File{Path: path, Chart: c}); err != nil {
				fatalf("-png: %v", err)
			}
			fmt.Printf("chart: %s\n\n", path)
		}
	}
	fmt.Printf("peak RSS of this binary doing nothing: %.1f MiB\n", mib(idle.MaxRSSKiB))
	fmt.Println("variants:")
	for _, v := range selected {
		fmt.Printf("  %-14s %s\n", v.name, v.about)
	}
}

type row struct {
	rate, allocs, rss float64
	invalid           string
}

func summarize(rs []result, n int) row {
	var rates, allocs, rss []float64
	var invalid []string
	for _, r := range rs {
		if r.Err != "" {
			invalid = append(invalid, r.Err)
			continue
		}
		rates = append(rates, msgPerSec(n, r))
		allocs = append(allocs, float64(r.Mallocs)/float64(n))
		rss = append(rss, mib(r.MaxRSSKiB))
	}
	out := row{rate: median(rates), allocs: median(allocs), rss: median(rss)}
	if len(invalid) > 0 {
		out.invalid = fmt.Sprintf("INVALID in %d/%d runs: %s", len(invalid), len(rs), invalid[0])
	}
	return out
}

// printTable prints one work mode's table and its targets, and returns its chart.
func printTable(mode string, selected []variant, results map[key][]result, n int) chart.Chart {
	title := map[string]string{
		modeJSON:    "JSON work (encoding/json decode + transform)",
		modeNoAlloc: "no-allocation work (byte scan + transform): pipeline overhead",
	}[mode]
	fmt.Printf("== %s, median of %d rounds\n", title, len(results[key{mode, selected[0].name}]))
	limit := summarize(results[key{mode, "limit"}], n)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tmsg/s\tx limit\tallocs/msg\tpeak RSS MiB\texactly-once\t")
	rows := map[string]row{}
	ratios := map[string]float64{}
	var notes []string
	want := map[string]float64{modeJSON: 0.9, modeNoAlloc: 0.8}[mode]
	c := chart.Chart{Title: fmt.Sprintf("%s, %d messages (median of %d rounds)", title, n, len(results[key{mode, selected[0].name}])),
		Unit: "msg/s", Target: want * limit.rate, TargetLabel: fmt.Sprintf("target: sluice >= %.1fx limit", want)}
	for _, v := range selected {
		s := summarize(results[key{mode, v.name}], n)
		rows[v.name] = s
		ratio := "-"
		if r, ok := roundRatio(results[key{mode, v.name}], results[key{mode, "limit"}], n); ok {
			ratio = fmt.Sprintf("%.2f", r)
			ratios[v.name] = r
		}
		valid := "ok"
		if s.invalid != "" {
			valid = "INVALID"
			notes = append(notes, v.name+": "+s.invalid)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.2f\t%.1f\t%s\t\n", v.name, s.rate, ratio, s.allocs, s.rss, valid)
		c.Rows = append(c.Rows, chart.Row{Label: v.name, Value: s.rate, Highlight: v.name == "sluice",
			Text: fmt.Sprintf("%s msg/s  %sx limit", thousands(s.rate), ratio)})
	}
	tw.Flush()
	for _, note := range notes {
		fmt.Println("  " + note)
	}
	if s, ok := rows["sluice"]; ok && limit.rate > 0 {
		ratio := ratios["sluice"]
		fmt.Printf("target: sluice >= %.1fx limit: %.2fx %s\n", want, ratio, passFail(ratio >= want && s.invalid == ""))
		extra := s.allocs - limit.allocs
		fmt.Printf("target: sluice allocations beyond the limit's (payload and work) <= 1/msg: %+.2f %s\n", extra, passFail(extra <= 1.0 && s.invalid == ""))
	}
	fmt.Println()
	return c
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

// roundRatio is the median over the rounds of a variant's rate divided by the
// limit's rate in the same round: runs next to each other in time share the
// machine's load, which drifts on a shared machine.
func roundRatio(vs, limits []result, n int) (float64, bool) {
	var rs []float64
	for i := range min(len(vs), len(limits)) {
		v, l := msgPerSec(n, vs[i]), msgPerSec(n, limits[i])
		if v > 0 && l > 0 {
			rs = append(rs, v/l)
		}
	}
	return median(rs), len(rs) > 0
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func msgPerSec(n int, r result) float64 {
	if r.ElapsedNS <= 0 || r.Err != "" {
		return 0
	}
	return float64(n) / (float64(r.ElapsedNS) / 1e9)
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

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
