package metrics

import (
	"sync"
	"sync/atomic"
)

// children caches values resolved from a key, such as a stage's pre-bound counters, so that
// an event of a known key costs one map lookup and allocates nothing. The map is copied on
// write: keys are few (stage names, statuses) and new ones rare.
type children[K comparable, V any] struct {
	m   atomic.Pointer[map[K]V]
	mu  sync.Mutex
	new func(K) V
}

func newChildren[K comparable, V any](create func(K) V) *children[K, V] {
	return &children[K, V]{new: create}
}

// get returns the value of k, creating it on first use.
func (c *children[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := make(map[K]V, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	v := c.new(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
