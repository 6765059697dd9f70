package main

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const coreOut = `sluice core benchmark: 100000 messages of ~103-byte JSON, 4 processors, batches of 100 / 50ms, GOMAXPROCS=2, go1.26.8

== JSON work (encoding/json decode + transform), median of 1 rounds
  variant   msg/s  x limit  allocs/msg  peak RSS MiB  exactly-once
    limit  114452     1.00       10.00          25.7            ok
   sluice  141046     1.23       10.00          26.4            ok
target: sluice >= 0.9x limit: 1.23x PASS

== no-allocation work (byte scan + transform): pipeline overhead, median of 1 rounds
  variant   msg/s  x limit  allocs/msg  peak RSS MiB  exactly-once
    limit  804418     1.00        1.00          26.3            ok
   sluice  619963     0.77        1.00          26.2            ok
`

// The base revision's pipeline table (reader "pipeline (Producer, ...)") and the current
// one (several pipelines, an x parallel column) both parse.
const pipelineBaseOut = `Intel Xeon, 2 CPUs, GOMAXPROCS 2, go1.26.8 linux/amd64, 2026-11-23 05:00 UTC

== catch-up throughput, whole stream, 1 round(s); x bare = median of the per-round ratios
  server   events                                   reader   msg/s  x bare  exactly-once
  dstest  1000000               bare net/http+json.Decoder  761486   1.00x            ok
  dstest  1000000                      client JSONItems[T]  765013   1.00x            ok
  dstest  1000000  pipeline (Producer, 4 proc, batch 1000)  737455   0.97x            ok
target: pipeline >= 0.80x the bare reader
`

const pipelineCurOut = `AMD EPYC, 2 CPUs, GOMAXPROCS 2, go1.26.8 linux/amd64, 2026-12-01 16:06 UTC

== catch-up throughput, whole stream, 1 round(s); x bare, x parallel = medians of the per-round ratios
     server  events                       reader    msg/s  x bare  x parallel  exactly-once
     dstest  100000   bare net/http+json.Decoder   557433   1.00x           -            ok
     dstest  100000        parallel reader (std)   503682   0.90x           -            ok
     dstest  100000               pipeline (std)   270211   0.48x       0.54x            ok
     dstest  100000         pipeline (segmentio)  1232055   2.21x       0.56x            ok

== crash recovery: ...
     server  round  handled at kill  checkpoint at kill  first run  second run  redelivered   bound  msg/s before kill  nothing missing
     dstest      1            50000                 768      50000       99232        49232  351894             349382               ok
`

func TestParsers(t *testing.T) {
	f, err := parseCore(coreOut)
	if err != nil || len(f) != 4 || f["json sluice msg/s"] != 141046 || f["noalloc sluice x limit"] != 0.77 {
		t.Fatalf("core: %v, %v", f, err)
	}
	f, err = parsePipeline(pipelineBaseOut)
	if err != nil || len(f) != 2 || f["dstest 1000000 pipeline msg/s"] != 737455 || f["dstest 1000000 pipeline x bare"] != 0.97 {
		t.Fatalf("base pipeline: %v, %v", f, err)
	}
	f, err = parsePipeline(pipelineCurOut)
	if err != nil || len(f) != 2 || f["dstest 100000 pipeline msg/s"] != 270211 || f["dstest 100000 pipeline x bare"] != 0.48 {
		t.Fatalf("current pipeline: %v, %v", f, err)
	}
	if _, err := parseCore(strings.Replace(coreOut, "26.4            ok", "26.4       INVALID", 1)); err == nil {
		t.Fatal("an INVALID sluice run was parsed")
	}
	if _, err := parsePipeline("nothing"); err == nil {
		t.Fatal("no table parsed")
	}
}

func TestFlags(t *testing.T) {
	usage := `Usage of pipeline:
  -n string
    	throughput: stream sizes (events), comma-separated (default "1000000")
  -rounds int
    	rounds of every measurement (default 5)
  -servers string
    	servers to run against
`
	known := parseUsage(usage)
	if len(known) != 3 || !known["n"] || !known["rounds"] || !known["servers"] {
		t.Fatalf("parseUsage: %v", known)
	}
	kept, dropped := filterFlags([]string{"-n", "1000", "-decoders", "std,sonic", "-rounds=1", "-png", "x.png", "-servers", "dstest", "-short"}, known)
	if want := []string{"-n", "1000", "-rounds=1", "-servers", "dstest"}; !slices.Equal(kept, want) {
		t.Fatalf("kept %q, want %q", kept, want)
	}
	if want := []string{"-decoders", "std,sonic", "-png", "x.png", "-short"}; !slices.Equal(dropped, want) {
		t.Fatalf("dropped %q, want %q", dropped, want)
	}
}

func TestReport(t *testing.T) {
	base := []map[string]float64{{"a msg/s": 100}, {"a msg/s": 200}, {"a msg/s": 100}}
	cur := []map[string]float64{{"a msg/s": 110}, {"a msg/s": 180}, {}}
	out := report(base, cur)
	// ratios 1.1 and 0.9: median 1.0 over 2 rounds
	if !strings.Contains(out, "1.000") || !strings.Contains(out, "  2") {
		t.Fatalf("report:\n%s", out)
	}
}

// compare.sh checks its arguments before it builds anything.
func TestScriptUsage(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, args := range [][]string{{"nope"}, {}, {"-r", "0", "core"}, {"core", "extra"}} {
		out, err := exec.Command("bash", append([]string{"../compare.sh"}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("compare.sh %q: %v, want exit status 2\n%s", args, err, out)
		}
	}
}
