package webhook_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/webhook"
)

// The published test vector of the Standard Webhooks reference Go library
// (standard-webhooks/standard-webhooks, libraries/go/webhook_test.go,
// TestWebhookSign), checked independently with openssl.
const (
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var testNow = time.Unix(vectorTimestamp, 0)

type bundle struct {
	secret   webhook.Secret
	signer   webhook.Signer
	verifier webhook.Verifier
	body     []byte
	headers  http.Header // valid headers for body at testNow
}

func setup(t *testing.T) *bundle {
	t.Helper()
	secret, err := webhook.ParseSecret("whsec_" + vectorKey)
	require.NoError(t, err)
	b := &bundle{
		secret:   secret,
		signer:   webhook.Signer{Secrets: []webhook.Secret{secret}},
		verifier: webhook.Verifier{Secrets: []webhook.Secret{secret}, Now: func() time.Time { return testNow }},
		body:     []byte(vectorPayload),
	}
	b.headers = b.signer.Headers(vectorMsgID, testNow, b.body)
	return b
}

func newSecret(t *testing.T) webhook.Secret {
	t.Helper()
	s, _, err := webhook.NewSecret()
	require.NoError(t, err)
	return s
}

func TestSign_publishedVector(t *testing.T) {
	t.Parallel()

	for _, in := range []string{"whsec_" + vectorKey, vectorKey} {
		secret, err := webhook.ParseSecret(in)
		require.NoError(t, err)
		require.Equal(t, vectorSignature, webhook.Sign(secret, vectorMsgID, testNow, []byte(vectorPayload)))
		// Only whole seconds are signed.
		require.Equal(t, vectorSignature, webhook.Sign(secret, vectorMsgID, testNow.Add(999*time.Millisecond), []byte(vectorPayload)))
	}
}

func TestSigner_Headers(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.Equal(t, vectorMsgID, b.headers.Get("webhook-id"))
	require.Equal(t, strconv.Itoa(vectorTimestamp), b.headers.Get("webhook-timestamp"))
	require.Equal(t, vectorSignature, b.headers.Get("webhook-signature"))
	require.Len(t, b.headers, 3)

	// A Signer without usable secrets sends no signature at all.
	h := webhook.Signer{Secrets: []webhook.Secret{{}}}.Headers(vectorMsgID, testNow, b.body)
	require.Empty(t, h.Values(webhook.HeaderSignature))
	require.ErrorIs(t, b.verifier.Verify(h, b.body), webhook.ErrMissingHeaders)
}

func TestVerify_valid(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.NoError(t, b.verifier.Verify(b.headers, b.body))

	// Header names are case-insensitive on the wire; Go canonicalizes them,
	// and a server receives them canonicalized.
	raw := http.Header{}
	raw.Set("WEBHOOK-ID", vectorMsgID)
	raw.Set("Webhook-Timestamp", strconv.Itoa(vectorTimestamp))
	raw.Set("webhook-signature", vectorSignature)
	require.NoError(t, b.verifier.Verify(raw, b.body))
}

func TestVerify_rotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	oldSecret, newSecret_ := newSecret(t), newSecret(t)
	now := func() time.Time { return testNow }

	// The sender signs with both secrets during the rotation.
	h := webhook.Signer{Secrets: []webhook.Secret{newSecret_, oldSecret}}.Headers(vectorMsgID, testNow, b.body)
	require.Len(t, strings.Fields(h.Get(webhook.HeaderSignature)), 2)
	for name, secrets := range map[string][]webhook.Secret{
		"receiver still on the old secret": {oldSecret},
		"receiver already on the new one":  {newSecret_},
		"receiver accepting both":          {oldSecret, newSecret_},
	} {
		v := webhook.Verifier{Secrets: secrets, Now: now}
		require.NoError(t, v.Verify(h, b.body), name)
	}

	// A receiver accepting both secrets takes a message signed with either.
	both := webhook.Verifier{Secrets: []webhook.Secret{oldSecret, newSecret_}, Now: now}
	for _, s := range []webhook.Secret{oldSecret, newSecret_} {
		require.NoError(t, both.Verify(webhook.Signer{Secrets: []webhook.Secret{s}}.Headers(vectorMsgID, testNow, b.body), b.body))
	}

	// Neither secret: refused.
	require.ErrorIs(t, b.verifier.Verify(h, b.body), webhook.ErrInvalidSignature)
}

