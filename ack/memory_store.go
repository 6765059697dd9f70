package ack

import (
	"context"
	"sync"
)

// MemoryStore is a [CheckpointStore] that keeps values in memory, for tests and for
// pipelines that need no restart. Like every store it never moves a value backwards: a
// Save of a position before the saved one is ignored (see [Supersedes]). The zero value is
// an empty store ready to use; it is safe for concurrent use and must not be copied after
// first use.
type MemoryStore struct {
	mu      sync.Mutex
	offsets map[string]string
}

var _ CheckpointStore = (*MemoryStore)(nil)

// Load returns the offset saved for key. It does not block beyond a brief lock.
func (s *MemoryStore) Load(ctx context.Context, key string) (string, bool, error) {
	if err := checkCall(ctx, key); err != nil {
		return "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offsets[key]
	return o, ok, nil
}

// Save records offset for key, unless the saved value is a later position, in which case it
// changes nothing and returns nil. It does not block beyond a brief lock.
func (s *MemoryStore) Save(ctx context.Context, key, offset string) error {
	if err := checkCall(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offsets == nil {
		s.offsets = make(map[string]string)
	}
	if saved, ok := s.offsets[key]; ok && !Supersedes(offset, saved) {
		return nil
	}
	s.offsets[key] = offset
	return nil
}

func checkCall(ctx context.Context, key string) error {
	if key == "" {
		return ErrEmptyKey
	}
	return ctx.Err()
}
