package ack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	if err := s.Save(ctx, "k", "a-old"); err != nil {
		t.Fatal(err)
	}
	name, _ := s.path("k")
	boom := errors.New("disk full")
	var sawTemp bool
	s.beforeRename = func(tmp string) error {
		_, err := os.Stat(tmp)
		sawTemp = err == nil
		return boom
	}
	if err := s.Save(ctx, "k", "b-new"); !errors.Is(err, boom) {
		t.Fatalf("Save with a failing rename step: %v, want %v", err, boom)
	}
	if !sawTemp {
		t.Fatal("the temporary file did not exist before the rename")
	}
	o, found, err := s.Load(ctx, "k")
	if err != nil || !found || o != "a-old" {
		t.Fatalf("after a failed Save, Load = (%q, %v, %v), want (a-old, true, nil)", o, found, err)
	}
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != filepath.Base(s.lockPath(name)) {
			names = append(names, e.Name())
		}
	}
	if len(names) != 1 {
		t.Fatalf("directory holds %v, want only the checkpoint file (and its lock file)", names)
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

// TestFileStoreStoresShareOneDirectory runs two stores on one directory, as two processes
// would, each saving rising positions of one key: the file never moves backwards, because
// saves of a key are serialized by its lock file, not only by a store's own locks.
func TestFileStoreStoresShareOneDirectory(t *testing.T) {
	if !crossProcessLock {
		t.Skip("no cross-process lock on this system")
	}
	ctx := context.Background()
	dir := t.TempDir()
	var stores [2]*FileStore
	for i := range stores {
		s, err := NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	const rounds = 40
	pos := func(i int) string {
		return Position{Offset: "0000000000000000_0000000000000010", Skip: int64(i), Seq: -1}.String()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for w, s := range stores {
		wg.Go(func() {
			for i := w; i < 2*rounds; i += 2 {
				if err := s.Save(ctx, "k", pos(i)); err != nil {
					errs <- err
				}
				saved, _, err := s.Load(ctx, "k")
				if err != nil {
					errs <- err
				} else if p, _ := ParsePosition(saved); p.Skip < int64(i) {
					errs <- fmt.Errorf("after saving skip %d, the file holds %q", i, saved)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _, err := stores[0].Load(ctx, "k"); err != nil || got != pos(2*rounds-1) {
		t.Fatalf("Load = %q, %v; want the highest position saved, %q", got, err, pos(2*rounds-1))
	}
}

// A file that is not a checkpoint of the key (corrupt, or another key's) is replaced by a
// Save, as before positions: there is no saved position to protect.
func TestFileStoreSaveRepairsForeignFile(t *testing.T) {
	ctx := context.Background()
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	name, _ := s.path("k")
	for _, content := range []string{"not json", `{"key":"other","offset":"zzz"}`} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "k", "-1"); err != nil {
			t.Fatalf("Save over %q: %v", content, err)
		}
		if o, _, err := s.Load(ctx, "k"); err != nil || o != "-1" {
			t.Fatalf("after a Save over %q: Load = %q, %v; want -1", content, o, err)
		}
	}
}
