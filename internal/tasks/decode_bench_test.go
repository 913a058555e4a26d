package tasks_test

import (
	"testing"

	"github.com/meetops/meetops/internal/tasks"
)

// BenchmarkDecode is the handler's per-task payload check.
func BenchmarkDecode(b *testing.B) {
	payload := []byte(`{"app_id":"demo-app-bulk","room_id":"worker-1-12345"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tasks.Decode(tasks.TypeDismiss, payload); err != nil {
			b.Fatal(err)
		}
	}
}
