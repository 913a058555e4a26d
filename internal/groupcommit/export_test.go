package groupcommit

// Pending is how many callers wait for the next round trip.
func Pending(g *Group) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
