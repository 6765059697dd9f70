// Command compare runs one benchmark suite built at two revisions side by side: each round
// runs the base binary and the current binary once each (-rounds 1), in an order that
// alternates from round to round, parses the figures of their tables, and prints the
// per-round figures, the medians and the ratio current / base. It is what compare.sh runs
// after building the two binaries; run compare.sh, not this.
//
//	compare -suite core -base /tmp/x/base -current /tmp/x/current -rounds 5 [-- suite flags]
//
// Suites and figures:
//
//   - core (defaults -variants limit,sluice): per work mode, Sluice msg/s and x limit;
//   - pipeline (defaults -parts throughput -servers dstest): the pipeline's msg/s and x bare,
//     from the row of the first pipeline reader (the producer's default decoder).
//
// Flags after "--" go to both binaries; a binary of an older revision may not know some
// flags, so each binary gets only the flags its -h lists (the others are reported).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: "+format+"\n", args...)
	os.Exit(2)
}

// suites gives each suite's default flags (before the user's) and its parser.
var suites = map[string]struct {
	defaults []string
	parse    func(out string) (map[string]float64, error)
}{
	"core":     {[]string{"-variants", "limit,sluice"}, parseCore},
	"pipeline": {[]string{"-parts", "throughput", "-servers", "dstest"}, parsePipeline},
}

func main() {
	var (
		suite   = flag.String("suite", "", "the suite: core or pipeline")
		base    = flag.String("base", "", "the suite's binary built at the base revision")
		current = flag.String("current", "", "the suite's binary built from the current tree")
		rounds  = flag.Int("rounds", 5, "rounds; each runs both binaries once, in alternating order")
		baseRev = flag.String("base-rev", "", "the base revision's name, for the report")
		curRev  = flag.String("current-rev", "working tree", "the current revision's name, for the report")
	)
	flag.Parse()
	s, ok := suites[*suite]
	if !ok || *base == "" || *current == "" || *rounds <= 0 {
		fatalf("usage: compare -suite core|pipeline -base BIN -current BIN [-rounds N] [-- suite flags]")
	}
	extra := flag.Args()
	args := append(slices.Clone(s.defaults), extra...)
	args = append(args, "-rounds", "1")
	bins := []struct{ name, path string }{{"base", *base}, {"current", *current}}
	argv := make([][]string, 2)
	for i, b := range bins {
		known, err := knownFlags(b.path)
		if err != nil {
			fatalf("%s: %v", b.name, err)
		}
		var dropped []string
		argv[i], dropped = filterFlags(args, known)
		if len(dropped) > 0 {
			fmt.Printf("%s binary does not know %s: not passed to it\n", b.name, strings.Join(dropped, " "))
		}
	}
	fmt.Printf("suite %s: base %s, current %s, %d round(s)\n", *suite, *baseRev, *curRev, *rounds)
	fmt.Printf("base: %s %s\ncurrent: %s %s\n", *base, strings.Join(argv[0], " "), *current, strings.Join(argv[1], " "))

	figs := make([][]map[string]float64, 2) // [binary][round]
	for r := range *rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			start := time.Now()
			out, err := runBinary(bins[i].path, argv[i])
			var f map[string]float64
			if err == nil {
				f, err = s.parse(out)
			}
			if err != nil {
				fmt.Printf("round %d %s: INVALID: %v\n", r+1, bins[i].name, err)
				if f == nil {
					f = map[string]float64{}
				}
			}
			figs[i] = append(figs[i], f)
			fmt.Printf("round %d %-7s (%4.0fs) %s\n", r+1, bins[i].name, time.Since(start).Seconds(), describe(f))
		}
	}
	fmt.Println()
	fmt.Print(report(figs[0], figs[1]))
}

// runBinary runs a suite binary and returns its standard output; its standard error is
// shown only when it fails.
func runBinary(path string, args []string) (string, error) {
	cmd := exec.Command(path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v\n%s", err, lastLines(stderr.String(), 10))
	}
	return stdout.String(), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// knownFlags returns the flags a suite binary lists in its -h output.
func knownFlags(path string) (map[string]bool, error) {
	out, _ := exec.Command(path, "-h").CombinedOutput() // -h exits with status 0 or 2
	known := parseUsage(string(out))
	if len(known) == 0 {
		return nil, fmt.Errorf("no flags in the -h output of %s: %.200s", path, out)
	}
	return known, nil
}

var usageFlag = regexp.MustCompile(`^\s+-([A-Za-z0-9][A-Za-z0-9_.-]*)`)

// parseUsage reads the flag names of a Go flag package's usage text.
func parseUsage(text string) map[string]bool {
	known := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if m := usageFlag.FindStringSubmatch(sc.Text()); m != nil {
			known[m[1]] = true
		}
	}
	return known
}

