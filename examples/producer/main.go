// Command producer is a tiny service that hands operations to meetops
// through the public package, then waits for their outcome.
//
//	go run ./cmd/worker -dev                 # prints the REDIS_URL to use
//	REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/producer
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/meetops/meetops"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if err := run(ctx, url); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, url string) error {
	client, err := meetops.NewClient(url)
	if err != nil {
		return err
	}
	defer client.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx); err != nil {
		return err
	}

	// An incident handler ends a meeting and frees its room. Its own
	// incident ID makes the key, so a retried handler enqueues nothing new.
	var keys []string
	for _, req := range []struct {
		op   meetops.Op
		opts []meetops.Option
	}{
		{meetops.HangUp{ConferenceID: "900000011", ParticipantIDs: []string{"p-101", "p-102"}}, []meetops.Option{meetops.WithKey("incident-42-hangup")}},
		{meetops.Dismiss{AppID: "demo-app", RoomID: "room-007"}, []meetops.Option{meetops.WithKey("incident-42-dismiss"), meetops.WithMaxRetry(3)}},
		{meetops.Reclaim{Account: "member-alice", VMRIDs: []string{"vmr-unassigned-1"}}, nil}, // the simulator refuses this one
	} {
		info, err := client.Enqueue(ctx, req.op, req.opts...)
		switch {
		case errors.Is(err, meetops.ErrInvalid):
			return fmt.Errorf("a bug in this producer: %w", err)
		case errors.Is(err, meetops.ErrKeyReused):
			return fmt.Errorf("the incident ID was reused for another operation: %w", err)
		case err != nil:
			return err // Redis trouble: retry later, the key keeps it idempotent
		}
		fmt.Printf("%-42s %-9s duplicate=%v\n", info.Key, info.State, info.Duplicate)
		keys = append(keys, info.Key)
	}

	// Wait (at most 30 s) until the workers are done with them.
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for _, key := range keys {
		for {
			st, err := client.Status(ctx, key)
			if err != nil {
				return err
			}
			if st.State == meetops.StateCompleted || st.State == meetops.StateArchived {
				fmt.Printf("%-42s %-9s %s\n", key, st.State, st.Result)
				break
			}
			select {
			case <-tick.C:
			case <-deadline:
				return fmt.Errorf("%s still %s after 30s: is a worker running on this Redis?", key, st.State)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
