package ack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileStoreFailedSaveKeepsOld fails a Save at its last step, just before the rename,
// and checks that the old checkpoint is still there and no temporary file is left.
func TestFileStoreFailedSaveKeepsOld(t *testing.T) {
	ctx := context.Background()
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "k", "old"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	var sawTemp bool
	s.beforeRename = func(tmp string) error {
		_, err := os.Stat(tmp)
		sawTemp = err == nil
		return boom
	}
	if err := s.Save(ctx, "k", "new"); !errors.Is(err, boom) {
		t.Fatalf("Save with a failing rename step: %v, want %v", err, boom)
	}
	if !sawTemp {
		t.Fatal("the temporary file did not exist before the rename")
	}
	o, found, err := s.Load(ctx, "k")
	if err != nil || !found || o != "old" {
		t.Fatalf("after a failed Save, Load = (%q, %v, %v), want (old, true, nil)", o, found, err)
	}
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only the checkpoint file", names)
	}
}

// TestFileStoreIgnoresLeftovers checks that a temporary file left by a crash does not
// disturb Load and Save, and that a corrupt or foreign checkpoint file is reported.
func TestFileStoreIgnoresLeftovers(t *testing.T) {
	ctx := context.Background()
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name, _ := s.path("k")
	leftover := filepath.Join(s.Dir(), "."+filepath.Base(name)+".123.tmp")
	if err := os.WriteFile(leftover, []byte(`{"key":"k","off`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Load(ctx, "k"); err != nil || found {
		t.Fatalf("Load with only a leftover temporary file = (found %v, %v), want (false, nil)", found, err)
	}
	if err := s.Save(ctx, "k", "1"); err != nil {
		t.Fatal(err)
	}
	if o, _, err := s.Load(ctx, "k"); err != nil || o != "1" {
		t.Fatalf("Load = (%q, %v), want 1", o, err)
	}

	if err := os.WriteFile(name, []byte("not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "k"); err == nil {
		t.Error("Load of a corrupt file succeeded")
	}
	if err := os.WriteFile(name, []byte(`{"key":"other","offset":"1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "k"); err == nil {
		t.Error("Load of a file holding another key succeeded")
	}
}
