package comfy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/comfyq/comfyq/internal/retry"
)

// FollowOptions tune Follow and Run. The zero value is ready to use.
type FollowOptions struct {
	// StallTimeout: when no event for the prompt arrives for this long, Follow checks
	// /queue and /history (default 30s); the check repeats every StallTimeout.
	StallTimeout time.Duration
	// PollInterval is how often /queue and /history are polled while the WebSocket is
	// down, and how often an unreachable node is retried (default 2s).
	PollInterval time.Duration
	// DownTimeout is how long the node may stay unreachable before Follow gives up with
	// an error wrapping ErrUnavailable (default 60s).
	DownTimeout time.Duration
	// OnEvent is called for every event of the prompt (progress, previews, executed, …)
	// and for EventReconnected/EventDisconnected, from the follower goroutine. It must
	// not block for long.
	OnEvent func(Event)
	// Subscription, when set, is used instead of subscribing anew: pass the one you
	// took with Subscribe(promptID) before QueuePrompt. Follow closes it.
	Subscription *Subscription
	// Queued tells Follow that the caller has just queued the prompt itself, with
	// Subscription taken before QueuePrompt: Follow then relies on the events and
	// skips its check of /queue and /history at the start (one /queue read a
	// prompt, the whole queue each time). It still checks at once while the WebSocket
	// is down, after a reconnect and after StallTimeout without events.
	Queued bool
	// WithoutPrompt leaves the prompt and its extra data out of the entry Follow
	// returns (its Prompt keeps Number, PromptID and OutputsToExecute): a caller that
	// queued the prompt has them, and decoding a workflow again costs more than the
	// rest of the entry.
	WithoutPrompt bool
	// FromEvents, with Queued, lets Follow return a prompt that succeeded without
	// reading /history, its entry made from its events (outputs from executed, the
	// status messages execution_start, execution_cached and execution_success), when
	// the socket delivered all of them: execution_start seen, no reconnect, nothing
	// dropped, and (on a node older than 0.38.1, whose history also lists cached
	// intermediate nodes' UI output) no cached node without an executed. Otherwise, and
	// for a prompt that failed or was interrupted, /history is read as always. The
	// entry has no Prompt but its id, and no Meta.
	FromEvents bool
}

// Defaults of FollowOptions.
const (
	DefaultStallTimeout = 30 * time.Second
	DefaultPollInterval = 2 * time.Second
	DefaultDownTimeout  = 60 * time.Second
)

// terminalGrace is how long Follow waits for `executing null` after the prompt's
// execution_success/error/interrupted before it reads /history on its own.
const terminalGrace = 2 * time.Second

func (o FollowOptions) withDefaults() FollowOptions {
	if o.StallTimeout <= 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.DownTimeout <= 0 {
		o.DownTimeout = DefaultDownTimeout
	}
	return o
}

// PromptLocation tells where a prompt is on the node.
type PromptLocation int

// Prompt locations returned by Locate.
const (
	// PromptAbsent: neither queued, running nor in the history.
	PromptAbsent PromptLocation = iota
	// PromptQueued: pending in the queue.
	PromptQueued
	// PromptRunning: executing now.
	PromptRunning
	// PromptDone: finished; its history entry is available.
	PromptDone
)

func (l PromptLocation) String() string {
	switch l {
	case PromptQueued:
		return "queued"
	case PromptRunning:
		return "running"
	case PromptDone:
		return "done"
	}
	return "absent"
}

