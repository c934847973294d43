package delivery

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/comfyq/comfyq/webhook"
)

// DefaultEvents are the events a subscription receives when it lists none:
// every lifecycle event but job.progress, which is opt-in.
var DefaultEvents = []string{webhook.EventJobStarted, webhook.EventJobSucceeded, webhook.EventJobFailed, webhook.EventJobCanceled}

// ErrInvalidSubscription is returned (wrapped, with the reason) for a
// subscription that cannot be used.
var ErrInvalidSubscription = errors.New("webhook: invalid subscription")

// Subscription is a global webhook subscription, configured on the server:
// every job's events go to it, besides the job's own webhook.
type Subscription struct {
	// Name identifies the subscription in delivery tasks, so that the
	// deliverer finds its secrets. Default: the URL. Names must be unique.
	Name string `json:"name,omitempty"`
	// URL receives the events (http or https). Required.
	URL string `json:"url"`
	// Events lists the event types sent. Default DefaultEvents (job.progress
	// only when listed).
	Events []string `json:"events,omitempty"`
	// Secrets sign this subscription's messages. Default: the deliverer's
	// secrets (COMFYQ_WEBHOOK_SECRET). Several during a rotation.
	Secrets []webhook.Secret `json:"-"`
}

// Wants reports whether the subscription receives events of type event.
func (s Subscription) Wants(event string) bool { return wants(s.Events, event) }

// name returns the subscription's name, defaulting to its URL.
func (s Subscription) name() string {
	if s.Name != "" {
		return s.Name
	}
	return s.URL
}

// wants applies an event filter: an empty one means DefaultEvents.
func wants(filter []string, event string) bool {
	if len(filter) == 0 {
		return slices.Contains(DefaultEvents, event)
	}
	return slices.Contains(filter, event)
}

// validate checks the syntax of the subscription (its address is checked
// when a message is sent, against the deliverer's netguard policy).
func (s Subscription) validate() error {
	if err := checkDestination(s.URL); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidSubscription, s.name(), err)
	}
	for _, e := range s.Events {
		if !webhook.ValidEventType(e) {
			return fmt.Errorf("%w %q: unknown event %q (want one of %s)", ErrInvalidSubscription, s.name(), e, strings.Join(webhook.EventTypes(), ", "))
		}
	}
	return nil
}

// checkDestination checks that raw is an absolute http(s) URL with a host.
func checkDestination(raw string) error {
	if raw == "" {
		return errors.New("no URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err // url.Error repeats the URL, password included
		}
		return fmt.Errorf("URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: want http:// or https://", u.Redacted())
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", u.Redacted())
	}
	return nil
}

// validateSubscriptions checks every subscription and that names are unique.
func validateSubscriptions(subs []Subscription) error {
	seen := make(map[string]bool, len(subs))
	for _, s := range subs {
		if err := s.validate(); err != nil {
			return err
		}
		if seen[s.name()] {
			return fmt.Errorf("%w: two subscriptions are named %q; give each a distinct name", ErrInvalidSubscription, s.name())
		}
		seen[s.name()] = true
	}
	return nil
}

// subscriptionJSON is the configuration form of a Subscription.
type subscriptionJSON struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Secret  string   `json:"secret"`
	Secrets []string `json:"secrets"`
}

// ParseSubscriptions reads global subscriptions from their configuration
// form (COMFYQ_WEBHOOK_SUBSCRIPTIONS): a JSON array of objects
//
//	[{"url": "https://hooks.example.com/comfyq",
//	  "events": ["job.succeeded", "job.failed"],
//	  "secret": "whsec_…",
//	  "name": "billing"}]
//
// where only url is required; "secrets" (a list) may replace "secret" during
// a rotation. A value starting with '@' names a file holding the JSON. An
// empty value means no subscriptions. Unknown fields are refused, so that a
// typo does not silently drop a setting. Errors never contain a secret.
func ParseSubscriptions(s string) ([]Subscription, error) {
	s = strings.TrimSpace(s)
	if file, ok := strings.CutPrefix(s, "@"); ok {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSubscription, err)
		}
		s = strings.TrimSpace(string(data))
	}
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var raw []subscriptionJSON
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array of {\"url\", \"events\", \"secret\", \"name\"}: %w", ErrInvalidSubscription, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: text after the JSON array", ErrInvalidSubscription)
	}
	subs := make([]Subscription, 0, len(raw))
	for i, r := range raw {
		sub := Subscription{Name: r.Name, URL: r.URL, Events: r.Events}
		secrets := r.Secrets
		if r.Secret != "" {
			secrets = append([]string{r.Secret}, secrets...)
		}
		for _, sec := range secrets {
			parsed, err := webhook.ParseSecret(sec)
			if err != nil {
				return nil, fmt.Errorf("%w %d (%s): %w", ErrInvalidSubscription, i+1, redactURL(r.URL), err)
			}
			sub.Secrets = append(sub.Secrets, parsed)
		}
		subs = append(subs, sub)
	}
	if err := validateSubscriptions(subs); err != nil {
		return nil, err
	}
	return subs, nil
}

// ParseSecrets parses a list of secrets separated by commas or white space,
// as COMFYQ_WEBHOOK_SECRET holds during a rotation ("whsec_new,whsec_old").
func ParseSecrets(s string) ([]webhook.Secret, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	out := make([]webhook.Secret, 0, len(fields))
	for i, f := range fields {
		sec, err := webhook.ParseSecret(f)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		out = append(out, sec)
	}
	return out, nil
}

// redactURL returns raw without its password, for logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
