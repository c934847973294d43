package netguard_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/netguard"
)

// Every URL here has a literal or numeric host, or localhost (from
// /etc/hosts): CheckURL sends none of them to DNS.

func TestCheckURL_forbidden(t *testing.T) {
	t.Parallel()

	tests := []struct {
		url     string
		addr    string
		message string
		legacy  bool // a legacy IPv4 form: refused even with AllowPrivate
	}{
		{"http://127.0.0.1/", "127.0.0.1", "netguard: 127.0.0.1 is a loopback address; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow", false},
		{"http://127.0.0.1:8188/prompt", "127.0.0.1", "", false},
		{"https://[::1]/", "::1", "netguard: ::1 is a loopback address; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow", false},
		{"http://[::1]:8080/x", "::1", "", false},
		{"http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "", false},
		{"http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", "", false},
		{"http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/", "::ffff:169.254.169.254", "", false},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", "netguard: 169.254.169.254 is a cloud metadata address; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow", false},
		{"http://[fd00:ec2::254]/", "fd00:ec2::254", "", false},
		{"http://[fe80::1%25eth0]:80/", "fe80::1%eth0", "", false},
		{"http://10.1.2.3/", "10.1.2.3", "", false},
		{"http://192.168.0.10:9000/bucket", "192.168.0.10", "", false},
		{"http://100.64.1.1/", "100.64.1.1", "", false},
		{"http://0.0.0.0:8188/", "0.0.0.0", "", false},
		// Legacy IPv4 forms (inet_aton): judged as the address they denote.
		{"http://2130706433/", "127.0.0.1", "netguard: 2130706433 resolves to loopback address 127.0.0.1; set COMFYQ_ALLOW_PRIVATE_URLS=true to allow", true},
		{"http://0x7f000001/", "127.0.0.1", "", true},
		{"http://0X7F000001:8188/", "127.0.0.1", "", true},
		{"http://0177.0.0.1/", "127.0.0.1", "", true},
		{"http://0x7f.0.0.1/", "127.0.0.1", "", true},
		{"http://127.1/", "127.0.0.1", "", true},
		{"http://127.0.1/", "127.0.0.1", "", true},
		{"http://127.0.0.1./", "127.0.0.1", "", true},
		{"http://2852039166/", "169.254.169.254", "", true},
		{"http://0xa9fea9fe/", "169.254.169.254", "", true},
		{"http://0251.0376.0251.0376/", "169.254.169.254", "", true},
		{"http://0/", "0.0.0.0", "", true},
		{"http://user:hunter2@127.0.0.1/", "127.0.0.1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := netguard.Policy{}.CheckURL(t.Context(), tt.url)
			require.ErrorIs(t, err, netguard.ErrForbiddenAddress)
			addrErr, ok := errors.AsType[*netguard.AddressError](err)
			require.True(t, ok, "%T", err)
			require.Equal(t, netip.MustParseAddr(tt.addr), addrErr.Addr)
			require.NotEmpty(t, addrErr.Reason)
			require.Contains(t, err.Error(), "COMFYQ_ALLOW_PRIVATE_URLS=true")
			require.NotContains(t, err.Error(), "hunter2")
			if tt.message != "" {
				require.EqualError(t, err, tt.message)
			}

			// Allowed with AllowPrivate, unless ambiguous.
			err = netguard.Policy{AllowPrivate: true}.CheckURL(t.Context(), tt.url)
			if tt.legacy {
				require.ErrorIs(t, err, netguard.ErrInvalidURL)
				require.ErrorContains(t, err, "legacy form")
				return
			}
			require.NoError(t, err)
		})
	}
}

// TestCheckURL_loopbackNames: localhost and the names under it mean loopback
// (RFC 6761), however they are spelled; they are refused without asking DNS, which
// may not know them with a final dot.
func TestCheckURL_loopbackNames(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://localhost/", "http://localhost.:8080/", "http://LOCALHOST./", "http://LocalHost:6379/",
		"http://api.localhost/", "http://a.b.localhost./x", "http://user:hunter2@localhost./"} {
		err := netguard.Policy{}.CheckURL(t.Context(), u)
		require.ErrorIs(t, err, netguard.ErrForbiddenAddress, u)
		require.ErrorContains(t, err, "loopback host name", u)
		require.ErrorContains(t, err, "COMFYQ_ALLOW_PRIVATE_URLS=true", u)
		require.NotContains(t, err.Error(), "hunter2")
	}
	require.NoError(t, netguard.Policy{AllowPrivate: true}.CheckURL(t.Context(), "http://localhost:8188/"))
	// Not loopback names: a label that merely contains "localhost".
	require.ErrorIs(t, netguard.Policy{}.CheckURL(t.Context(), "http://notlocalhost.invalid/"), netguard.ErrUnresolvable)
}

// TestCheckURL_unresolvable: a host that does not exist is refused with
// ErrUnresolvable, with or without AllowPrivate, so a submission names the mistake
// at once. .invalid names (RFC 6761) are refused without asking DNS.
func TestCheckURL_unresolvable(t *testing.T) {
	t.Parallel()
	for _, p := range []netguard.Policy{{}, {AllowPrivate: true}} {
		for _, u := range []string{"http://nonexistent.invalid/x.png", "https://a.b.INVALID./", "http://invalid/"} {
			err := p.CheckURL(t.Context(), u)
			require.ErrorIs(t, err, netguard.ErrUnresolvable, u)
			require.NotErrorIs(t, err, netguard.ErrForbiddenAddress, u)
		}
	}
}