func TestVerify_tampered(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		modify func(h http.Header, body []byte) []byte
	}{
		{"body changed", func(h http.Header, body []byte) []byte {
			return []byte(`{"test": 2432232315}`)
		}},
		{"body re-encoded", func(h http.Header, body []byte) []byte {
			return []byte(`{"test":2432232314}`)
		}},
		{"body extended", func(h http.Header, body []byte) []byte {
			return append(body, '\n')
		}},
		{"id changed", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderID, "msg_p5jXN8AQM9LWM0D4loKWxJeK")
			return body
		}},
		{"timestamp changed", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp+1))
			return body
		}},
		{"signature from the reference suite's invalid case", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
			return body
		}},
		{"signature truncated", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderSignature, vectorSignature[:len(vectorSignature)-4])
			return body
		}},
		{"valid signature under another version", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderSignature, "v2"+strings.TrimPrefix(vectorSignature, "v1"))
			return body
		}},
		{"valid signature as v1a (asymmetric)", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderSignature, "v1a"+strings.TrimPrefix(vectorSignature, "v1"))
			return body
		}},
		{"signature without version", func(h http.Header, body []byte) []byte {
			h.Set(webhook.HeaderSignature, strings.TrimPrefix(vectorSignature, "v1,"))
			return body
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			h := b.headers.Clone()
			body := tt.modify(h, bytes.Clone(b.body))
			require.ErrorIs(t, b.verifier.Verify(h, body), webhook.ErrInvalidSignature)
		})
	}
}

func TestVerify_multipleSignatures(t *testing.T) {
	t.Parallel()
	b := setup(t)

	// The reference suite's multi-signature case: one valid v1 among
	// invalid and unknown-version ones.
	for _, list := range []string{
		"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " +
			vectorSignature + " v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
		"v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== " + vectorSignature,
		"garbage ,,, v1, v1,!!! " + vectorSignature,
		"  " + vectorSignature + "  ",
	} {
		h := b.headers.Clone()
		h.Set(webhook.HeaderSignature, list)
		require.NoError(t, b.verifier.Verify(h, b.body), list)
	}

	// Split over two header lines by a proxy.
	h := b.headers.Clone()
	h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
	h.Add(webhook.HeaderSignature, vectorSignature)
	require.NoError(t, b.verifier.Verify(h, b.body))
}

func TestVerify_tolerance(t *testing.T) {
	t.Parallel()
	b := setup(t)

	at := func(now time.Time, tolerance time.Duration) error {
		v := b.verifier
		v.Now = func() time.Time { return now }
		v.Tolerance = tolerance
		return v.Verify(b.headers, b.body)
	}

	// Default: five minutes either way, bounds included.
	require.NoError(t, at(testNow.Add(5*time.Minute), 0))
	require.NoError(t, at(testNow.Add(-5*time.Minute), 0))
	require.ErrorIs(t, at(testNow.Add(5*time.Minute+time.Second), 0), webhook.ErrTimestampTooOld)
	require.ErrorIs(t, at(testNow.Add(-5*time.Minute-time.Second), 0), webhook.ErrTimestampTooNew)

	// Custom tolerance.
	require.NoError(t, at(testNow.Add(time.Hour), 2*time.Hour))
	require.ErrorIs(t, at(testNow.Add(31*time.Second), 30*time.Second), webhook.ErrTimestampTooOld)
	require.ErrorIs(t, at(testNow.Add(-31*time.Second), 30*time.Second), webhook.ErrTimestampTooNew)
	require.ErrorIs(t, at(testNow.Add(-6*time.Minute), -time.Second), webhook.ErrTimestampTooNew, "negative means default")

	// The error says how far off the message is.
	require.ErrorContains(t, at(testNow.Add(time.Hour), 0), "sent 1h0m0s ago, tolerance 5m0s")
	require.ErrorContains(t, at(testNow.Add(-time.Hour), 0), "1h0m0s in the future, tolerance 5m0s")

	// Absurd timestamps do not overflow.
	h := b.headers.Clone()
	h.Set(webhook.HeaderTimestamp, "999999999999999999")
	require.ErrorIs(t, b.verifier.Verify(h, b.body), webhook.ErrTimestampTooNew)
	h.Set(webhook.HeaderTimestamp, "0")
	require.ErrorIs(t, b.verifier.Verify(h, b.body), webhook.ErrTimestampTooOld)

	// Default clock: a message signed just now passes.
	v := webhook.Verifier{Secrets: []webhook.Secret{b.secret}}
	require.NoError(t, v.Verify(b.signer.Headers(vectorMsgID, time.Now(), b.body), b.body))
	require.ErrorIs(t, v.Verify(b.headers, b.body), webhook.ErrTimestampTooOld)
}

