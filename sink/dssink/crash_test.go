package dssink_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/internal/killtest"
	"github.com/sluice-go/sluice/pipeline"
	"github.com/sluice-go/sluice/sink/dssink"
	"github.com/sluice-go/sluice/source/durablestreams"
)

// The kill -9 test: a child process (this test binary, run again as TestCrashChild) runs
// stream → pipeline → stream: a Durable Streams producer with a file checkpoint store,
// processors partitioned by key, an ordered batcher per key, and the sink appending one
// result per event to an output stream. The parent SIGKILLs the child at random moments,
// over and over, and checks after each kill that the output holds no result twice and
// that the saved checkpoint is never ahead of the results; a last run goes to the end of the
// input. The output must then hold each event's result exactly once.

const crashChildEnv = "SLUICE_DSSINK_CRASH_CHILD"

// crashSpec is what the parent tells a child.
type crashSpec struct {
	In, Out string // stream URLs
	Dir     string // checkpoint store
	Fast    bool   // no slow sink: run to the end
}

type crashEvent struct {
	N   int    `json:"n"`
	Key string `json:"key"`
}

type crashResult struct {
	Pos int64  `json:"pos"`
	N   int    `json:"n"`
	Key string `json:"key"`
	Sq  int    `json:"sq"`
}

const crashName = "dssink-crash"

func TestCrashChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("run by the crash tests as a child process")
	}
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	if err := crashChild(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
}

