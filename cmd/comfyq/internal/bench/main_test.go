package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/comfyq/comfyq/producer"
	"github.com/comfyq/comfyq/storage"
	"github.com/comfyq/comfyq/worker"
)

// fakeWorkerEnv makes the test binary act as `comfyq worker` (a subset of its
// flags), so that the tests can run the worker as a process of its own as
// `comfyq bench` does, without building the command.
const fakeWorkerEnv = "COMFYQ_BENCH_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeWorkerEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := fakeWorker(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type nodeList []worker.NodeConfig

func (l *nodeList) String() string { return fmt.Sprint(*l) }

func (l *nodeList) Set(v string) error {
	name, u, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want NAME=URL, got %q", v)
	}
	*l = append(*l, worker.NodeConfig{Name: name, URL: u})
	return nil
}

func fakeWorker(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	redisURL := fs.String("redis", "", "")
	storageURL := fs.String("storage", "", "")
	depthFlag := fs.String("depth", "auto", "auto or a number")
	queues := fs.String("queues", "default=1", "")
	prefix := fs.String("output-prefix", "jobs", "")
	fs.String("log-level", "info", "")
	var nodes nodeList
	fs.Var(&nodes, "comfy", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	depth := 0 // auto
	if *depthFlag != "auto" {
		d, err := strconv.Atoi(*depthFlag)
		if err != nil {
			return fmt.Errorf("--depth %q: %w", *depthFlag, err)
		}
		depth = d
	}
	qs := map[string]int{}
	for _, part := range strings.Split(*queues, ",") {
		name, p, _ := strings.Cut(part, "=")
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("--queues %q: %w", *queues, err)
		}
		qs[name] = n
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rdb, err := producer.OpenRedis(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store, err := storage.Open(ctx, *storageURL)
	if err != nil {
		return err
	}
	w, err := worker.New(worker.Config{Redis: rdb, Storage: store, Nodes: nodes, Depth: depth, Queues: qs,
		OutputPrefix: *prefix, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	return w.Run(ctx, nil)
}
