package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// cpuTimes is the CPU time (user + system) spent so far by this process, by a
// worker process and by the Redis server. On a machine whose cores the simulated
// nodes share with comfyq, it says where the cores went.
type cpuTimes struct {
	bench, worker, redis time.Duration
}

// readCPU reads the three clocks; pid 0 is no worker process. A clock that cannot be
// read (not Linux, a Redis without INFO) is left at 0 and so is its share.
func readCPU(ctx context.Context, rdb redis.UniversalClient, pid int) cpuTimes {
	var c cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		c.bench = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid != 0 {
		c.worker, _ = procCPU(pid)
	}
	if rdb != nil {
		c.redis, _ = redisCPU(ctx, rdb)
	}
	return c
}

// since is the CPU spent between start and c.
func (c cpuTimes) since(start cpuTimes) cpuTimes {
	return cpuTimes{bench: c.bench - start.bench, worker: c.worker - start.worker, redis: c.redis - start.redis}
}

// perJob sets the result's CPU columns from the CPU the run's jobs spent.
func (c cpuTimes) perJob(r *Result, jobs int) {
	if jobs <= 0 {
		return
	}
	per := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond)/float64(jobs), 3) }
	r.BenchCPUMSPerJob, r.WorkerCPUMSPerJob, r.RedisCPUMSPerJob = per(c.bench), per(c.worker), per(c.redis)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux
// architecture Go runs on (the kernel fixes it for user space, whatever its HZ).
const clockTicks = 100

// procCPU reads a process's user and system time, all its threads, from
// /proc/PID/stat (fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: read process CPU (Linux only): %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: the fields
	// counted start after its closing one, at field 3.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// redisCPU reads the server's used_cpu_user + used_cpu_sys (INFO cpu): every thread
// of the server, so the Redis of a run should be its own (the default, a
// redis-server started for the run).
func redisCPU(ctx context.Context, rdb redis.UniversalClient) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	found := 0
	for line := range strings.Lines(info) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "used_cpu_user" && name != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: Redis INFO cpu %s: %w", name, err)
		}
		total += f
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("bench: Redis INFO cpu has no used_cpu_user/used_cpu_sys")
	}
	return time.Duration(total * float64(time.Second)), nil
}