func crashChild(ctx context.Context, spec crashSpec) error {
	store, err := ack.NewFileStore(spec.Dir)
	if err != nil {
		return err
	}
	p, err := durablestreams.NewProducer(durablestreams.ProducerOptions[crashEvent]{
		Stream:             dsclient.NewStream(spec.In),
		Name:               crashName,
		Checkpoints:        store,
		CheckpointInterval: 10 * time.Millisecond,
		Logger:             slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	sink, err := dssink.New(dssink.Options[crashEvent]{
		Stream: dsclient.NewStream(spec.Out, dsclient.WithContentType("application/json")),
		ID:     "crash",
		Value: func(m *pipeline.Message[crashEvent]) (any, error) {
			return crashResult{Pos: m.Metadata.Position, N: m.Data.N, Key: m.Data.Key, Sq: m.Data.N * m.Data.N}, nil
		},
		MaxRequestBytes: 1 << 10, // several requests per batch: kills land between them too
	})
	if err != nil {
		return err
	}
	handler := pipeline.BatchHandler[crashEvent](sink)
	var working sync.Once
	if !spec.Fast {
		handler = pipeline.BatchHandlerFunc[crashEvent](func(ctx context.Context, ms []pipeline.Message[crashEvent], info pipeline.BatchInfo) error {
			// A slow sink (about 2,000 events a second), so that every kill lands mid-run.
			pause := time.Duration(20+rand.IntN(30)) * time.Millisecond
			before := rand.IntN(2) == 0
			if before {
				time.Sleep(pause)
			}
			err := sink.HandleBatch(ctx, ms, info)
			if err == nil {
				working.Do(killtest.Println)
			}
			if !before {
				time.Sleep(pause)
			}
			return err
		})
	}
	keys := []string{"a", "b", "c"}
	pl, err := pipeline.New(pipeline.Options[crashEvent]{
		Name:     crashName,
		Producer: p,
		Processors: []pipeline.ProcessorOptions[crashEvent]{{
			Concurrency: 3,
			PartitionBy: func(m *pipeline.Message[crashEvent]) uint64 { return uint64(m.Data.N % len(keys)) },
			Handler: pipeline.HandlerFunc[crashEvent](func(_ context.Context, m *pipeline.Message[crashEvent]) error {
				m.SetBatchKey(m.Data.Key)
				return nil
			}),
		}},
		Batchers: map[string]pipeline.BatcherOptions[crashEvent]{
			"out": {Handler: handler, BatchSize: 40, BatchTimeout: 5 * time.Millisecond, Concurrency: 2, Ordered: true},
		},
		DefaultBatcher: "out",
	})
	if err != nil {
		return err
	}
	return pl.Run(ctx)
}

// checkCrashOutput fails if a result is in the output twice, or if the saved checkpoint is
// ahead of the results (an event before it without its result). It returns how many
// results there are and the checkpoint's position number (-1: none).
func checkCrashOutput(t *testing.T, out *dsclient.Stream, in *dsclient.Stream, dir string, kill int) (int, int64) {
	t.Helper()
	ctx := context.Background()
	results, _, err := dsclient.ReadJSON[crashResult](ctx, out, dsclient.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[int64]bool, len(results))
	for _, r := range results {
		if seen[r.Pos] {
			t.Fatalf("kill %d: the result of position %d is in the output twice", kill, r.Pos)
		}
		if r.Pos != int64(r.N) || r.Sq != r.N*r.N {
			t.Fatalf("kill %d: result %+v is not its event's", kill, r)
		}
		seen[r.Pos] = true
	}
	store, err := ack.NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(in.URL())
	saved, found, err := store.Load(ctx, ack.CheckpointKey(crashName, u.Path))
	if err != nil {
		t.Fatal(err)
	}
	seq := int64(-1)
	if found {
		pos, err := ack.ParsePosition(saved)
		if err != nil {
			t.Fatal(err)
		}
		seq = pos.Seq
		for p := range seq {
			if !seen[p] {
				t.Fatalf("kill %d: checkpoint %q is ahead of the output: no result for position %d", kill, saved, p)
			}
		}
	}
	return len(results), seq
}

// crashKill runs the kill cycles against the streams in and out.
func crashKill(t *testing.T, in, out *dsclient.Stream, n, kills int) {
	ctx := context.Background()
	for _, s := range []*dsclient.Stream{in, out} {
		if _, err := s.Create(ctx, dsclient.CreateOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"a", "b", "c"}
	const perAppend = 500
	batch := make([]crashEvent, 0, perAppend)
	for i := range n {
		batch = append(batch, crashEvent{N: i, Key: keys[i%len(keys)]})
		if len(batch) == perAppend || i == n-1 {
			if _, err := dsclient.AppendJSONBatch(ctx, in, batch, dsclient.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	dir := t.TempDir()
	child := func(fast bool) *exec.Cmd {
		raw, _ := json.Marshal(crashSpec{In: in.URL(), Out: out.URL(), Dir: dir, Fast: fast})
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=5m")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
		return cmd
	}
	lastResults := -1
	for kill := 1; kill <= kills; kill++ {
		cmd := child(false)
		exited := killtest.Start(t, cmd, time.Minute) // the kill is timed from the first batch written
		select {
		case err := <-exited:
			t.Fatalf("the child finished before kill %d (%v): make the input longer", kill, err)
		case <-time.After(time.Duration(1500+rand.IntN(1500)) * time.Millisecond):
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := <-exited
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, not by SIGKILL", err)
		}
		results, seq := checkCrashOutput(t, out, in, dir, kill)
		t.Logf("kill %d: %d results, checkpoint at %d", kill, results, seq)
		if results <= lastResults {
			t.Fatalf("kill %d: no new result since the last kill (%d): no progress under restarts", kill, results)
		}
		lastResults = results
	}
	if out, err := child(true).CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, out)
	}
	results, seq := checkCrashOutput(t, out, in, dir, kills+1)
	if results != n || seq != int64(n) {
		t.Fatalf("after %d kills: %d results, checkpoint at %d; want %d of each", kills, results, seq, n)
	}
}

// Issue 14: kill -9 cycles of a stream → pipeline → stream job on the in-process server
// (which the parent runs, so that it outlives every child).
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 cycles take about 20 s")
	}
	t.Parallel()
	srv := dstest.ForTest(t, dstest.Options{})
	crashKill(t, dsclient.NewStream(srv.StreamURL("crash-in")), dsclient.NewStream(srv.StreamURL("crash-out")), 30000, 8)
}

// The same against the reference server.
func TestRefCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 cycles take about 12 s")
	}
	t.Parallel()
	srv := ref(t)
	stream := name(t)
	crashKill(t, dsclient.NewStream(srv.StreamURL(stream+"-in")), dsclient.NewStream(srv.StreamURL(stream+"-out")), 15000, 4)
}
