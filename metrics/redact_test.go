package metrics_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
	"github.com/sluice-go/sluice/metrics"
	"github.com/sluice-go/sluice/pipeline"
	ds "github.com/sluice-go/sluice/source/durablestreams"
)

// keyRecorder is a checkpoint store that remembers every key and value it was given.
type keyRecorder struct {
	ack.MemoryStore
	mu    sync.Mutex
	saved []string
}

func (s *keyRecorder) Load(ctx context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	s.saved = append(s.saved, "load "+key)
	s.mu.Unlock()
	return s.MemoryStore.Load(ctx, key)
}

func (s *keyRecorder) Save(ctx context.Context, key, offset string) error {
	s.mu.Lock()
	s.saved = append(s.saved, "save "+key+" "+offset)
	s.mu.Unlock()
	return s.MemoryStore.Save(ctx, key, offset)
}

// 11.8 and 11.7: a pipeline over a stream URL that carries credentials (user info and a
// query token) shows them nowhere: not in its log records, not in a metric, not in a
// checkpoint key or value; and its log says where the run started from.
func TestCredentialsNotInLogsMetricsOrCheckpoints(t *testing.T) {
	const user, secret, token = "alice", "s3cr3t-pw", "t0k3n-q"
	srv := dstest.ForTest(t, dstest.Options{})
	ctx := context.Background()
	plain := srv.StreamURL("redact")
	if _, err := dsclient.NewStream(plain, dsclient.WithContentType("application/json")).Create(ctx, dsclient.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dsclient.AppendJSONBatch(ctx, dsclient.NewStream(plain), []map[string]int{{"n": 0}, {"n": 1}, {"n": 2}}, dsclient.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	secretURL := strings.Replace(plain, "http://", "http://"+user+":"+secret+"@", 1) + "?token=" + token

	reg := metrics.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Pipeline: "redact"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := &keyRecorder{}
	for run := range 2 { // the second run starts from the checkpoint the first saved
		p, err := ds.NewProducer(ds.ProducerOptions[map[string]int]{
			Stream:      dsclient.NewStream(secretURL, dsclient.WithObserver(m)),
			Name:        "redact",
			Checkpoints: store,
			Observer:    m,
			Logger:      logger,
		})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var mu sync.Mutex
		pl, err := pipeline.New(pipeline.Options[map[string]int]{
			Name:     "redact",
			Producer: p,
			Observer: m,
			Processors: []pipeline.ProcessorOptions[map[string]int]{{Handler: pipeline.HandlerFunc[map[string]int](
				func(context.Context, *pipeline.Message[map[string]int]) error {
					mu.Lock()
					got++
					mu.Unlock()
					return nil
				})}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.Run(ctx); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if want := []int{3, 0}[run]; got != want {
			t.Fatalf("run %d handled %d messages, want %d", run, got, want)
		}
	}

	rec := httptest.NewRecorder()
	metrics.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	exposition := rec.Body.String()
	if !strings.Contains(exposition, `sluice_ds_producer_messages_total{pipeline="redact"} 3`) {
		t.Fatalf("the metrics do not show the run:\n%s", exposition)
	}
	logMu.Lock()
	logText := logs.String()
	logMu.Unlock()
	store.mu.Lock()
	keys := strings.Join(store.saved, "\n")
	store.mu.Unlock()
	for what, text := range map[string]string{"log records": logText, "metrics": exposition, "checkpoint keys and values": keys} {
		for _, x := range []string{secret, token, user + ":"} {
			if strings.Contains(text, x) {
				t.Errorf("%s show a credential (%q):\n%s", what, x, text)
			}
		}
	}
	// Where each run started: the configured offset, then the checkpoint, by key.
	for _, want := range []string{"no checkpoint saved; reading from the configured offset", "reading from the checkpoint", "key=redact|/v1/stream/redact"} {
		if !strings.Contains(logText, want) {
			t.Errorf("the log does not say %q:\n%s", want, logText)
		}
	}
	if !strings.Contains(keys, "save redact|/v1/stream/redact ") {
		t.Errorf("no checkpoint saved under the stream's path:\n%s", keys)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)
