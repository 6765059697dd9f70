// Command decoders benchmarks JSON decoders on the workload of the Durable Streams suites
// (~100-byte orders, decoded into bench/internal/dsload.Event), side by side in one run:
// encoding/json and the candidates of issue 15 (see bench/internal/decoders). Rounds
// rotate the order of the decoders; the table shows medians. Every decoder also goes through
// correctness checks — the same values as encoding/json on the workload and on edge items,
// malformed input and type mismatches rejected, no reference kept to the input bytes — and
// the suite names the fastest decoder that passes them all.
//
//	cd bench && go run ./decoders                       # 1,000,000 items, 5 rounds, every decoder
//	GOEXPERIMENT=jsonv2 go run ./decoders               # with encoding/json/v2 (and encoding/json on v2)
//	go run ./decoders -n 100000 -rounds 1 -big=false    # a quick smoke run
package main

import (
	stdjson "encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-go/sluice/bench/internal/chart"
	"github.com/sluice-go/sluice/bench/internal/decoders"
	"github.com/sluice-go/sluice/bench/internal/dsload"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "decoders: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	var (
		n      = flag.Int("n", 1_000_000, "items decoded per run")
		rounds = flag.Int("rounds", 5, "rounds; each runs every decoder once, in an order that rotates")
		list   = flag.String("decoders", "all", "decoders to compare, comma-separated: "+strings.Join(decoders.Names(), ","))
		big    = flag.Bool("big", true, "also decode one 64 MiB item with each decoder (time and bytes allocated; only noted)")
		pngOut = flag.String("png", "", "write a PNG chart of the speed table to this file (default: none)")
	)
	flag.Parse()
	ds, err := decoders.Parse(*list)
	if err != nil {
		fatalf("-decoders: %v", err)
	}
	if *n <= 0 || *rounds <= 0 {
		fatalf("-n and -rounds must be > 0")
	}
	if ds[0].Name != "std" {
		if std, ok := decoders.ByName("std"); ok {
			ds = append([]decoders.Decoder{std}, ds...) // the yardstick
		}
	}
	machine := dsload.MachineInfo()
	fmt.Println(machine)
	exp := "off"
	if _, ok := decoders.ByName("jsonv2"); ok {
		exp = "on (encoding/json itself runs on the v2 implementation)"
	}
	fmt.Printf("GOEXPERIMENT=jsonv2: %s\n", exp)
	w := newWorkload(*n)
	fmt.Printf("workload: %d items, %.1f bytes each on average, decoded into dsload.Event on one goroutine\n", *n, float64(len(w.buf))/float64(*n))

	res := make([][]run, len(ds))
	for r := range *rounds {
		for k := range ds {
			i := (k + r) % len(ds)
			rn := w.decode(ds[i])
			res[i] = append(res[i], rn)
			status := "ok"
			if rn.err != nil {
				status = "INVALID: " + rn.err.Error()
			}
			fmt.Fprintf(os.Stderr, "round %d/%d %-14s %10.0f items/s %5.2f allocs/item %s\n", r+1, *rounds, ds[i].Name, rn.rate(*n), rn.allocs(*n), status)
		}
	}
	verdicts := make([]verdict, len(ds))
	for i, d := range ds {
		verdicts[i] = check(d, w.first(1000), *big)
	}
	printTables(ds, res, verdicts, *n, *rounds, float64(len(w.buf))/float64(*n), machine, *pngOut)
}

// workload holds n encoded items in one buffer.
type workload struct {
	buf   []byte
	ends  []int
	ids   int64 // sum of the ids
	quart int64 // sum of the amounts in quarters
}

func newWorkload(n int) *workload {
	w := &workload{ends: make([]int, 0, n)}
	for i := range int64(n) {
		b, err := stdjson.Marshal(dsload.NewEvent(i))
		if err != nil {
			fatalf("encode: %v", err)
		}
		w.buf = append(w.buf, b...)
		w.ends = append(w.ends, len(w.buf))
		w.ids += i
	}
	w.quart = dsload.SumQuarters(int64(n))
	return w
}

// first returns the first k items (fewer if the workload is smaller).
func (w *workload) first(k int) [][]byte {
	var out [][]byte
	start := 0
	for _, end := range w.ends[:min(k, len(w.ends))] {
		out = append(out, w.buf[start:end])
		start = end
	}
	return out
}

// run is one decoder's pass over the workload.
type run struct {
	elapsed time.Duration
	mallocs uint64
	err     error
}

func (r run) rate(n int) float64 {
	if r.err != nil || r.elapsed <= 0 {
		return 0
	}
	return float64(n) / r.elapsed.Seconds()
}

func (r run) allocs(n int) float64 { return float64(r.mallocs) / float64(n) }

