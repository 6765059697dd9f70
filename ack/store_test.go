package ack_test

import (
	"context"
	"os"
	"testing"

	"github.com/sluice-go/sluice/ack"
	"github.com/sluice-go/sluice/ack/acktest"
)

func TestMemoryStore(t *testing.T) {
	acktest.TestCheckpointStore(t, func(t *testing.T) ack.CheckpointStore { return new(ack.MemoryStore) })
}

func TestFileStore(t *testing.T) {
	acktest.TestCheckpointStore(t, func(t *testing.T) ack.CheckpointStore {
		s, err := ack.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestFileStorePersists(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := ack.NewFileStore(dir + "/nested/checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "k", "42"); err != nil {
		t.Fatal(err)
	}
	s2, err := ack.NewFileStore(dir + "/nested/checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	o, found, err := s2.Load(ctx, "k")
	if err != nil || !found || o != "42" {
		t.Fatalf("Load from a second store on the same directory = (%q, %v, %v), want (42, true, nil)", o, found, err)
	}
}

func TestNewFileStoreErrors(t *testing.T) {
	if _, err := ack.NewFileStore(""); err == nil {
		t.Error("NewFileStore(\"\") succeeded")
	}
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ack.NewFileStore(file + "/sub"); err == nil {
		t.Error("NewFileStore under a regular file succeeded")
	}
}

func TestCheckpointKey(t *testing.T) {
	cases := [][2]string{{"a|b", "c"}, {"a", "b|c"}}
	if ack.CheckpointKey(cases[0][0], cases[0][1]) == ack.CheckpointKey(cases[1][0], cases[1][1]) {
		t.Fatal("distinct (pipeline, source) pairs share a key")
	}
	for _, c := range []struct{ pipeline, source, want string }{
		{"orders", "/v1/stream/orders", "orders|/v1/stream/orders"},
		{"a|b/c d", "/v1/stream/x", "a%7Cb%2Fc%20d|/v1/stream/x"}, // the name escaped
		{"p", "/v1/stream/a|b c", "p|/v1/stream/a|b c"},           // the source as given
	} {
		if got := ack.CheckpointKey(c.pipeline, c.source); got != c.want {
			t.Errorf("CheckpointKey(%q, %q) = %q, want %q", c.pipeline, c.source, got, c.want)
		}
	}
}
