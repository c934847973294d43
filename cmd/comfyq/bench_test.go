package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/testenv"
)

func TestBenchJSON(t *testing.T) {
	t.Parallel()
	redisURL := testenv.NewRedis(t)
	code, out, errOut := run(t, context.Background(), "bench", "--scenario", "pipelining", "--jobs", "2",
		"--time-scale", "0.02", "--redis", redisURL, "--json", "--log-level", "warn")
	require.Equal(t, 0, code, errOut)
	var rows []struct {
		Scenario     string  `json:"scenario"`
		Name         string  `json:"name"`
		Jobs         int     `json:"jobs"`
		Succeeded    int     `json:"succeeded"`
		JobsPerS     float64 `json:"jobs_per_s"`
		BusyFraction float64 `json:"busy_fraction"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 3, "depth 1, 2 and auto")
	for _, r := range rows {
		require.Equal(t, "pipelining", r.Scenario)
		require.Equal(t, 2, r.Succeeded)
		require.Positive(t, r.JobsPerS)
	}
}

func TestBenchTableInProcessMemory(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, context.Background(), "bench", "--scenario", "memory", "--in-process",
		"--large-output", "1048576", "--redis", testenv.NewRedis(t), "--log-level", "warn")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "comfyq in-process → file")
	require.Contains(t, out, "process heap")
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	code, _, errOut := run(t, context.Background(), "bench", "--scenario", "speed")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--scenario "speed"`)
	code, _, _ = run(t, context.Background(), "bench", "--jobs", "-3")
	require.Equal(t, 2, code)
	code, _, errOut = run(t, context.Background(), "bench", "--skip", "recovery,speed")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `--skip "speed"`)
}

// TestBenchSkip: all without the scenarios --skip names (here every one but
// roundtrips), and the roundtrips row's count of Redis round trips in the JSON.
func TestBenchSkip(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, context.Background(), "bench", "--skip", "pipelining,throughput,memory",
		"--skip", "baseline, recovery", "--jobs", "3", "--time-scale", "0.02", "--redis", testenv.NewRedis(t),
		"--json", "--log-level", "warn")
	require.Equal(t, 0, code, errOut)
	var rows []struct {
		Scenario         string             `json:"scenario"`
		Succeeded        int                `json:"succeeded"`
		RedisTripsPerJob float64            `json:"redis_trips_per_job"`
		RedisTrips       map[string]float64 `json:"redis_trips"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 1)
	require.Equal(t, "roundtrips", rows[0].Scenario)
	require.Equal(t, 3, rows[0].Succeeded)
	require.Positive(t, rows[0].RedisTripsPerJob)
	require.NotEmpty(t, rows[0].RedisTrips)
}