func TestVerify_malformedHeaders(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		modify func(h http.Header)
		want   error
	}{
		{"no headers", func(h http.Header) { clear(h) }, webhook.ErrMissingHeaders},
		{"no id", func(h http.Header) { h.Del(webhook.HeaderID) }, webhook.ErrMissingHeaders},
		{"no timestamp", func(h http.Header) { h.Del(webhook.HeaderTimestamp) }, webhook.ErrMissingHeaders},
		{"no signature", func(h http.Header) { h.Del(webhook.HeaderSignature) }, webhook.ErrMissingHeaders},
		{"empty id", func(h http.Header) { h.Set(webhook.HeaderID, "") }, webhook.ErrMissingHeaders},
		{"blank signature", func(h http.Header) { h.Set(webhook.HeaderSignature, "   ") }, webhook.ErrMissingHeaders},
		{"timestamp in milliseconds format", func(h http.Header) { h.Set(webhook.HeaderTimestamp, "1614265330.5") }, webhook.ErrInvalidHeaders},
		{"timestamp RFC 3339", func(h http.Header) { h.Set(webhook.HeaderTimestamp, "2021-02-25T15:02:10Z") }, webhook.ErrInvalidHeaders},
		{"timestamp signed", func(h http.Header) { h.Set(webhook.HeaderTimestamp, "+1614265330") }, webhook.ErrInvalidHeaders},
		{"timestamp negative", func(h http.Header) { h.Set(webhook.HeaderTimestamp, "-1") }, webhook.ErrInvalidHeaders},
		{"timestamp huge", func(h http.Header) { h.Set(webhook.HeaderTimestamp, strings.Repeat("9", 40)) }, webhook.ErrInvalidHeaders},
		{"timestamp hex", func(h http.Header) { h.Set(webhook.HeaderTimestamp, "0x603bbff2") }, webhook.ErrInvalidHeaders},
		{"id with a dot", func(h http.Header) { h.Set(webhook.HeaderID, "msg_1.1614265330") }, webhook.ErrInvalidHeaders},
		{"id with a space", func(h http.Header) { h.Set(webhook.HeaderID, "msg 1") }, webhook.ErrInvalidHeaders},
		{"id too long", func(h http.Header) { h.Set(webhook.HeaderID, "msg_"+strings.Repeat("x", 300)) }, webhook.ErrInvalidHeaders},
		{"two ids", func(h http.Header) { h.Add(webhook.HeaderID, "msg_other") }, webhook.ErrInvalidHeaders},
		{"two timestamps", func(h http.Header) { h.Add(webhook.HeaderTimestamp, "1614265331") }, webhook.ErrInvalidHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			h := b.headers.Clone()
			tt.modify(h)
			err := b.verifier.Verify(h, b.body)
			require.ErrorIs(t, err, tt.want)
		})
	}

	b := setup(t)
	h := b.headers.Clone()
	h.Del(webhook.HeaderID)
	h.Del(webhook.HeaderSignature)
	require.EqualError(t, b.verifier.Verify(h, b.body), "webhook: missing required headers: webhook-id, webhook-signature")
}