// decode decodes every item with d into one reused Event (zeroed before each item), and
// checks the sums of the ids and amounts.
func (w *workload) decode(d decoders.Decoder) run {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	var ids, quart int64
	var e dsload.Event
	prev := 0
	var err error
	for _, end := range w.ends {
		e = dsload.Event{}
		if err = d.Unmarshal(w.buf[prev:end], &e); err != nil {
			break
		}
		ids += e.ID
		q, _ := dsload.QuartersOf(e.Amount)
		quart += q
		prev = end
	}
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	if err == nil && (ids != w.ids || quart != w.quart) {
		err = fmt.Errorf("sums of ids %d and amounts %d quarters, want %d and %d", ids, quart, w.ids, w.quart)
	}
	return run{elapsed: el, mallocs: m1.Mallocs - m0.Mallocs, err: err}
}

func printTables(ds []decoders.Decoder, res [][]run, verdicts []verdict, n, rounds int, itemBytes float64, machine, pngOut string) {
	fmt.Printf("\n== decode speed, %d items, median of %d round(s); x std = median of the per-round ratios to encoding/json\n", n, rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "decoder\tns/item\titems/s\tMB/s\tallocs/item\tx std\tcorrect\t")
	var notes []string
	var rows []chart.Row
	best, bestRatio := "", 0.0
	for i, d := range ds {
		var rates, allocs, ratios []float64
		invalid := ""
		for r, rn := range res[i] {
			if rn.err != nil {
				invalid = rn.err.Error()
				continue
			}
			rates = append(rates, rn.rate(n))
			allocs = append(allocs, rn.allocs(n))
			if std := res[0][r]; std.err == nil {
				ratios = append(ratios, rn.rate(n)/std.rate(n))
			}
		}
		rate := dsload.Median(rates)
		ratio := dsload.Median(ratios)
		ns, mbs := 0.0, 0.0
		if rate > 0 {
			ns = 1e9 / rate
			mbs = rate * itemBytes / 1e6
		}
		ok := "yes"
		if !verdicts[i].correct() {
			ok = "NO"
		}
		if invalid != "" {
			ok = "INVALID"
			notes = append(notes, d.Name+": "+invalid)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.1f\t%.2f\t%.2fx\t%s\t\n", d.Name, ns, rate, mbs, dsload.Median(allocs), ratio, ok)
		rows = append(rows, chart.Row{Label: d.Name, Value: ratio, Text: fmt.Sprintf("%.2fx (%s items/s)%s", ratio, thousands(rate), map[bool]string{true: "", false: ", not correct"}[ok == "yes"]), Highlight: ok == "yes"})
		if ok == "yes" && ratio > bestRatio {
			best, bestRatio = d.Name, ratio
		}
	}
	tw.Flush()
	for _, s := range notes {
		fmt.Println("  INVALID:", s)
	}

	fmt.Printf("\n== correctness (against encoding/json)\n")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "decoder\tsame values\tmalformed rejected\ttype mismatches rejected\tkeeps input bytes\tinvalid UTF-8\t64 MiB item")
	for i, d := range ds {
		v := verdicts[i]
		big := v.Big
		if big == "" {
			big = "-"
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\t%d/%d\t%s\t%s\t%s\n", d.Name, v.Same, v.Items, v.Rejected, v.Malformed, v.Mismatch, v.Mismatches, yesNo(v.Aliases), v.UTF8, big)
	}
	tw.Flush()
	for i, d := range ds {
		v := verdicts[i]
		if v.FirstDiff != "" {
			fmt.Printf("  %s: first difference: %s\n", d.Name, v.FirstDiff)
		}
		if len(v.Accepted) > 0 {
			fmt.Printf("  %s: accepted without an error: %s\n", d.Name, strings.Join(v.Accepted, ", "))
		}
	}
	fmt.Println("decoders:")
	for _, d := range ds {
		fmt.Printf("  %-14s %s\n", d.Name, d.About)
	}
	fmt.Println("correct = the same values as encoding/json on the workload's first 1000 items and the edge items, every malformed input and type mismatch an error, no reference kept to the input bytes (the producer lends them for the call only); invalid UTF-8 and the 64 MiB item are only noted (the library bounds items at MaxBytes before decoding)")
	if best != "" {
		fmt.Printf("fastest correct decoder: %s, %.2fx encoding/json\n", best, bestRatio)
	}
	if pngOut != "" {
		c := chart.Chart{Title: fmt.Sprintf("JSON decode speed, ~100-byte orders, x encoding/json (median of %d rounds)\n%s", rounds, machine),
			Unit: "x encoding/json (one goroutine)", Rows: rows, Target: 1, TargetLabel: "encoding/json"}
		if err := chart.Write(chart.File{Path: pngOut, Chart: c}); err != nil {
			fatalf("-png: %v", err)
		}
		fmt.Println("chart:", pngOut)
	}
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "no"
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