// TestCheckURL_ownAddresses: an address of one of this machine's interfaces reaches
// its own services even when it is in no private range; it is refused unless
// private addresses are allowed.
func TestCheckURL_ownAddresses(t *testing.T) {
	t.Parallel()
	ifaddrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	checked := 0
	for _, a := range ifaddrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipnet.IP)
		ip = ip.Unmap()
		require.True(t, netguard.LocalAddr(ip), "%s is an interface address", ip)
		host := ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
		err := netguard.Policy{}.CheckURL(t.Context(), "http://"+host+":8080/")
		require.ErrorIs(t, err, netguard.ErrForbiddenAddress, host)
		if bad, _ := netguard.IsForbiddenIP(ip); !bad {
			require.ErrorContains(t, err, "local interface address", host)
			checked++
		}
		if ip.Zone() == "" && !ip.IsLinkLocalUnicast() {
			require.NoError(t, netguard.Policy{AllowPrivate: true}.CheckURL(t.Context(), "http://"+host+":8080/"), host)
		}
	}
	t.Logf("%d interface addresses outside the forbidden ranges refused as this machine's", checked)
	require.False(t, netguard.LocalAddr(netip.MustParseAddr("8.8.8.8")))
}

func TestCheckURL_allowedLiterals(t *testing.T) {
	t.Parallel()

	for _, u := range []string{
		"http://8.8.8.8/",
		"https://1.1.1.1:443/dns-query?x=1#frag",
		"https://[2606:4700:4700::1111]/",
		"http://user:pass@93.184.216.34/path",
		"HTTPS://8.8.8.8/", // schemes are case-insensitive
	} {
		require.NoError(t, netguard.Policy{}.CheckURL(t.Context(), u), u)
	}
	require.NoError(t, netguard.Policy{AllowedSchemes: []string{"HTTPS"}}.CheckURL(t.Context(), "https://8.8.8.8/"))
}

func TestCheckURL_invalid(t *testing.T) {
	t.Parallel()

	tests := []struct {
		policy      netguard.Policy
		url         string
		errContains string
	}{
		{netguard.Policy{}, "", "no scheme"},
		{netguard.Policy{}, "8.8.8.8/x", "no scheme"},
		{netguard.Policy{}, "//8.8.8.8/x", "no scheme"},
		{netguard.Policy{}, "file:///etc/passwd", `scheme "file" not allowed (want http or https)`},
		{netguard.Policy{}, "gopher://8.8.8.8/", `scheme "gopher" not allowed`},
		{netguard.Policy{}, "ftp://8.8.8.8/", `scheme "ftp" not allowed`},
		{netguard.Policy{AllowedSchemes: []string{"https"}}, "http://8.8.8.8/", `scheme "http" not allowed (want https)`},
		{netguard.Policy{}, "http:8.8.8.8", "has no host"},
		{netguard.Policy{}, "http:///path", "has no host"},
		{netguard.Policy{}, "http://:80/", "has no host"},
		{netguard.Policy{}, "http://user:hunter2@/", "has no host"},
		{netguard.Policy{}, "http://8.8.8.8:0/", `port "0" out of range`},
		{netguard.Policy{}, "http://8.8.8.8:65536/", `port "65536" out of range`},
		{netguard.Policy{}, "http://8.8.8.8:x/", "invalid port"},
		{netguard.Policy{}, "http://[::1/", "missing ']'"},
		{netguard.Policy{}, "http://user:hunter2@8.8.8.8:x/", "invalid port"},
		{netguard.Policy{}, "http://a b.com/", "invalid character"},
		{netguard.Policy{}, "http://" + strings.Repeat("a", 17<<10) + ".com/", "longer than"},
		// Legacy IPv4 forms of public addresses: resolvers disagree, refuse.
		{netguard.Policy{}, "http://134744072/", `host "134744072" is IPv4 address 8.8.8.8 in a legacy form; write 8.8.8.8`},
		{netguard.Policy{}, "http://0x08080808/", "legacy form"},
		{netguard.Policy{}, "http://8.8.2056/", "legacy form"},
		{netguard.Policy{AllowPrivate: true}, "http://2130706433/", "IPv4 address 127.0.0.1 in a legacy form"},
		// Numeric but not an address.
		{netguard.Policy{}, "http://4294967296/", "neither a host name nor an IPv4 address"},
		{netguard.Policy{}, "http://1.2.3.4.5/", "neither a host name nor an IPv4 address"},
		{netguard.Policy{}, "http://256.0.0.1/", "neither a host name nor an IPv4 address"},
		{netguard.Policy{}, "http://1.2.65536/", "neither a host name nor an IPv4 address"},
		{netguard.Policy{}, "http://08.0.0.1/", "neither a host name nor an IPv4 address"},
		{netguard.Policy{}, "http://0x1ffffffff/", "neither a host name nor an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.CheckURL(t.Context(), tt.url)
			require.ErrorIs(t, err, netguard.ErrInvalidURL)
			require.ErrorContains(t, err, tt.errContains)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}
