package ack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// FileStore is a [CheckpointStore] that keeps one small file per key in a directory.
//
// A key's file is named after the key: its characters other than ASCII letters, digits,
// '.', '-' and '_' replaced by '_', cut to 64 bytes, followed by a hash of the whole key and
// the suffix ".checkpoint". It holds JSON, {"key": …, "offset": …}, so it can be read and
// checked by hand.
//
// Save is atomic and durable: it writes a temporary file in the same directory, syncs it,
// renames it over the key's file and syncs the directory. A crash or a failed Save leaves
// either the old value or the new one, never a mix; a leftover temporary file (named with
// a leading '.' and ending in ".tmp") is ignored by Load.
//
// Save never moves a value backwards: it reads the key's file first and ignores a position
// before the saved one (see [Supersedes]); a file that is not a checkpoint of the key is
// replaced. Saves of one key are serialized within the process and, on Linux, macOS and
// the BSDs, across processes sharing the directory, through an advisory lock (flock) on a
// file beside the key's, named like it with a leading '.' and the suffix ".lock"; a crashed
// process releases its lock. Elsewhere, processes sharing a directory are not serialized,
// and one may move another's value backwards.
//
// A FileStore is safe for concurrent use.
type FileStore struct {
	dir   string
	locks [64]sync.Mutex // striped by key hash

	// beforeRename, when set by tests, runs before the temporary file is renamed.
	beforeRename func(tmp string) error
}

var _ CheckpointStore = (*FileStore)(nil)

// NewFileStore returns a store keeping its files in dir, which it creates (with its
// parents) if missing.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("ack: NewFileStore: empty directory name")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ack: NewFileStore: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

// Dir returns the directory the store keeps its files in.
func (s *FileStore) Dir() string { return s.dir }

type fileCheckpoint struct {
	Key    string `json:"key"`
	Offset string `json:"offset"`
}

// Load reads key's file. It blocks on file I/O; ctx is checked before reading.
func (s *FileStore) Load(ctx context.Context, key string) (string, bool, error) {
	if err := checkCall(ctx, key); err != nil {
		return "", false, err
	}
	name, _ := s.path(key)
	o, found, err := s.read(name, key)
	if err != nil {
		return "", false, fmt.Errorf("ack: FileStore.Load: %w", err)
	}
	return o, found, nil
}

// Save replaces key's file atomically, as described on [FileStore], unless the file holds
// a later position, in which case it changes nothing and returns nil. It blocks on file
// I/O, on saves of the same key by other goroutines and processes, and syncs; ctx is checked
// before locking, before writing and before the rename, after which the new value is in
// place.
func (s *FileStore) Save(ctx context.Context, key, offset string) error {
	if err := checkCall(ctx, key); err != nil {
		return err
	}
	name, stripe := s.path(key)
	mu := &s.locks[stripe]
	mu.Lock()
	defer mu.Unlock()
	if err := s.save(ctx, name, key, offset); err != nil {
		return fmt.Errorf("ack: FileStore.Save %q: %w", key, err)
	}
	return nil
}

// save compares and writes under the key's lock file. Called with the key's stripe held.
func (s *FileStore) save(ctx context.Context, name, key, offset string) error {
	unlock, err := lockFile(s.lockPath(name))
	if err != nil {
		return err
	}
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	saved, found, err := s.read(name, key)
	if err != nil && !errors.Is(err, errNotCheckpoint) {
		return err
	}
	if found && (saved == offset || !Supersedes(offset, saved)) {
		return nil // there already, or behind what is there
	}
	return s.write(ctx, name, key, offset)
}

// errNotCheckpoint marks a file that is not a checkpoint of the key asked for.
var errNotCheckpoint = errors.New("not a checkpoint of this key")

// read returns the value in key's file; found is false when there is none. A file that is
// not JSON, or holds another key, is reported with an error wrapping errNotCheckpoint.
func (s *FileStore) read(name, key string) (string, bool, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var cp fileCheckpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return "", false, fmt.Errorf("checkpoint file %s is malformed: %w: %w", name, errNotCheckpoint, err)
	}
	if cp.Key != key {
		return "", false, fmt.Errorf("checkpoint file %s holds key %q, want %q: %w", name, cp.Key, key, errNotCheckpoint)
	}
	return cp.Offset, true, nil
}

// lockPath returns the name of the lock file of the checkpoint file name.
func (s *FileStore) lockPath(name string) string {
	return filepath.Join(s.dir, "."+filepath.Base(name)+".lock")
}

func (s *FileStore) write(ctx context.Context, name, key, offset string) (err error) {
	data, err := json.Marshal(fileCheckpoint{Key: key, Offset: offset})
	if err != nil {
		return err
	}
	data = append(data, '\n')
	f, err := os.CreateTemp(s.dir, "."+filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = ctx.Err(); err != nil {
		return err
	}
	if s.beforeRename != nil {
		if err = s.beforeRename(tmp); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// path returns the file name of key and its lock stripe.
func (s *FileStore) path(key string) (string, int) {
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for i := 0; i < len(key) && b.Len() < 64; i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('-')
	b.WriteString(hex.EncodeToString(sum[:8]))
	b.WriteString(".checkpoint")
	return filepath.Join(s.dir, b.String()), int(sum[8]) % len(s.locks)
}

// syncDir makes a rename in dir durable. Windows cannot sync a directory, and
// its renames need no such step.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
