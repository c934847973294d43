package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/comfyq/comfyq/webhook"
)

// A Go program receiving comfyq's webhooks.
func Example_receiver() {
	// In a real receiver: webhook.ParseSecret(os.Getenv("COMFYQ_WEBHOOK_SECRET")).
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier := webhook.Verifier{Secrets: []webhook.Secret{secret}}

	mux := http.NewServeMux()
	mux.Handle("POST /hooks/comfyq", verifier.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		event, err := webhook.ParseEvent(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch event.Type {
		case webhook.EventJobSucceeded:
			var job struct {
				ID      string `json:"id"`
				Outputs []struct {
					URL string `json:"url"`
				} `json:"outputs"`
			}
			if err := json.Unmarshal(event.Data, &job); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Printf("job %s succeeded: %s (message %s)\n", job.ID, job.Outputs[0].URL, r.Header.Get(webhook.HeaderID))
		default:
			// Ignore types this receiver does not handle, including new ones.
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What comfyq sends.
	body := []byte(`{"type":"job.succeeded","timestamp":"2025-01-02T03:04:05Z",` +
		`"data":{"id":"01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e","status":"succeeded",` +
		`"outputs":[{"node_id":"9","kind":"image","url":"https://cdn.example/fox.png"}]}}`)
	post := func(h http.Header, body []byte) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/hooks/comfyq", bytes.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		maps.Copy(req.Header, h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	headers := webhook.Signer{Secrets: []webhook.Secret{secret}}.Headers("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now(), body)
	post(headers, body)

	// A forged or altered message is refused.
	post(headers, bytes.Replace(body, []byte("fox"), []byte("cat"), 1))

	// Output:
	// job 01937c9e-8f3a-7b2c-9d1e-4f5a6b7c8d9e succeeded: https://cdn.example/fox.png (message msg_2KWPBgLlAfxdpx2AI54pPJ85f4W)
	// 204 No Content
	// 401 Unauthorized
}

func ExampleSign() {
	secret, err := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(webhook.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`)))
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=
}

func ExampleSigner_Headers() {
	current, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	old, _ := webhook.ParseSecret("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
	// During a rotation, sign with both secrets.
	signer := webhook.Signer{Secrets: []webhook.Secret{current, old}}
	h := signer.Headers("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(h.Get(webhook.HeaderID))
	fmt.Println(h.Get(webhook.HeaderTimestamp))
	fmt.Println(h.Get(webhook.HeaderSignature))
	// Output:
	// msg_p5jXN8AQM9LWM0D4loKWxJek
	// 1614265330
	// v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,78nXHjpFP0tVJQW5D0SBwmVyyW87BV/rL6MgfM/Bw44=
}
