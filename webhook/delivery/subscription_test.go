package delivery_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/webhook"
	"github.com/comfyq/comfyq/webhook/delivery"
)

func TestParseSubscriptions(t *testing.T) {
	t.Parallel()
	subs, err := delivery.ParseSubscriptions(`[
		{"url": "https://billing.example/hook", "name": "billing", "events": ["job.succeeded"], "secret": "` + testSecret + `"},
		{"url": "https://audit.example/hook", "secrets": ["` + testSecret + `", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]},
		{"url": "http://plain.example:8080/x"}
	]`)
	require.NoError(t, err)
	require.Len(t, subs, 3)
	require.Equal(t, "billing", subs[0].Name)
	require.Equal(t, []string{"job.succeeded"}, subs[0].Events)
	require.Len(t, subs[0].Secrets, 1)
	require.Equal(t, testSecret, subs[0].Secrets[0].String())
	require.Len(t, subs[1].Secrets, 2)
	require.Empty(t, subs[2].Secrets, "the default secrets sign it")

	require.True(t, subs[0].Wants(webhook.EventJobSucceeded))
	require.False(t, subs[0].Wants(webhook.EventJobFailed))
	for _, e := range delivery.DefaultEvents {
		require.True(t, subs[2].Wants(e), e)
	}
	require.False(t, subs[2].Wants(webhook.EventJobProgress), "progress is opt-in")

	for _, empty := range []string{"", "  ", "[]"} {
		subs, err := delivery.ParseSubscriptions(empty)
		require.NoError(t, err)
		require.Empty(t, subs)
	}
}

func TestParseSubscriptions_file(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "subs.json")
	require.NoError(t, os.WriteFile(path, []byte(`[{"url": "https://a.example/h"}]`+"\n"), 0o600))
	subs, err := delivery.ParseSubscriptions("@" + path)
	require.NoError(t, err)
	require.Len(t, subs, 1)
	_, err = delivery.ParseSubscriptions("@" + path + ".missing")
	require.ErrorIs(t, err, delivery.ErrInvalidSubscription)
}

func TestParseSubscriptions_errors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"url": "https://a.example"}`:                                   "JSON array",
		`[{"url": "https://a.example", "event": ["job.started"]}]`:       "unknown field",
		`[{"url": "https://a.example", "events": ["job.exploded"]}]`:     `unknown event "job.exploded"`,
		`[{"url": "ftp://a.example"}]`:                                   "want http:// or https://",
		`[{"url": "https://"}]`:                                          "no host",
		`[{}]`:                                                           "no URL",
		`[{"url": "https://a.example"}, {"url": "https://a.example"}]`:   "distinct name",
		`[{"url": "https://a.example"}] [1]`:                             "after the JSON array",
		`[{"url": "https://u:hunter2@a.example", "secret": "whsec_!!"}]`: "not standard base64",
	} {
		_, err := delivery.ParseSubscriptions(in)
		require.ErrorIs(t, err, delivery.ErrInvalidSubscription, in)
		require.Contains(t, err.Error(), want, in)
		require.NotContains(t, err.Error(), "hunter2", "no password in errors")
	}
	_, err := delivery.ParseSubscriptions(`[{"url": "https://a.example", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La"}]`)
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
	require.NotContains(t, err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2La", "no secret in errors")
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	secrets, err := delivery.ParseSecrets(testSecret + ", whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n")
	require.NoError(t, err)
	require.Len(t, secrets, 2)
	secrets, err = delivery.ParseSecrets("  ")
	require.NoError(t, err)
	require.Empty(t, secrets)
	_, err = delivery.ParseSecrets(testSecret + ",whsec_short")
	require.ErrorIs(t, err, webhook.ErrInvalidSecret)
	require.Contains(t, err.Error(), "secret 2")
}

func FuzzParseSubscriptions(f *testing.F) {
	f.Add(`[{"url": "https://a.example/h", "events": ["job.succeeded"], "secret": "` + testSecret + `", "name": "n"}]`)
	f.Add(`[{"url": "http://[::1]:80/x"}, {"url": "https://b.example", "secrets": []}]`)
	f.Add(`[]`)
	f.Add(`[{"url": "https://a.example"}] trailing`)
	f.Add(`@/nonexistent`)
	f.Fuzz(func(t *testing.T, in string) {
		if strings.HasPrefix(strings.TrimSpace(in), "@") {
			return // names a file
		}
		subs, err := delivery.ParseSubscriptions(in)
		if err != nil {
			if !errors.Is(err, delivery.ErrInvalidSubscription) && !errors.Is(err, webhook.ErrInvalidSecret) {
				t.Fatalf("ParseSubscriptions(%q): error %v wraps neither ErrInvalidSubscription nor ErrInvalidSecret", in, err)
			}
			return
		}
		names := map[string]bool{}
		for _, s := range subs {
			if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted URL %q", s.URL)
			}
			for _, e := range s.Events {
				if !webhook.ValidEventType(e) {
					t.Fatalf("accepted event %q", e)
				}
			}
			name := s.Name
			if name == "" {
				name = s.URL
			}
			if names[name] {
				t.Fatalf("accepted duplicate name %q", name)
			}
			names[name] = true
		}
	})
}
