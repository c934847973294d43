package netguard

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// FuzzParse feeds URLs to the DNS-free part of CheckURL (syntax, scheme,
// literal and legacy numeric hosts): it must never panic, and whatever it
// accepts must have an allowed scheme, a host, and no forbidden literal
// address. (CheckURL itself is not fuzzed: random host names would go to DNS.)
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http://8.8.8.8/", "https://example.com:8443/a?b#c", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/",
		"http://2130706433/", "http://0x7f.1/", "http://0177.0.0.01/", "http://user:pw@host/", "file:///etc/passwd",
		"http:opaque", "http://[fe80::1%25eth0]/", "http://:0/", "http://1.2.3.4.5/", "http://08/", "http://0x/",
		"http://a..b/", "HTTP://EXAMPLE.COM./",
	} {
		f.Add(s)
	}
	p := Policy{}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := p.parse(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("parse(%q): error %v wraps no sentinel", raw, err)
			}
			return
		}
		if u.Hostname() == "" || !slices.Contains(p.schemes(), u.Scheme) {
			t.Fatalf("parse(%q) accepted scheme %q host %q", raw, u.Scheme, u.Hostname())
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if bad, reason := IsForbiddenIP(ip); bad {
				t.Fatalf("parse(%q) accepted a %s", raw, reason)
			}
		}
		if _, numeric, _ := parseLegacyIPv4(u.Hostname()); numeric {
			if _, err := netip.ParseAddr(u.Hostname()); err != nil {
				t.Fatalf("parse(%q) accepted the legacy numeric host %q", raw, u.Hostname())
			}
		}
	})
}

func FuzzParseLegacyIPv4(f *testing.F) {
	for _, s := range []string{"2130706433", "0x7f000001", "0177.0.0.1", "127.1", "1.2.3", "1.2.3.4.", "0x", "08", "4294967295", "4294967296", "a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		ip, numeric, ok := parseLegacyIPv4(host)
		if ok && (!numeric || !ip.Is4()) {
			t.Fatalf("parseLegacyIPv4(%q) = %v, %v, %v", host, ip, numeric, ok)
		}
		if !ok {
			if ip.IsValid() {
				t.Fatalf("parseLegacyIPv4(%q) failed but returned %v", host, ip)
			}
			if canonical, err := netip.ParseAddr(host); err == nil && canonical.Is4() {
				t.Fatalf("parseLegacyIPv4(%q) refused a dotted quad", host)
			}
			return
		}
		// The canonical form reads back as the same address.
		again, _, ok2 := parseLegacyIPv4(ip.String())
		if !ok2 || again != ip {
			t.Fatalf("parseLegacyIPv4(%q) = %v, but %v reads back as %v", host, ip, ip, again)
		}
		if canonical, err := netip.ParseAddr(host); err == nil && canonical != ip {
			t.Fatalf("parseLegacyIPv4(%q) = %v, netip says %v", host, ip, canonical)
		}
	})
}
