package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A task's job record is read in the round trip that makes the job the worker's (its
// in-flight entry): no read of its own, so a job costs one trip less.
func TestRecordIsReadWithTheOwnership(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rig := startCountedRig(ctx, t)
	rig.run(ctx, t, 1) // the scripts loaded
	rig.workerTrips.Reset()
	rig.run(ctx, t, 1)
	kinds := rig.workerTrips.Kinds()
	require.Zero(t, kinds["get comfyq:job:{id}"], "no read of the record on its own: %v", kinds)
	require.Equal(t, 1, kinds["pipeline [evalsha get]"], "the ownership and the read, together: %v", kinds)
}