func TestVerify_noSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t)

	for _, v := range []webhook.Verifier{{}, {Secrets: []webhook.Secret{{}}}} {
		require.ErrorIs(t, v.Verify(b.headers, b.body), webhook.ErrNoSecrets)
	}
	// A zero Secret beside a real one is ignored: it never matches a
	// signature made with an empty key.
	zeroKey := http.Header{}
	zeroKey.Set(webhook.HeaderID, vectorMsgID)
	zeroKey.Set(webhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	zeroKey.Set(webhook.HeaderSignature, emptyKeySignature)
	v := webhook.Verifier{Secrets: []webhook.Secret{{}, b.secret}, Now: b.verifier.Now}
	require.ErrorIs(t, v.Verify(zeroKey, b.body), webhook.ErrInvalidSignature)
	require.NoError(t, v.Verify(b.headers, b.body))
}

// emptyKeySignature signs the vector message with an empty HMAC key
// (computed with openssl): what a forger would send to a receiver that
// accepted an empty secret.
const emptyKeySignature = "v1,woH/1mJtZGSMCmpFTxRYbStS24eLLD/oXIYr4PYyZ7g="

func TestHandler(t *testing.T) {
	t.Parallel()

	type got struct {
		body, rBody []byte
		id          string
	}
	newServer := func(t *testing.T, v webhook.Verifier, next func(w http.ResponseWriter, r *http.Request, body []byte)) *httptest.Server {
		srv := httptest.NewServer(v.Handler(next))
		t.Cleanup(srv.Close)
		return srv
	}
	post := func(t *testing.T, url string, h http.Header, body []byte) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
		require.NoError(t, err)
		maps.Copy(req.Header, h)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		msg, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(msg)
	}

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := make(chan got, 1)
		srv := newServer(t, b.verifier, func(w http.ResponseWriter, r *http.Request, body []byte) {
			rBody, _ := io.ReadAll(r.Body)
			calls <- got{body: body, rBody: rBody, id: r.Header.Get(webhook.HeaderID)}
			w.WriteHeader(http.StatusAccepted)
		})
		status, _ := post(t, srv.URL, b.headers, b.body)
		require.Equal(t, http.StatusAccepted, status)
		c := <-calls
		require.Equal(t, b.body, c.body)
		require.Equal(t, b.body, c.rBody)
		require.Equal(t, vectorMsgID, c.id)
	})

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		srv := newServer(t, b.verifier, func(w http.ResponseWriter, r *http.Request, body []byte) {
			t.Error("next called for a message that failed verification")
		})
		status, msg := post(t, srv.URL, b.headers, []byte(`{"test": 1}`))
		require.Equal(t, http.StatusUnauthorized, status)
		require.Contains(t, msg, "no matching signature")

		status, msg = post(t, srv.URL, http.Header{}, b.body)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Contains(t, msg, "missing required headers")
	})

	t.Run("body too large", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		v := b.verifier
		v.MaxBodyBytes = int64(len(b.body)) - 1
		srv := newServer(t, v, func(w http.ResponseWriter, r *http.Request, body []byte) {
			t.Error("next called for an oversized body")
		})
		status, _ := post(t, srv.URL, b.headers, b.body)
		require.Equal(t, http.StatusRequestEntityTooLarge, status)

		v.MaxBodyBytes = int64(len(b.body))
		srv = newServer(t, v, nil)
		status, _ = post(t, srv.URL, b.headers, b.body)
		require.Equal(t, http.StatusNoContent, status, "a body of exactly the limit passes")
	})

	t.Run("no secrets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		srv := newServer(t, webhook.Verifier{}, nil)
		status, _ := post(t, srv.URL, b.headers, b.body)
		require.Equal(t, http.StatusInternalServerError, status)
	})
}