// Locate tells where a prompt is: queued, running, done (its history entry is
// returned) or absent. It reads /queue before /history: ComfyUI writes the history
// entry before it removes the prompt from the queue, so a prompt finishing between the
// two reads is never reported absent.
//
// On a node whose capabilities (DetectCapabilities) include the jobs API, it asks GET
// /api/jobs/{id} instead, in one request.
func (c *Client) Locate(ctx context.Context, promptID string) (PromptLocation, *HistoryEntry, error) {
	if c.Capabilities().JobsAPI {
		return c.locateJob(ctx, promptID)
	}
	q, err := c.queueIDs(ctx)
	if err != nil {
		return PromptAbsent, nil, err
	}
	switch running, pending := q.contains(promptID); {
	case running:
		return PromptRunning, nil, nil
	case pending:
		return PromptQueued, nil, nil
	}
	h, err := c.History(ctx, promptID)
	switch {
	case err == nil:
		return PromptDone, h, nil
	case errors.Is(err, ErrNotFound):
		return PromptAbsent, nil, nil
	}
	return PromptAbsent, nil, err
}

// Follow waits until a queued prompt finishes and returns its history entry.
//
// Completion is `executing` with node null for the prompt, after which /history is read
// (retried briefly while it is still {}), or a history entry found by checking: after
// StallTimeout without events, after a reconnect, and every PollInterval while the
// socket is down. The WebSocket is a hint; /history is the truth.
//
// Results:
//   - success: the entry and nil;
//   - error: the entry and an *ExecutionError (errors.As);
//   - interrupted: the entry and an error wrapping ErrInterrupted;
//   - the prompt is neither queued, running nor in the history (the node restarted):
//     ErrPromptLost;
//   - the node unreachable for DownTimeout: an error wrapping ErrUnavailable;
//   - ctx done: ctx's error; Client closed: ErrClosed.
//
// Follow subscribes to the prompt itself unless opts.Subscription is given; events
// that arrived before (up to 30 s) are kept for it, provided the socket was connected.
// It also checks /queue and /history once at the start, so following a prompt that
// finished long ago (after a restart of the caller) returns at once; opts.Queued skips
// that check for a prompt the caller has just queued.
func (c *Client) Follow(ctx context.Context, promptID string, opts FollowOptions) (*HistoryEntry, error) {
	if promptID == "" {
		return nil, errors.New("comfy: Follow: empty prompt id")
	}
	sub := opts.Subscription
	if sub == nil {
		sub = c.Subscribe(promptID)
	} else if sub.promptID != promptID {
		sub.Close()
		return nil, fmt.Errorf("comfy: Follow: subscription is for prompt %q, not %q", sub.promptID, promptID)
	}
	return c.follow(ctx, sub, promptID, opts, true)
}

// Run subscribes to req.PromptID, makes sure the WebSocket is connected (if it cannot
// be, Run goes on and Follow polls), queues the prompt and follows it to the end. See
// Follow for the results; a rejected prompt gives a *ValidationError.
//
// req.PromptID is required: choose it (a UUID) so that the prompt can be found again
// if the caller restarts.
func (c *Client) Run(ctx context.Context, req PromptRequest, opts FollowOptions) (*HistoryEntry, error) {
	if req.PromptID == "" {
		return nil, errors.New("comfy: Run: PromptRequest.PromptID is required (choose a UUID)")
	}
	sub := opts.Subscription
	if sub == nil {
		sub = c.Subscribe(req.PromptID)
	} else if sub.promptID != req.PromptID {
		sub.Close()
		return nil, fmt.Errorf("comfy: Run: subscription is for prompt %q, not %q", sub.promptID, req.PromptID)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	err := c.Connect(cctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			sub.Close()
			if errors.Is(err, ErrClosed) {
				return nil, err
			}
			return nil, ctx.Err()
		}
		c.log.Warn("comfy: websocket not connected; following by polling",
			slog.String("prompt_id", req.PromptID), slog.String("error", err.Error()))
	}
	if _, err := c.QueuePrompt(ctx, req); err != nil {
		sub.Close()
		return nil, err
	}
	return c.follow(ctx, sub, req.PromptID, opts, false)
}

