package executor

import "sync"

// stacks runs attempts on long-lived goroutines. asynq starts a fresh
// goroutine for every task, whose stack starts small and is copied each
// time it doubles on the way down through the Redis and HTTP clients; the
// worker's CPU profile showed that copying at about a tenth of the worker's
// CPU per task. A goroutine that has run an attempt keeps its grown stack
// for the next one, so the copies happen once per goroutine, not per task.
type stacks struct {
	mu   sync.Mutex
	idle []*stack
}

// stack is one long-lived goroutine: it runs the functions sent on in and
// answers each on out.
type stack struct {
	in  chan func() error
	out chan outcome
}

// outcome is what a function run on a stack returned or panicked with.
type outcome struct {
	err      error
	panicked bool
	value    any
}

// run calls f on an idle stack (a new one when none is idle) and returns
// its error; a panic in f is raised again in the caller, so asynq's own
// recovery sees it as it would have.
func (s *stacks) run(f func() error) error {
	s.mu.Lock()
	var st *stack
	if n := len(s.idle); n > 0 {
		st, s.idle = s.idle[n-1], s.idle[:n-1]
	}
	s.mu.Unlock()
	if st == nil {
		st = &stack{in: make(chan func() error), out: make(chan outcome)}
		go st.serve()
	}
	st.in <- f
	o := <-st.out
	if o.panicked {
		close(st.in) // its goroutine unwound past f: let it end
		panic(o.value)
	}
	s.mu.Lock()
	s.idle = append(s.idle, st)
	s.mu.Unlock()
	return o.err
}

func (st *stack) serve() {
	for f := range st.in {
		st.out <- st.call(f)
	}
}

func (st *stack) call(f func() error) (o outcome) {
	defer func() {
		if v := recover(); v != nil {
			o = outcome{panicked: true, value: v}
		}
	}()
	return outcome{err: f()}
}
