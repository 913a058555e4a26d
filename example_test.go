package meetops_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/meetops/meetops"
)

// A service enqueues an operation for the meetops workers. Enqueueing the
// same operation again is a reported no-op, so a retrying caller never
// runs it twice.
func ExampleClient_Enqueue() {
	ctx := context.Background()
	// One client per process, e.g. meetops.NewClient("redis://127.0.0.1:6379/0").
	client, err := meetops.NewClient(exampleRedisURL())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	op := meetops.Dismiss{AppID: "demo-app", RoomID: "room-001"}
	info, err := client.Enqueue(ctx, op)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.State, info.Duplicate)

	info, err = client.Enqueue(ctx, op)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.State, info.Duplicate)
	// Output:
	// dismiss:322599b02d2d9687eab31a5c938aded0 pending false
	// dismiss:322599b02d2d9687eab31a5c938aded0 pending true
}

// A caller that has its own request ID uses it as the idempotency key, and
// schedules the operation for later in a queue of its choice.
func ExampleClient_Enqueue_options() {
	ctx := context.Background()
	client, err := meetops.NewClient(exampleRedisURL())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	info, err := client.Enqueue(ctx,
		meetops.HangUp{ConferenceID: "900000010", ParticipantIDs: []string{"p-001", "p-002"}},
		meetops.WithKey("incident-4711-hangup"),
		meetops.WithQueue("critical"),
		meetops.ProcessIn(10*time.Minute),
		meetops.WithMaxRetry(5),
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.Queue, info.State)

	// The same key for a different operation is refused.
	_, err = client.Enqueue(ctx,
		meetops.HangUp{ConferenceID: "900000011", ParticipantIDs: []string{"p-101"}},
		meetops.WithKey("incident-4711-hangup"), meetops.WithQueue("critical"))
	fmt.Println(errors.Is(err, meetops.ErrKeyReused))
	// Output:
	// incident-4711-hangup critical scheduled
	// true
}

// Invalid operations never reach Redis; the error names the field.
func ExampleClient_Enqueue_invalid() {
	client, err := meetops.NewClient(exampleRedisURL())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.Enqueue(context.Background(), meetops.Reclaim{Account: "member-alice"})
	var fe *meetops.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field, errors.Is(err, meetops.ErrInvalid))
	}
	fmt.Println(err)
	// Output:
	// vmr_ids true
	// vmr_ids: must list at least one ID
}

// Status finds a task by key in any queue.
func ExampleClient_Status() {
	ctx := context.Background()
	client, err := meetops.NewClient(exampleRedisURL())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	info, err := client.Enqueue(ctx, meetops.Cancel{ConferenceID: "900000001"}, meetops.WithQueue("low"))
	if err != nil {
		log.Fatal(err)
	}
	st, err := client.Status(ctx, info.Key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Op, st.Queue, st.State, string(st.Payload))
	// Output:
	// cancel low pending {"conference_id":"900000001"}
}

// One constructor takes the three Redis topologies, with the same fields
// (and, through RedisConfigFromEnv, the same environment variables) as the
// worker: one Redis by URL, a Redis Cluster by its seed nodes, or a
// Sentinel-managed primary. AckReplicas makes every enqueue wait for that
// many replicas, so a failover cannot lose an operation reported enqueued.
func ExampleNewClientFromConfig() {
	ctx := context.Background()
	cfg := meetops.RedisConfig{URL: exampleRedisURL()}
	// Or: meetops.RedisConfig{ClusterAddrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}}
	// Or: meetops.RedisConfig{SentinelAddrs: []string{"10.0.0.1:26379"}, SentinelMaster: "mymaster", AckReplicas: 1}
	// Or: cfg, err := meetops.RedisConfigFromEnv(os.Getenv)
	client, err := meetops.NewClientFromConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		log.Fatal(err)
	}
	info, err := client.Enqueue(ctx, meetops.Disable{AppID: "demo-app-2"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Key, info.State)
	fmt.Println(cfg.Topology())
	// Output:
	// disable:67674297096010d5ac4553c4b4139342 pending
	// single
}

// A producer learns that no running worker serves a queue: the enqueue
// goes through with Info.Unserved set (the task waits for a worker that
// serves its queue), CheckQueues words the warning, and with
// RequireServedQueue the enqueue is refused instead, nothing written.
func ExampleRequireServedQueue() {
	ctx := context.Background()
	client, err := meetops.NewClient(exampleRedisURL())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	info, err := client.Enqueue(ctx, meetops.Disable{AppID: "demo-app-2"}, meetops.WithQueue("reports"))
	if err != nil {
		log.Fatal(err)
	}
	if info.Unserved {
		check, err := client.CheckQueues(ctx, info.Queue)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("warning:", check.Warning())
	}

	_, err = client.Enqueue(ctx, meetops.Disable{AppID: "demo-app-3"}, meetops.WithQueue("reports"),
		meetops.RequireServedQueue())
	fmt.Println(errors.Is(err, meetops.ErrQueueUnserved), err)
	// Output:
	// warning: no running worker serves queue "reports" (no worker is running); its tasks wait until a worker serving it starts
	// true no running worker serves queue "reports" (no worker is running)
}
