package netguard

import (
	"net/netip"
)

// rule forbids a prefix; the first matching rule gives the reason.
type rule struct {
	prefix netip.Prefix
	reason string
}

var rules4 = []rule{
	{netip.MustParsePrefix("169.254.169.254/32"), "cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified address"},
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network" address (0.0.0.0/8)`},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment address (192.0.0.0/24)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address (240.0.0.0/4)"},
}

var rules6 = []rule{
	{netip.MustParsePrefix("fd00:ec2::254/128"), "cloud metadata address"},
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("::1/128"), "loopback address"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible address (deprecated)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{netip.MustParsePrefix("2001::/32"), "Teredo tunnel address"},
	{netip.MustParsePrefix("fc00::/7"), "unique local address"},
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // IPv4 in the last 32 bits
	sixTo4 = netip.MustParsePrefix("2002::/16")    // IPv4 in bits 16-47
)

// IsForbiddenIP reports whether a user-supplied URL must not reach ip unless
// private addresses are allowed, and why ("loopback address", …).
//
// Forbidden: loopback, private (RFC 1918), carrier-grade NAT (100.64.0.0/10),
// link-local (169.254.0.0/16, fe80::/10) including the cloud metadata
// endpoints 169.254.169.254 and fd00:ec2::254, unspecified, 0.0.0.0/8,
// multicast, broadcast, reserved 240.0.0.0/4, 192.0.0.0/24, unique local
// (fc00::/7), deprecated site-local and IPv4-compatible IPv6, Teredo, and
// local-use NAT64. An IPv4-mapped IPv6 address (::ffff:127.0.0.1), a NAT64
// address (64:ff9b::/96) or a 6to4 address (2002::/16) is judged by the IPv4
// address it carries. An invalid Addr is forbidden. Zones are ignored.
func IsForbiddenIP(ip netip.Addr) (bool, string) {
	if !ip.IsValid() {
		return true, "invalid address"
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		return IsForbiddenIP(ip.Unmap())
	}
	if ip.Is4() {
		return match(rules4, ip)
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		if bad, reason := IsForbiddenIP(netip.AddrFrom4([4]byte(b[12:16]))); bad {
			return true, reason + " via NAT64"
		}
		return false, ""
	}
	if sixTo4.Contains(ip) {
		b := ip.As16()
		if bad, reason := IsForbiddenIP(netip.AddrFrom4([4]byte(b[2:6]))); bad {
			return true, reason + " via 6to4"
		}
		return false, ""
	}
	return match(rules6, ip)
}

func match(rules []rule, ip netip.Addr) (bool, string) {
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			return true, r.reason
		}
	}
	return false, ""
}
