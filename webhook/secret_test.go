package webhook_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/webhook"
)

// The secret of the Standard Webhooks reference test suite
// (standard-webhooks/standard-webhooks, libraries/go/webhook_test.go).
const vectorKey = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestParseSecret(t *testing.T) {
	t.Parallel()

	key24 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 24))
	key64 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 64))
	key25 := bytes.Repeat([]byte{3}, 25) // 25 bytes: base64 has padding
	key25Padded := base64.StdEncoding.EncodeToString(key25)
	key25Raw := base64.RawStdEncoding.EncodeToString(key25)
	require.NotEqual(t, key25Padded, key25Raw)

	valid := []struct {
		name, in, want string
	}{
		{"prefixed", "whsec_" + vectorKey, "whsec_" + vectorKey},
		{"bare base64", vectorKey, "whsec_" + vectorKey},
		{"surrounding white space", "  whsec_" + vectorKey + "\n", "whsec_" + vectorKey},
		{"24 bytes", "whsec_" + key24, "whsec_" + key24},
		{"64 bytes", "whsec_" + key64, "whsec_" + key64},
		{"padded", "whsec_" + key25Padded, "whsec_" + key25Padded},
		{"unpadded", "whsec_" + key25Raw, "whsec_" + key25Padded},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := webhook.ParseSecret(tt.in)
			require.NoError(t, err)
			require.False(t, s.IsZero())
			require.Equal(t, tt.want, s.String())
			again, err := webhook.ParseSecret(s.String())
			require.NoError(t, err)
			require.Equal(t, s, again)
		})
	}

	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 23))
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 65))
	invalid := []struct {
		name, in, errContains string
	}{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"prefix only", "whsec_", "no key"},
		{"not base64", "whsec_not*base64!", "base64"},
		{"url-safe base64", "whsec_" + strings.ReplaceAll(strings.ReplaceAll(
			base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 15)), "+", "-"), "/", "_"), "base64"},
		{"too short", "whsec_" + short, "23 bytes"},
		{"too long", "whsec_" + long, "65 bytes"},
		{"asymmetric secret key", "whsk_" + vectorKey, "asymmetric"},
		{"asymmetric public key", "whpk_" + vectorKey, "asymmetric"},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := webhook.ParseSecret(tt.in)
			require.ErrorIs(t, err, webhook.ErrInvalidSecret)
			require.ErrorContains(t, err, tt.errContains)
			require.True(t, s.IsZero())
			if key := strings.TrimPrefix(strings.TrimSpace(tt.in), "whsec_"); len(key) > 8 {
				require.NotContains(t, err.Error(), key, "errors must not reveal the secret")
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()

	s1, str1, err := webhook.NewSecret()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(str1, "whsec_"))
	require.Equal(t, str1, s1.String())
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(str1, "whsec_"))
	require.NoError(t, err)
	require.Len(t, key, 32)

	parsed, err := webhook.ParseSecret(str1)
	require.NoError(t, err)
	require.Equal(t, s1, parsed)

	s2, _, err := webhook.NewSecret()
	require.NoError(t, err)
	require.NotEqual(t, s1, s2)
}

func TestSecretZero(t *testing.T) {
	t.Parallel()

	var zero webhook.Secret
	require.True(t, zero.IsZero())
	require.Empty(t, zero.String())
	require.Empty(t, webhook.Sign(zero, "msg_1", testNow, []byte("{}")))
}

func TestSecretLogValue(t *testing.T) {
	t.Parallel()

	s, err := webhook.ParseSecret("whsec_" + vectorKey)
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("configured", "secret", s)
	require.NotContains(t, buf.String(), vectorKey)
	require.Contains(t, buf.String(), `"secret":"whsec_REDACTED"`)
}