// filterFlags keeps the flags of args that known lists, with their values, and returns the
// dropped ones. A flag takes the next argument as its value unless it is written -f=v or the
// next argument is a flag itself.
func filterFlags(args []string, known map[string]bool) (kept, dropped []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			kept = append(kept, a) // a stray value: keep it with what precedes it
			continue
		}
		name := strings.TrimLeft(a, "-")
		group := []string{a}
		if k, _, ok := strings.Cut(name, "="); ok {
			name = k
		} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			group = append(group, args[i+1])
			i++
		}
		if known[name] {
			kept = append(kept, group...)
		} else {
			dropped = append(dropped, group...)
		}
	}
	return kept, dropped
}

// A suite's figures are named "<scope> <metric>", such as "json msg/s" or "dstest 1000000 x bare".

var tableRow = regexp.MustCompile(`\s{2,}`)

func fields(line string) []string { return tableRow.Split(strings.TrimSpace(line), -1) }

// parseCore reads the Sluice row of each work mode's table.
func parseCore(out string) (map[string]float64, error) {
	f := map[string]float64{}
	mode := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== JSON work"):
			mode = "json"
		case strings.HasPrefix(line, "== no-allocation work"):
			mode = "noalloc"
		case strings.HasPrefix(line, "=="):
			mode = ""
		}
		fs := fields(line)
		if mode == "" || len(fs) < 6 || fs[0] != "sluice" {
			continue
		}
		if fs[len(fs)-1] != "ok" {
			return f, fmt.Errorf("%s: sluice run %s", mode, fs[len(fs)-1])
		}
		rate, err1 := strconv.ParseFloat(fs[1], 64)
		ratio, err2 := strconv.ParseFloat(strings.TrimSuffix(fs[2], "x"), 64)
		if err := errors.Join(err1, err2); err != nil {
			return f, fmt.Errorf("%s row %q: %w", mode, line, err)
		}
		f[mode+" sluice msg/s"] = rate
		f[mode+" sluice x limit"] = ratio
	}
	if len(f) == 0 {
		return f, errors.New("no sluice row in the output")
	}
	return f, nil
}

// parsePipeline reads the first pipeline row of each server and size of the throughput
// table.
func parsePipeline(out string) (map[string]float64, error) {
	f := map[string]float64{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "== ") {
			in = strings.HasPrefix(line, "== catch-up throughput")
			continue
		}
		fs := fields(line)
		if !in || len(fs) < 6 || !strings.HasPrefix(fs[2], "pipeline") {
			continue
		}
		scope := fs[0] + " " + fs[1]
		if _, seen := f[scope+" pipeline msg/s"]; seen {
			continue // a pipeline with another decoder
		}
		if fs[len(fs)-1] != "ok" {
			return f, fmt.Errorf("%s: pipeline run %s", scope, fs[len(fs)-1])
		}
		rate, err1 := strconv.ParseFloat(fs[3], 64)
		ratio, err2 := strconv.ParseFloat(strings.TrimSuffix(fs[4], "x"), 64)
		if err := errors.Join(err1, err2); err != nil {
			return f, fmt.Errorf("row %q: %w", line, err)
		}
		f[scope+" pipeline msg/s"] = rate
		f[scope+" pipeline x bare"] = ratio
	}
	if len(f) == 0 {
		return f, errors.New("no pipeline row in the throughput table")
	}
	return f, nil
}

func describe(f map[string]float64) string {
	keys := slices.Sorted(maps.Keys(f))
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, num(f[k])))
	}
	return strings.Join(parts, ", ")
}

func num(v float64) string {
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// report prints each figure's base and current medians and the median over the rounds of
// the per-round ratio current / base (runs close in time share the machine's load).
func report(base, cur []map[string]float64) string {
	names := map[string]bool{}
	for _, rs := range [][]map[string]float64{base, cur} {
		for _, r := range rs {
			for k := range r {
				names[k] = true
			}
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tbase\tcurrent\tcurrent / base\trounds\t")
	for _, name := range slices.Sorted(maps.Keys(names)) {
		var bs, cs, ratios []float64
		for r := range min(len(base), len(cur)) {
			bv, bok := base[r][name]
			cv, cok := cur[r][name]
			if bok {
				bs = append(bs, bv)
			}
			if cok {
				cs = append(cs, cv)
			}
			if bok && cok && bv > 0 {
				ratios = append(ratios, cv/bv)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%d\t\n", name, num(median(bs)), num(median(cs)), median(ratios), len(ratios))
	}
	tw.Flush()
	b.WriteString("current / base = the median over the rounds of the per-round ratio; base and current = medians\n")
	b.WriteString("target: no regression beyond noise (issue 10); the pipeline's msg/s within 5% of the base (issue 12): current / base >= 0.95\n")
	return b.String()
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
