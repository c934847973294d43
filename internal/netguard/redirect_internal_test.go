package netguard

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// Test servers all listen on loopback, so these tests pretend 127.0.0.1 is
// a public address while every other address keeps its real verdict: a
// server on 127.0.0.1 then plays a public host that redirects inward.
var pretendPublic = netip.MustParseAddr("127.0.0.1")

func pretendPolicy() Policy {
	return Policy{
		MaxRedirects: DefaultMaxRedirects,
		forbidden: func(ip netip.Addr) (bool, string) {
			if ip.Unmap() == pretendPublic {
				return false, ""
			}
			return IsForbiddenIP(ip)
		},
	}
}

func TestRedirectToForbiddenAddress(t *testing.T) {
	t.Parallel()

	var landed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/inside", func(w http.ResponseWriter, r *http.Request) { landed.Store(true) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	p := pretendPolicy()
	// The stand-in public host itself is fetched.
	body, _, okErr := p.Fetch(t.Context(), srv.URL+"/ok")
	require.NoError(t, okErr)
	require.NoError(t, body.Close())

	for _, target := range []string{
		"http://127.0.0.2:" + port + "/inside",            // loopback
		"http://[::1]:" + port + "/inside",                // loopback, IPv6
		"http://[::ffff:127.0.0.3]:" + port + "/inside",   // loopback, IPv4-mapped
		"http://169.254.169.254/latest/meta-data/",        // metadata
		"http://2130706434:" + port + "/inside",           // 127.0.0.2, legacy form
		"http://10.0.0.1/",                                // private
		"http://user:hunter2@192.168.1.1:" + port + "/in", // private, with a password
	} {
		_, _, err := p.Fetch(t.Context(), srv.URL+"/redirect?to="+target)
		require.ErrorIs(t, err, ErrForbiddenAddress, target)
		addrErr, ok := errors.AsType[*AddressError](err)
		require.True(t, ok, target)
		require.NotEqual(t, pretendPublic, addrErr.Addr)
		require.NotContains(t, err.Error(), "hunter2")
	}
	require.False(t, landed.Load(), "a refused redirect reached its target")

	// The same with the bare client.
	client := p.Client()
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL + "/redirect?to=http://127.0.0.2:" + port + "/inside")
	if resp != nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, ErrForbiddenAddress)
	require.False(t, landed.Load())
}

// TestOwnAddressRefusedAtDial: the dialer judges the address it connects to with
// the same rules as CheckURL, this machine's own addresses included.
func TestOwnAddressRefusedAtDial(t *testing.T) {
	t.Parallel()
	own := netip.MustParseAddr("93.184.216.34")
	p := Policy{local: func(ip netip.Addr) bool { return ip == own }}
	err := p.CheckURL(t.Context(), "http://93.184.216.34/x.png")
	require.ErrorIs(t, err, ErrForbiddenAddress)
	require.EqualError(t, err, "netguard: 93.184.216.34 is a local interface address (this machine's own); "+allowHint)
	require.ErrorIs(t, p.control("tcp4", "93.184.216.34:80", nil), ErrForbiddenAddress)
	require.NoError(t, p.control("tcp4", "93.184.216.35:80", nil))
	require.NoError(t, Policy{AllowPrivate: true, local: p.local}.CheckURL(t.Context(), "http://93.184.216.34/x.png"))
}
