package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a message's webhook-timestamp may be from the
// receiver's clock, in either direction, when Verifier.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// DefaultMaxBodyBytes bounds the body Verifier.Handler reads when
// Verifier.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 4 << 20

// maxIDLen bounds webhook-id; real ids are a few dozen characters.
const maxIDLen = 256

// Verification errors. Verify wraps them with details; test with errors.Is.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature is absent.
	ErrMissingHeaders = errors.New("webhook: missing required headers")
	// ErrInvalidHeaders: a header is present but malformed (a timestamp that
	// is not unix seconds, an id containing '.', a repeated header).
	ErrInvalidHeaders = errors.New("webhook: invalid headers")
	// ErrInvalidSignature: no v1 signature matches any of the secrets.
	ErrInvalidSignature = errors.New("webhook: no matching signature")
	// ErrTimestampTooOld: webhook-timestamp is older than the tolerance (a replay?).
	ErrTimestampTooOld = errors.New("webhook: message timestamp too old")
	// ErrTimestampTooNew: webhook-timestamp is further in the future than the tolerance.
	ErrTimestampTooNew = errors.New("webhook: message timestamp too new")
	// ErrNoSecrets: the Verifier has no usable secret; a configuration error.
	ErrNoSecrets = errors.New("webhook: verifier has no secrets")
)

// Verifier checks incoming Standard Webhooks messages. Receivers written in
// Go use it directly or through Handler.
type Verifier struct {
	// Secrets accepted; a message passes when any of its v1 signatures
	// matches any of them (keep the old secret here during a rotation).
	// Zero Secrets are ignored.
	Secrets []Secret
	// Tolerance is the largest accepted distance between webhook-timestamp
	// and Now, either way. Zero or negative means DefaultTolerance (5m).
	Tolerance time.Duration
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
	// MaxBodyBytes bounds the body that Handler reads; a larger body gets
	// 413. Zero or negative means DefaultMaxBodyBytes (4 MiB).
	MaxBodyBytes int64
}

// Verify checks the headers and signature of a message whose raw body is
// body (the exact bytes received: do not decode and re-encode the JSON
// first). It returns nil when the message is authentic and recent, else an
// error wrapping ErrMissingHeaders, ErrInvalidHeaders, ErrTimestampTooOld,
// ErrTimestampTooNew, ErrInvalidSignature or ErrNoSecrets.
//
// Signatures are compared in constant time. Signatures of versions other
// than v1 (such as asymmetric v1a) are skipped, as the specification asks.
//
// Verify does not detect a replayed message inside the tolerance window:
// receivers that must process a message once should remember webhook-id
// values for at least twice the tolerance.
func (v Verifier) Verify(h http.Header, body []byte) error {
	keys := make([][]byte, 0, len(v.Secrets))
	for _, s := range v.Secrets {
		if !s.IsZero() {
			keys = append(keys, []byte(s.key))
		}
	}
	if len(keys) == 0 {
		return ErrNoSecrets
	}

	id, err := singleHeader(h, HeaderID)
	if err != nil {
		return err
	}
	tsRaw, err := singleHeader(h, HeaderTimestamp)
	if err != nil {
		return err
	}
	// A signature header may be split over several lines by proxies; the
	// values together form one space-separated list.
	sigList := strings.Join(h.Values(HeaderSignature), " ")
	var missing []string
	for _, m := range []struct{ name, value string }{
		{HeaderID, id}, {HeaderTimestamp, tsRaw}, {HeaderSignature, strings.TrimSpace(sigList)},
	} {
		if m.value == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}

	if err = checkID(id); err != nil {
		return err
	}
	unix, err := parseTimestamp(tsRaw)
	if err != nil {
		return err
	}
	if err := v.checkTimestamp(unix); err != nil {
		return err
	}

	expected := make([][]byte, len(keys))
	for i, key := range keys {
		expected[i] = sum(hmac.New(sha256.New, key), id, unix, body)
	}
	for _, field := range strings.Fields(sigList) {
		version, encoded, ok := strings.Cut(field, ",")
		if !ok || version != signatureVersion {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, want := range expected {
			if hmac.Equal(got, want) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// singleHeader returns the value of a header that must not be repeated.
func singleHeader(h http.Header, name string) (string, error) {
	values := h.Values(name)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return strings.TrimSpace(values[0]), nil
	default:
		return "", fmt.Errorf("%w: %d %s headers", ErrInvalidHeaders, len(values), name)
	}
}

// CheckMessageID reports, as an error matching ErrInvalidHeaders, whether id cannot be a
// webhook-id: senders check their ids with it before signing.
func CheckMessageID(id string) error { return checkID(id) }

// checkID refuses ids that would make the signed content ambiguous
// ("{id}.{timestamp}.{body}") or that no sender would produce.
func checkID(id string) error {
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: %s is %d bytes long (limit %d)", ErrInvalidHeaders, HeaderID, len(id), maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == '.' {
			return fmt.Errorf("%w: %s contains '.'", ErrInvalidHeaders, HeaderID)
		}
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: %s contains a space or control character", ErrInvalidHeaders, HeaderID)
		}
	}
	return nil
}

// parseTimestamp parses webhook-timestamp: unix seconds, decimal digits only.
func parseTimestamp(s string) (int64, error) {
	valid := len(s) > 0 && len(s) <= 18 // 18 digits cannot overflow int64
	for i := 0; valid && i < len(s); i++ {
		valid = s[i] >= '0' && s[i] <= '9'
	}
	if !valid {
		return 0, fmt.Errorf("%w: %s %q is not unix seconds", ErrInvalidHeaders, HeaderTimestamp, truncate(s, 32))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q: %v", ErrInvalidHeaders, HeaderTimestamp, truncate(s, 32), err)
	}
	return n, nil
}

func (v Verifier) checkTimestamp(unix int64) error {
	tolerance := v.Tolerance
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	ts := time.Unix(unix, 0)
	// time.Time.Sub saturates, so absurd timestamps cannot overflow.
	if age := now.Sub(ts); age > tolerance {
		return fmt.Errorf("%w: sent %s ago, tolerance %s", ErrTimestampTooOld, age.Truncate(time.Second), tolerance)
	}
	if ahead := ts.Sub(now); ahead > tolerance {
		return fmt.Errorf("%w: %s in the future, tolerance %s", ErrTimestampTooNew, ahead.Truncate(time.Second), tolerance)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Handler returns an http.Handler for a Go receiver. It reads the request
// body (at most MaxBodyBytes), verifies it, and calls next with the exact
// body bytes when the message is authentic; r.Body is also replaced by a
// reader over those bytes. Failed verification answers 401, a body that is
// too large 413, an unreadable body 400, and a Verifier without secrets 500
// (so that the sender retries once the receiver is fixed). A nil next
// answers 204 to every verified message.
//
// next should answer 2xx once the event is safely handled: any other status
// makes comfyq deliver the message again later, with the same webhook-id,
// except 410 Gone, which stops the deliveries of that message.
func (v Verifier) Handler(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	limit := v.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				http.Error(w, fmt.Sprintf("webhook: body larger than %d bytes", limit), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "webhook: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := v.Verify(r.Header, body); err != nil {
			status := http.StatusUnauthorized
			if errors.Is(err, ErrNoSecrets) {
				status = http.StatusInternalServerError
			}
			http.Error(w, err.Error(), status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if next == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next(w, r, body)
	})
}
