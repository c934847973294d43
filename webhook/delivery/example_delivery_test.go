package delivery_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/redis/go-redis/v9"

	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/webhook/delivery"
)

// How a comfyq process wires durable delivery: the Dispatcher turns job
// events into tasks (give it to the worker and the producer as their
// Notifier), and RunServer sends them, in this process or any other.
func Example_delivery() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()

	secrets, err := delivery.ParseSecrets(os.Getenv("COMFYQ_WEBHOOK_SECRET"))
	if err != nil {
		fmt.Println(err)
		return
	}
	subs, err := delivery.ParseSubscriptions(os.Getenv("COMFYQ_WEBHOOK_SUBSCRIPTIONS"))
	if err != nil {
		fmt.Println(err)
		return
	}
	dispatcher, err := delivery.NewDispatcher(delivery.DispatcherConfig{Redis: rdb, Subscriptions: subs})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = dispatcher // worker.Config{Notifier: dispatcher}, producer.Config{Notifier: dispatcher}

	err = delivery.RunServer(ctx, rdb, delivery.DelivererConfig{
		Secrets:          secrets,
		Subscriptions:    subs,
		AllowPrivateURLs: os.Getenv("COMFYQ_ALLOW_PRIVATE_URLS") == "true",
	})
	if err != nil {
		fmt.Println(err)
	}
}

func ExampleParseSubscriptions() {
	subs, err := delivery.ParseSubscriptions(`[
		{"name": "billing", "url": "https://billing.example.com/comfyq", "events": ["job.succeeded"]},
		{"url": "https://audit.example.com/hook", "events": ["job.started", "job.progress"]},
		{"url": "https://ops.example.com/hook"}
	]`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range subs {
		fmt.Println(s.URL, s.Wants(webhook.EventJobSucceeded), s.Wants(webhook.EventJobProgress))
	}
	// Output:
	// https://billing.example.com/comfyq true false
	// https://audit.example.com/hook false true
	// https://ops.example.com/hook true false
}
