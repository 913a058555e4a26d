package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// bound caches the children of a metric vector by their two label values,
// so the per-task path finds its counter with one map read instead of
// hashing the labels and locking the vector (WithLabelValues). The map is
// copied on the rare insert and read without a lock.
type bound[T any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[[2]string]T]
}

// get returns the child for labels a and b, creating it with newChild
// once.
func (bd *bound[T]) get(a, b string, newChild func(a, b string) T) T {
	k := [2]string{a, b}
	if m := bd.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	bd.mu.Lock()
	defer bd.mu.Unlock()
	next := map[[2]string]T{}
	if old := bd.m.Load(); old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		next = maps.Clone(*old)
	}
	v := newChild(a, b)
	next[k] = v
	bd.m.Store(&next)
	return v
}
