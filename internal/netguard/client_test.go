package netguard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/netguard"
)

// Every server here listens on loopback; the tests contact nothing else.

// newServer starts a loopback server with a few routes:
//
//	/ok            200 "hello"
//	/bytes/N       N bytes with Content-Length
//	/stream/N      N bytes, chunked (no Content-Length)
//	/hop/N         redirects to /hop/N-1; /hop/0 is 200 "landed"
//	/redirect?to=U redirects to U
//	/status/N      answers status N
//	/block         answers once the client goes away or the test ends
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello") // a failed write shows up at the client
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(bytes.Repeat([]byte("x"), n)) // a failed write shows up at the client
	})
	mux.HandleFunc("/stream/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		for n > 0 {
			chunk := min(n, 100)
			if _, err := w.Write(bytes.Repeat([]byte("y"), chunk)); err != nil {
				return // the client went away (tests that stop reading early)
			}
			w.(http.Flusher).Flush()
			n -= chunk
		}
	})
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			_, _ = io.WriteString(w, "landed") // a failed write shows up at the client
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/status/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		w.WriteHeader(n)
	})
	mux.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv
}

func readAll(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func TestFetch_loopback(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	// Refused by default, before any connection.
	body, resp, err := netguard.Policy{}.Fetch(t.Context(), srv.URL+"/ok")
	require.ErrorIs(t, err, netguard.ErrForbiddenAddress)
	require.ErrorContains(t, err, "127.0.0.1 is a loopback address")
	require.Nil(t, body)
	require.Nil(t, resp)

	// Through localhost too.
	_, _, err = netguard.Policy{}.Fetch(t.Context(), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/ok")
	require.ErrorIs(t, err, netguard.ErrForbiddenAddress)
	require.ErrorContains(t, err, "localhost is a loopback host name")

	// Allowed with AllowPrivate.
	body, resp, err = netguard.Policy{AllowPrivate: true}.Fetch(t.Context(), srv.URL+"/ok")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "hello", readAll(t, body))

	body, _, err = netguard.Policy{AllowPrivate: true}.Fetch(t.Context(), strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/ok")
	require.NoError(t, err)
	require.Equal(t, "hello", readAll(t, body))
}

// Client checks the address it connects to, whatever the URL said: this is
// what defeats DNS rebinding (a host that resolves to a public address for
// CheckURL and to a private one for the connection).
func TestClient_checksDialedAddress(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	client := netguard.Policy{}.Client()
	defer client.CloseIdleConnections()
	for _, u := range []string{
		srv.URL + "/ok", // literal, refused before dialing
		strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/ok", // name, refused at connect time
	} {
		resp, err := client.Get(u)
		if resp != nil {
			resp.Body.Close()
		}
		require.ErrorIs(t, err, netguard.ErrForbiddenAddress, u)
		require.ErrorContains(t, err, "127.0.0.1 is a loopback address", u)
	}

	// Legacy numeric hosts are refused without asking DNS.
	_, port, splitErr := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, splitErr)
	for _, p := range []netguard.Policy{{}, {AllowPrivate: true}} {
		resp, err := p.Client().Get("http://2130706433:" + port + "/ok")
		if resp != nil {
			resp.Body.Close()
		}
		require.Error(t, err)
		require.True(t, errors.Is(err, netguard.ErrForbiddenAddress) || errors.Is(err, netguard.ErrInvalidURL), err)
	}

	// Allowed with AllowPrivate.
	allowed := netguard.Policy{AllowPrivate: true}.Client()
	defer allowed.CloseIdleConnections()
	resp, err := allowed.Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/ok")
	require.NoError(t, err)
	require.Equal(t, "hello", readAll(t, resp.Body))

	// Schemes are checked on every request.
	resp, err = allowed.Get("ftp://" + srv.Listener.Addr().String() + "/")
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, netguard.ErrInvalidURL)
}

