package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// StatusError reports a non-2xx answer to Fetch.
type StatusError struct {
	URL        string // redacted
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("netguard: GET %s: %s", e.URL, e.Status)
}

// Client returns an HTTP client that enforces the policy on every request:
// the URL's scheme and literal address before sending, every address at
// connect time (so DNS rebinding cannot reach a forbidden address), every
// redirect (at most MaxRedirects, each re-checked), and Timeout. It never
// uses a proxy from the environment: a proxy would resolve the host itself,
// out of the policy's reach.
//
// Each call builds a new connection pool: keep the client and reuse it.
// Calling CheckURL first still gives the clearer error.
func (p Policy) Client() *http.Client {
	return p.client(false)
}

func (p Policy) client(oneShot bool) *http.Client {
	dialer := &net.Dialer{
		Timeout:   min(p.timeout(), 30*time.Second),
		KeepAlive: 30 * time.Second,
		Control:   p.control,
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		DisableKeepAlives:      oneShot,
	}
	return &http.Client{
		Transport:     &guardTransport{policy: p, next: tr},
		CheckRedirect: p.checkRedirect,
		Timeout:       p.timeout(),
	}
}

// control runs on every connection attempt with the address actually dialed.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check dialed address %q: %v", ErrForbiddenAddress, address, err)
	}
	return p.checkAddr("", ap.Addr().Unmap())
}

func (p Policy) checkRedirect(req *http.Request, via []*http.Request) error {
	limit := max(p.MaxRedirects, 0)
	if len(via) > limit {
		if limit == 0 {
			return http.ErrUseLastResponse
		}
		return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, limit)
	}
	if err := p.checkParsed(req.URL); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	if _, err := p.resolve(req.Context(), req.URL.Hostname()); err != nil {
		return fmt.Errorf("redirect: %w", err)
	}
	return nil
}

// guardTransport refuses requests whose URL the policy forbids before any
// DNS lookup or connection.
type guardTransport struct {
	policy Policy
	next   *http.Transport
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.policy.checkParsed(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close() // RoundTrip must close the body, even on errors
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the pool.
func (t *guardTransport) CloseIdleConnections() { t.next.CloseIdleConnections() }

// Fetch GETs raw after CheckURL and returns the response body, which fails
// with ErrTooLarge once it passes MaxBytes (at once when Content-Length says
// so), and the response for its headers; resp.Body is the same limited
// reader. The caller closes the body. A non-2xx answer is a *StatusError;
// redirects are followed up to MaxRedirects (set DefaultMaxRedirects for
// inputs), each re-checked.
func (p Policy) Fetch(ctx context.Context, raw string) (io.ReadCloser, *http.Response, error) {
	u, err := p.parse(raw)
	if err != nil {
		return nil, nil, err
	}
	if _, err = p.resolve(ctx, u.Hostname()); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	resp, err := p.client(true).Do(req)
	if err != nil {
		return nil, nil, redactURLError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		return nil, nil, &StatusError{URL: resp.Request.URL.Redacted(), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	limit := p.maxBytes()
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", ErrTooLarge, resp.ContentLength, limit)
	}
	body := &limitedBody{rc: resp.Body, remaining: limit, limit: limit}
	resp.Body = body
	return body, resp, nil
}

// redactURLError hides passwords in the URL of a *url.Error: after a
// refused redirect, http.Client reports the raw Location header.
func redactURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = u.Redacted()
		} else {
			ue.URL = "(unparsable URL)"
		}
	}
	return err
}

// limitedBody reads at most limit bytes and fails with ErrTooLarge if the
// body holds more.
type limitedBody struct {
	rc        io.ReadCloser
	remaining int64
	limit     int64
	err       error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.remaining == 0 {
		// At the limit: any further byte means the body is too large.
		var probe [1]byte
		n, err := b.rc.Read(probe[:])
		if n > 0 {
			b.err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, b.limit)
			return 0, b.err
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
