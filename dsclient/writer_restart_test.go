package dsclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/refserver"
)

// restartChildEnv carries a lifetimeSpec to TestWriterLifetimeChild in a child process.
const restartChildEnv = "SLUICE_TEST_WRITER_LIFETIME"

// lifetimeSpec is one Writer lifetime run by a child process.
type lifetimeSpec struct {
	URL   string // the JSON stream
	ID    string // the writer ID, the same in every lifetime
	Life  int    // which lifetime, stored in every item
	N     int    // items to append
	Epoch int64  // WriterOptions.Epoch (0: the default)
	Out   string // file the child writes its lifetimeResult to
}

// lifetimeResult is what a child reports.
type lifetimeResult struct {
	Stats ds.WriterStats
	Epoch int64
}

type lifeItem struct {
	Life int `json:"life"`
	N    int `json:"n"`
}

// TestWriterLifetimeChild is the body of a child process of the restart tests: one Writer
// lifetime with the default options, as a restarted program would run it. It is skipped
// unless a restart test runs it.
func TestWriterLifetimeChild(t *testing.T) {
	raw := os.Getenv(restartChildEnv)
	if raw == "" {
		t.Skip("run as a child process by the restart tests")
	}
	var spec lifetimeSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := ds.DefaultWriterOptions(spec.ID)
	o.Epoch = spec.Epoch
	o.MaxBatchItems = 7 // several batches, several in flight
	w, err := ds.NewWriter(ds.NewStream(spec.URL, ds.WithContentType("application/json")), o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range spec.N {
		if err := w.AppendJSON(ctx, lifeItem{Life: spec.Life, N: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(lifetimeResult{Stats: w.Stats(), Epoch: w.Epoch()})
	if err := os.WriteFile(spec.Out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runLifetime runs one Writer lifetime in a child process (this test binary, re-executed) and
// returns what it reported.
func runLifetime(t *testing.T, spec lifetimeSpec) lifetimeResult {
	t.Helper()
	spec.Out = filepath.Join(t.TempDir(), "result.json")
	raw, _ := json.Marshal(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestWriterLifetimeChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), restartChildEnv+"="+string(raw))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lifetime %d: %v\n%s", spec.Life, err, out)
	}
	b, err := os.ReadFile(spec.Out)
	if err != nil {
		t.Fatalf("lifetime %d reported nothing: %v\n%s", spec.Life, err, out)
	}
	var res lifetimeResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// checkLifetimes reads the stream and checks that it holds every item of lifetimes 1..lives
// exactly once, each lifetime's items in order.
func checkLifetimes(t *testing.T, s *ds.Stream, lives, n int) {
	t.Helper()
	items, _, err := ds.ReadJSON[lifeItem](context.Background(), s, ds.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, lives+1)
	for _, it := range items {
		if it.Life < 1 || it.Life > lives || it.N != next[it.Life] {
			t.Fatalf("item %+v: lifetime %d expected item %d", it, it.Life, next[min(max(it.Life, 0), lives)])
		}
		next[it.Life]++
	}
	for life := 1; life <= lives; life++ {
		if next[life] != n {
			t.Fatalf("lifetime %d: %d of %d items in the stream", life, next[life], n)
		}
	}
}

// The variants of a second lifetime: the same ID with the default options, started after
// the first; after a first lifetime whose epoch is ahead of the clock (a clock that went
// back: the second is refused as stale and claims above it); and after one that used the
// very epoch the second starts at (the server answers the second's first batch as a
// duplicate of the first's).
var lifetimeVariants = []struct {
	name          string
	epoch1        func() int64
	epoch2        func(first int64) int64
	wantEpochMove bool
}{
	{"defaults", func() int64 { return 0 }, func(int64) int64 { return 0 }, false},
	{"clock went back", func() int64 { return time.Now().Add(time.Hour).UnixMilli() }, func(int64) int64 { return 0 }, true},
	{"same epoch", func() int64 { return time.Now().Add(time.Hour).UnixMilli() }, func(first int64) int64 { return first }, true},
}

// twoLifetimes runs two lifetimes of one writer ID on stream u, in two processes, calling
// between (if not nil) in between, and checks that both lifetimes' items are in the stream
// exactly once and that each lifetime counted exactly its own items.
func twoLifetimes(t *testing.T, u func() string, between func()) {
	const n = 100
	for _, v := range lifetimeVariants {
		t.Run(v.name, func(t *testing.T) {
			id := "same-id-" + name(t)
			url := u()
			if _, err := ds.NewStream(url).Create(context.Background(), ds.CreateOptions{ContentType: "application/json"}); err != nil {
				t.Fatal(err)
			}
			e1 := v.epoch1()
			r1 := runLifetime(t, lifetimeSpec{URL: url, ID: id, Life: 1, N: n, Epoch: e1})
			if between != nil {
				between()
				url = u()
			}
			r2 := runLifetime(t, lifetimeSpec{URL: url, ID: id, Life: 2, N: n, Epoch: v.epoch2(r1.Epoch)})
			checkLifetimes(t, ds.NewStream(url), 2, n)
			for i, r := range []lifetimeResult{r1, r2} {
				if r.Stats.Items != n || r.Stats.Duplicates != 0 {
					t.Errorf("lifetime %d: stats %+v, want %d items and no duplicates", i+1, r.Stats, n)
				}
			}
			if r2.Epoch <= r1.Epoch {
				t.Errorf("second lifetime's epoch %d is not above the first's %d", r2.Epoch, r1.Epoch)
			}
			if v.wantEpochMove && r2.Epoch != r1.Epoch+1 {
				t.Errorf("second lifetime's epoch %d, want the first's + 1 (%d)", r2.Epoch, r1.Epoch+1)
			}
		})
	}
}

// Issue 11.1: two lifetimes of a writer with the same ID, in two processes, against the
// in-process server: every item of both is in the stream exactly once.
func TestWriterRestartDstest(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{})
	twoLifetimes(t, func() string { return srv.StreamURL(name(t)) }, nil)
}

// The same against the reference server, in memory.
func TestRefWriterRestart(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	srv := ref(t)
	twoLifetimes(t, func() string { return srv.StreamURL(name(t)) }, nil)
}

// The same against the file-backed reference server, which is itself restarted (SIGTERM, its
// producer state kept on disk) between the two lifetimes. The variants other than the
// defaults test the writer, not the server, and run on the in-memory servers above only:
// each restart of a file-backed server takes seconds.
func TestRefWriterRestartFileBackedServerRestart(t *testing.T) {
	// Long: runs beside the package's other long tests.
	t.Parallel()
	for _, v := range lifetimeVariants[:1] {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := refserver.ForTest(t, refserver.Options{DataDir: dir})
			stream := name(t)
			id := "same-id-" + stream
			if _, err := ds.NewStream(srv.StreamURL(stream)).Create(context.Background(), ds.CreateOptions{ContentType: "application/json"}); err != nil {
				t.Fatal(err)
			}
			const n = 100
			r1 := runLifetime(t, lifetimeSpec{URL: srv.StreamURL(stream), ID: id, Life: 1, N: n, Epoch: v.epoch1()})
			srv.Stop()
			srv = refserver.ForTest(t, refserver.Options{DataDir: dir})
			r2 := runLifetime(t, lifetimeSpec{URL: srv.StreamURL(stream), ID: id, Life: 2, N: n, Epoch: v.epoch2(r1.Epoch)})
			checkLifetimes(t, ds.NewStream(srv.StreamURL(stream)), 2, n)
			if r1.Stats.Items != n || r2.Stats.Items != n || r2.Stats.Duplicates != 0 || r2.Epoch <= r1.Epoch {
				t.Fatalf("lifetimes: %+v then %+v", r1, r2)
			}
			if v.wantEpochMove && r2.Epoch != r1.Epoch+1 {
				t.Errorf("second lifetime's epoch %d, want the first's + 1 (%d)", r2.Epoch, r1.Epoch+1)
			}
		})
	}
}

// An older lifetime that still runs when a newer one starts is fenced at its next batch
// (ErrStaleEpoch) and stores nothing after the newer one's first batch: the two never
// interleave. Both lifetimes use the default options.
func TestWriterZombieFenced(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"dstest", func(t *testing.T) string { return dstest.ForTest(t, dstest.Options{}).StreamURL(name(t)) }},
		{"ref", func(t *testing.T) string { return ref(t).StreamURL(name(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := jsonStream(t, tc.url(t))
			old, err := ds.NewWriter(s, ds.WriterOptions{ID: "shared"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				old.AppendJSON(ctx, lifeItem{Life: 1, N: i})
			}
			if err := old.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			newer, _ := ds.NewWriter(s, ds.WriterOptions{ID: "shared"})
			for i := range 10 {
				newer.AppendJSON(ctx, lifeItem{Life: 2, N: i})
			}
			if err := newer.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			old.AppendJSON(ctx, lifeItem{Life: 1, N: 10})
			var e *ds.Error
			if err := old.Flush(ctx); !errors.Is(err, ds.ErrStaleEpoch) || !errors.As(err, &e) || e.Epoch != newer.Epoch() {
				t.Fatalf("older lifetime after a newer one started: %v", err)
			}
			if err := newer.Close(ctx); err != nil {
				t.Fatal(err)
			}
			old.Close(ctx)
			checkLifetimes(t, s, 2, 10)
			if newer.Epoch() <= old.Epoch() {
				t.Fatalf("epochs: older %d, newer %d", old.Epoch(), newer.Epoch())
			}
		})
	}
}