func TestFetch_redirects(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	p := netguard.Policy{AllowPrivate: true, MaxRedirects: netguard.DefaultMaxRedirects}
	body, resp, err := p.Fetch(t.Context(), srv.URL+"/hop/3")
	require.NoError(t, err)
	require.Equal(t, "landed", readAll(t, body))
	require.Equal(t, "/hop/0", resp.Request.URL.Path)

	_, _, err = p.Fetch(t.Context(), srv.URL+"/hop/4")
	require.ErrorIs(t, err, netguard.ErrTooManyRedirects)
	require.ErrorContains(t, err, "stopped after 3")

	// The zero Policy follows no redirect: the redirect is the answer.
	p.MaxRedirects = 0
	_, _, err = p.Fetch(t.Context(), srv.URL+"/hop/1")
	statusErr, ok := errors.AsType[*netguard.StatusError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusFound, statusErr.StatusCode)

	client := p.Client()
	defer client.CloseIdleConnections()
	resp, err = client.Get(srv.URL + "/hop/1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, "/hop/0", resp.Header.Get("Location"))

	// Redirects to a scheme the policy refuses.
	p.MaxRedirects = 3
	_, _, err = p.Fetch(t.Context(), srv.URL+"/redirect?to=file:///etc/passwd")
	require.ErrorIs(t, err, netguard.ErrInvalidURL)
}

func TestFetch_bodyLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	p := netguard.Policy{AllowPrivate: true, MaxBytes: 1000}

	for _, path := range []string{"/bytes/1000", "/stream/1000", "/bytes/0", "/stream/999"} {
		body, _, err := p.Fetch(t.Context(), srv.URL+path)
		require.NoError(t, err, path)
		got := readAll(t, body)
		n, _ := strconv.Atoi(path[strings.LastIndex(path, "/")+1:])
		require.Len(t, got, n, path)
	}

	// Content-Length says too much: refused before reading.
	body, resp, err := p.Fetch(t.Context(), srv.URL+"/bytes/1001")
	require.ErrorIs(t, err, netguard.ErrTooLarge)
	require.ErrorContains(t, err, "Content-Length 1001 exceeds 1000 bytes")
	require.Nil(t, body)
	require.Nil(t, resp)

	// No Content-Length: the read fails past the limit.
	for _, size := range []int{1001, 5000} {
		body, resp, err = p.Fetch(t.Context(), srv.URL+"/stream/"+strconv.Itoa(size))
		require.NoError(t, err)
		require.Equal(t, int64(-1), resp.ContentLength)
		b, err := io.ReadAll(body)
		require.ErrorIs(t, err, netguard.ErrTooLarge)
		require.Len(t, b, 1000)
		_, err = body.Read(make([]byte, 10))
		require.ErrorIs(t, err, netguard.ErrTooLarge, "the error sticks")
		require.NoError(t, body.Close())
	}
}

func TestFetch_status(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	_, _, err := netguard.Policy{AllowPrivate: true}.Fetch(t.Context(), srv.URL+"/status/404")
	statusErr, ok := errors.AsType[*netguard.StatusError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusNotFound, statusErr.StatusCode)
	require.ErrorContains(t, err, "404 Not Found")

	// Passwords stay out of the error.
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/status/500"
	_, _, err = netguard.Policy{AllowPrivate: true}.Fetch(t.Context(), u)
	require.ErrorContains(t, err, "500 Internal Server Error")
	require.NotContains(t, err.Error(), "hunter2")
}

func TestFetch_timeout(t *testing.T) {
	t.Parallel()
	srv := newServer(t)

	_, _, err := netguard.Policy{AllowPrivate: true, Timeout: 50 * time.Millisecond}.Fetch(t.Context(), srv.URL+"/block")
	netErr, ok := errors.AsType[net.Error](err)
	require.True(t, ok, "%v", err)
	require.True(t, netErr.Timeout(), "%v", err)

	// The caller's context is honoured too.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err = netguard.Policy{AllowPrivate: true}.Fetch(ctx, srv.URL+"/block")
	require.ErrorIs(t, err, context.Canceled)
}
