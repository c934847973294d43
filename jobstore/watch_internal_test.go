package jobstore

import (
	"testing"

	"github.com/comfyq/comfyq/job"
)

func TestBefore(t *testing.T) {
	q := &job.Job{Status: job.StatusQueued, Attempt: 1}
	run := &job.Job{Status: job.StatusRunning, Attempt: 1}
	retry := &job.Job{Status: job.StatusQueued, Attempt: 2}
	if before(run, nil) || !before(q, run) || before(run, q) || before(retry, run) || !before(run, retry) || before(run, run) {
		t.Fatal("before orders by attempt, then status")
	}
}
