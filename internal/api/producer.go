package api

import (
	"context"

	"github.com/meetops/meetops"
)

// Producer is what the API does with the producer package;
// *meetops.Client is one. Tests and the fuzz target stand in for it.
type Producer interface {
	Enqueue(ctx context.Context, op meetops.Op, opts ...meetops.Option) (meetops.Info, error)
	EnqueueBatch(ctx context.Context, reqs []meetops.Request, opts ...meetops.BatchOption) []meetops.BatchResult
	CreateBatch(ctx context.Context, spec meetops.BatchSpec) (string, error)
	SealBatch(ctx context.Context, id string) (meetops.BatchProgress, error)
	Batch(ctx context.Context, id string) (meetops.BatchProgress, error)
	Status(ctx context.Context, key string) (meetops.TaskStatus, error)
	DeadLetterPage(ctx context.Context, f meetops.DeadLetterFilter, cursor string, limit int) (meetops.DeadLetterPage, error)
	Requeue(ctx context.Context, keys ...string) []meetops.KeyResult
	Purge(ctx context.Context, keys ...string) []meetops.KeyResult
	Ping(ctx context.Context) error
}

var _ Producer = (*meetops.Client)(nil)
