package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names. http.Header canonicalizes them
// (Webhook-Id, …); HTTP header names are case-insensitive.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// signatureVersion identifies an HMAC-SHA256 signature in webhook-signature.
const signatureVersion = "v1"

// Sign returns the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of
// "{msgID}.{unix seconds of ts}.{body}" under secret. It returns "" for the
// zero Secret, so that nothing is ever signed with an empty key.
//
// msgID must not contain '.', or the signed content becomes ambiguous; the
// Verifier refuses such ids. Use the same msgID for every retry of one message.
func Sign(secret Secret, msgID string, ts time.Time, body []byte) string {
	if secret.IsZero() {
		return ""
	}
	mac := hmac.New(sha256.New, []byte(secret.key))
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(sum(mac, msgID, ts.Unix(), body))
}

// sum writes the signed content of a message into mac and returns the MAC.
func sum(mac hash.Hash, msgID string, unix int64, body []byte) []byte {
	var ts [20]byte
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(ts[:0], unix, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Signer signs outgoing messages. During a secret rotation give it the new
// and the old secret: every message then carries one signature per secret,
// and a receiver holding either secret accepts it.
type Signer struct {
	// Secrets to sign with; zero Secrets are skipped.
	Secrets []Secret
}

// Signature returns the webhook-signature value: the signatures under every
// secret, separated by spaces. It is "" when the Signer has no usable secret.
func (s Signer) Signature(msgID string, ts time.Time, body []byte) string {
	sigs := make([]string, 0, len(s.Secrets))
	for _, secret := range s.Secrets {
		if sig := Sign(secret, msgID, ts, body); sig != "" {
			sigs = append(sigs, sig)
		}
	}
	return strings.Join(sigs, " ")
}

// Headers returns the webhook-id, webhook-timestamp and webhook-signature
// headers for a message. ts is the time of this delivery attempt (a retry
// gets a new timestamp and the same msgID). webhook-signature is left out
// when the Signer has no usable secret, so that receivers refuse the
// message rather than accept an unsigned one.
func (s Signer) Headers(msgID string, ts time.Time, body []byte) http.Header {
	h := make(http.Header, 3)
	h.Set(HeaderID, msgID)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	if sig := s.Signature(msgID, ts, body); sig != "" {
		h.Set(HeaderSignature, sig)
	}
	return h
}
