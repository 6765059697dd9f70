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
	if got := ack.CheckpointKey("orders", "http://h/v1/stream/s"); got != "orders|http://h/v1/stream/s" {
		t.Fatalf("CheckpointKey = %q", got)
	}
}
