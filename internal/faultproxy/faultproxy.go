// Package faultproxy is an HTTP reverse proxy that injects faults between comfyq and a
// service it talks to (the S3 server in tests): it can answer with errors, refuse
// connections or add latency, for a while or until told otherwise. Requests are
// forwarded with their Host header unchanged, so signed requests (S3 SigV4) stay valid.
package faultproxy

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the proxy does with a request.
type Mode int

// Modes.
const (
	// Pass forwards requests.
	Pass Mode = iota
	// Fail answers 503 with an S3-style SlowDown error body.
	Fail
	// Drop closes the client's connection without an answer.
	Drop
)

// Proxy forwards to a target and injects faults.
type Proxy struct {
	rp      *httputil.ReverseProxy
	mu      sync.Mutex
	mode    Mode
	until   time.Time // when set, mode applies until then
	latency time.Duration

	requests atomic.Int64
	faulted  atomic.Int64
}

// New returns a proxy to target (e.g. http://127.0.0.1:7070).
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &Proxy{}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // keep the signed Host header
		},
		FlushInterval: -1,
	}
	return p, nil
}

// Set applies mode, for d (0 = until the next Set).
func (p *Proxy) Set(mode Mode, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = mode
	p.until = time.Time{}
	if d > 0 {
		p.until = time.Now().Add(d)
	}
}

// SetLatency delays every request by d.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = d
}

// Requests and Faulted count the requests seen and those that got a fault.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Faulted counts the requests that got a fault.
func (p *Proxy) Faulted() int64 { return p.faulted.Load() }

func (p *Proxy) current() (Mode, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.until.IsZero() && time.Now().After(p.until) {
		p.mode, p.until = Pass, time.Time{}
	}
	return p.mode, p.latency
}

// ServeHTTP forwards or faults one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	mode, latency := p.current()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	switch mode {
	case Fail:
		p.faulted.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected fault</Message></Error>`))
		return
	case Drop:
		p.faulted.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	p.rp.ServeHTTP(w, r)
}
