package webhook_test

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/comfyq/comfyq/webhook"
)

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{
		"whsec_" + vectorKey, vectorKey, "", "whsec_", "whsk_" + vectorKey, "whsec_not base64",
		"whsec_" + vectorKey + "=", "whsec_" + vectorKey[:31], " \twhsec_" + vectorKey + "\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := webhook.ParseSecret(in)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidSecret) {
				t.Fatalf("ParseSecret(%q): error %v does not wrap ErrInvalidSecret", in, err)
			}
			if !s.IsZero() {
				t.Fatalf("ParseSecret(%q) failed but returned a key", in)
			}
			return
		}
		if s.IsZero() {
			t.Fatalf("ParseSecret(%q) returned no key and no error", in)
		}
		again, err := webhook.ParseSecret(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseSecret(%q).String() does not round-trip: %v", in, err)
		}
	})
}

func FuzzVerify(f *testing.F) {
	secret, err := webhook.ParseSecret("whsec_" + vectorKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vectorMsgID, "1614265330", vectorSignature, []byte(vectorPayload))
	f.Add(vectorMsgID, "1614265330", "v1a,xx v2,yy "+vectorSignature, []byte(vectorPayload))
	f.Add("", "", "", []byte(nil))
	f.Add("msg.1", "-1", "v1,", []byte("{}"))
	f.Add(vectorMsgID, "99999999999999999999", "v1,,,, ,v1", []byte(vectorPayload))
	f.Add("msg_\x00", "1614265330\n", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", []byte(vectorPayload))

	v := webhook.Verifier{Secrets: []webhook.Secret{secret}, Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(webhook.HeaderID, id)
		h.Set(webhook.HeaderTimestamp, ts)
		h.Set(webhook.HeaderSignature, sig)
		err := v.Verify(h, body)
		if err == nil {
			// Accepted: the list must hold the real signature of this message.
			unix, perr := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
			if perr != nil {
				t.Fatalf("Verify accepted timestamp %q that is not unix seconds", ts)
			}
			want := webhook.Sign(secret, strings.TrimSpace(id), time.Unix(unix, 0), body)
			if !slices.Contains(strings.Fields(sig), want) {
				t.Fatalf("Verify accepted id=%q ts=%q sig=%q without the valid signature %s", id, ts, sig, want)
			}
			return
		}
		for _, sentinel := range []error{
			webhook.ErrMissingHeaders, webhook.ErrInvalidHeaders, webhook.ErrInvalidSignature,
			webhook.ErrTimestampTooOld, webhook.ErrTimestampTooNew,
		} {
			if errors.Is(err, sentinel) {
				return
			}
		}
		t.Fatalf("Verify: error %v wraps no sentinel", err)
	})
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"type":"job.succeeded","timestamp":"2025-01-02T03:04:05Z","data":{"id":"x"}}`))
	f.Add([]byte(`{"type":"","timestamp":"","data":null}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := webhook.ParseEvent(body)
		if err != nil {
			if !errors.Is(err, webhook.ErrInvalidEvent) {
				t.Fatalf("ParseEvent: error %v does not wrap ErrInvalidEvent", err)
			}
			return
		}
		if e.Type == "" || e.Timestamp.IsZero() {
			t.Fatalf("ParseEvent(%q) accepted an event without type or timestamp", body)
		}
	})
}