// follow is Follow's loop. checkNow makes it locate the prompt at once (Follow may be
// called for a prompt that finished long ago); Run, which has just queued the prompt,
// relies on the events.
func (c *Client) follow(ctx context.Context, sub *Subscription, id string, o FollowOptions, checkNow bool) (*HistoryEntry, error) {
	defer sub.Close()
	o = o.withDefaults()
	log := c.log.With(slog.String("prompt_id", id))

	timer := time.NewTimer(o.StallTimeout)
	defer timer.Stop()
	schedule := func(d time.Duration) { timer.Reset(d) }
	idle := func() time.Duration {
		if c.stream.isConnected() {
			return o.StallTimeout
		}
		return o.PollInterval
	}
	if (checkNow && !o.Queued) || !c.stream.isConnected() {
		schedule(0)
	}
	var fromEvents *streamEntry
	// Only for a prompt queued after its subscription was taken: Run, or Queued with
	// the caller's Subscription (no early buffer, whose drops are not told).
	if o.FromEvents && (!checkNow || o.Queued && o.Subscription != nil) {
		fromEvents = newStreamEntry(id, c.Capabilities().Version)
	}
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-sub.C:
			if !ok {
				return nil, ErrClosed
			}
			if o.OnEvent != nil {
				o.OnEvent(ev)
			}
			if fromEvents != nil && fromEvents.note(ev) {
				if h := fromEvents.entry(sub.Lossy()); h != nil {
					return h, nil
				}
			}
			switch ev.Type {
			case EventExecuting:
				if ev.PromptID == id && executingDone(ev) {
					h, err := c.awaitHistory(ctx, id, !o.WithoutPrompt)
					if err == nil {
						return followResult(h)
					}
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
					log.Warn("comfy: no history after executing null", slog.String("error", err.Error()))
					schedule(0)
					continue
				}
				schedule(idle())
			case EventExecutionSuccess, EventExecutionError, EventExecutionInterrupted:
				// executing null follows at once; if it is lost, read /history soon.
				schedule(min(terminalGrace, o.StallTimeout))
			case EventDisconnected, EventReconnected:
				// Messages may have been lost: look now.
				schedule(0)
			default:
				schedule(idle())
			}
		case <-timer.C:
			loc, h, err := c.Locate(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if downSince.IsZero() {
					downSince = time.Now()
				}
				if time.Since(downSince) >= o.DownTimeout {
					return nil, fmt.Errorf("comfy: following prompt %s: %w", id, err)
				}
				log.Debug("comfy: locate failed", slog.String("error", err.Error()))
				schedule(o.PollInterval)
				continue
			}
			downSince = time.Time{}
			switch loc {
			case PromptDone:
				return followResult(h)
			case PromptAbsent:
				return nil, fmt.Errorf("%w: prompt %s is neither queued, running nor in the history of %s (node restarted?)",
					ErrPromptLost, id, c.baseStr)
			}
			schedule(idle())
		}
	}
}

// awaitHistory reads /history/{id}, retrying briefly while it is still {}: seven reads,
// 25 ms apart doubling up to 800 ms.
func (c *Client) awaitHistory(ctx context.Context, id string, withPrompt bool) (*HistoryEntry, error) {
	var h *HistoryEntry
	err := retry.Do(ctx, awaitHistoryPolicy, func(ctx context.Context) error {
		var err error
		h, err = c.history(ctx, id, withPrompt)
		return err
	})
	return h, err
}

var awaitHistoryPolicy = retry.Policy{
	Backoff:     retry.Backoff{Initial: 25 * time.Millisecond},
	MaxAttempts: 7,
	Retryable:   func(err error) bool { return errors.Is(err, ErrNotFound) },
}

func followResult(h *HistoryEntry) (*HistoryEntry, error) {
	if h.Interrupted() {
		return h, fmt.Errorf("%w: prompt %s", ErrInterrupted, h.PromptID)
	}
	if e, failed := h.Failed(); failed {
		return h, e
	}
	return h, nil
}
