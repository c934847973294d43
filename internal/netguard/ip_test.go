package netguard_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/comfyq/comfyq/internal/netguard"
)

func TestIsForbiddenIP(t *testing.T) {
	t.Parallel()

	forbidden := []struct{ ip, reason string }{
		{"127.0.0.1", "loopback address"},
		{"127.255.255.254", "loopback address"},
		{"::1", "loopback address"},
		{"::ffff:127.0.0.1", "loopback address"},
		{"::ffff:7f00:1", "loopback address"},
		{"10.0.0.1", "private address"},
		{"172.16.0.1", "private address"},
		{"172.31.255.255", "private address"},
		{"192.168.1.1", "private address"},
		{"::ffff:192.168.1.1", "private address"},
		{"100.64.0.1", "carrier-grade NAT address"},
		{"100.127.255.255", "carrier-grade NAT address"},
		{"100.100.100.200", "carrier-grade NAT address"}, // Alibaba Cloud metadata
		{"169.254.169.254", "cloud metadata address"},
		{"::ffff:169.254.169.254", "cloud metadata address"},
		{"fd00:ec2::254", "cloud metadata address"},
		{"169.254.170.2", "link-local address"}, // ECS task metadata
		{"169.254.0.1", "link-local address"},
		{"fe80::1", "link-local address"},
		{"fe80::1%eth0", "link-local address"},
		{"febf:ffff::1", "link-local address"},
		{"0.0.0.0", "unspecified address"},
		{"::", "unspecified address"},
		{"::ffff:0.0.0.0", "unspecified address"},
		{"0.1.2.3", `"this network" address (0.0.0.0/8)`},
		{"224.0.0.1", "multicast address"},
		{"239.255.255.250", "multicast address"},
		{"ff02::1", "multicast address"},
		{"ff05::2", "multicast address"},
		{"255.255.255.255", "broadcast address"},
		{"240.0.0.1", "reserved address (240.0.0.0/4)"},
		{"192.0.0.192", "IETF protocol assignment address (192.0.0.0/24)"}, // Oracle Cloud metadata
		{"fc00::1", "unique local address"},
		{"fd12:3456:789a::1", "unique local address"},
		{"fec0::1", "site-local address (deprecated)"},
		{"::7f00:1", "IPv4-compatible address (deprecated)"},
		{"::8.8.8.8", "IPv4-compatible address (deprecated)"},
		{"64:ff9b::7f00:1", "loopback address via NAT64"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata address via NAT64"},
		{"64:ff9b:1::1", "local-use NAT64 address"},
		{"2002:7f00:1::1", "loopback address via 6to4"},
		{"2002:c0a8:101::1", "private address via 6to4"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo tunnel address"},
	}
	for _, tt := range forbidden {
		ip := netip.MustParseAddr(tt.ip)
		bad, reason := netguard.IsForbiddenIP(ip)
		require.True(t, bad, tt.ip)
		require.Equal(t, tt.reason, reason, tt.ip)
	}

	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.15.255.255", "172.32.0.0", "100.63.255.255",
		"100.128.0.0", "169.253.255.255", "169.255.0.0", "11.0.0.1", "223.255.255.255", "192.0.1.1",
		"192.169.0.1", "::ffff:8.8.8.8", "2606:4700:4700::1111", "2001:4860:4860::8888",
		"64:ff9b::808:808", "2002:808:808::1", "fbff::1", "fe7f::1",
	}
	for _, s := range allowed {
		bad, reason := netguard.IsForbiddenIP(netip.MustParseAddr(s))
		require.False(t, bad, "%s: %s", s, reason)
		require.Empty(t, reason, s)
	}

	bad, reason := netguard.IsForbiddenIP(netip.Addr{})
	require.True(t, bad)
	require.Equal(t, "invalid address", reason)
}
