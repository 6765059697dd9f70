package dsclient_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	ds "github.com/sluice-go/sluice/dsclient"
	"github.com/sluice-go/sluice/dsclient/dstest"
)

// chunkBytes records the Bytes of every ChunkEvent.
type chunkBytes struct {
	ds.NopObserver
	mu    sync.Mutex
	bytes []int64
}

func (o *chunkBytes) Chunk(e ds.ChunkEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bytes = append(o.bytes, e.Bytes)
}

func (o *chunkBytes) take() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.bytes
	o.bytes = nil
	return b
}

// A chunk event counts the body's bytes whichever way the chunk is read: item by item,
// decoded into typed values, or whole.
func TestChunkEventBytes(t *testing.T) {
	ctx := context.Background()
	srv := dstest.ForTest(t, dstest.Options{})
	obs := &chunkBytes{}
	s := ds.NewStream(srv.StreamURL("bytes"), ds.WithObserver(obs), ds.WithContentType("application/json"))
	if _, err := s.Create(ctx, ds.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	// Values long enough that a decoded read goes past the scanner's first buffer.
	long := `"` + strings.Repeat("y", 100_000) + `"`
	for _, v := range []string{`{"n":1}`, long, `{"n":3}`} {
		if _, err := s.Append(ctx, []byte(v), ds.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	whole, err := s.ReadAll(ctx, ds.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len(whole.Data))
	if got := obs.take(); len(got) != 1 || got[0] != want {
		t.Fatalf("ReadAll: chunk bytes %v, want [%d]", got, want)
	}
	for it, err := range s.RawItems(ctx, ds.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		_ = it
	}
	if got := obs.take(); len(got) != 1 || got[0] != want {
		t.Errorf("RawItems: chunk bytes %v, want [%d]", got, want)
	}
	if _, _, err := ds.ReadJSON[any](ctx, s, ds.ReadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := obs.take(); len(got) != 1 || got[0] != want {
		t.Errorf("ReadJSON (decoded): chunk bytes %v, want [%d]", got, want)
	}
}
