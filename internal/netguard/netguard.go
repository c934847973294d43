// Package netguard makes outbound HTTP requests to user-supplied URLs (input
// image URLs, webhook destinations) without letting a user reach the
// server's own network: loopback, private, link-local and cloud metadata
// addresses, and the addresses of the machine's own interfaces, are refused
// unless private addresses are explicitly allowed (COMFYQ_ALLOW_PRIVATE_URLS).
// Hosts that do not exist are refused too (ErrUnresolvable).
//
// Addresses are checked twice: [Policy.CheckURL] resolves the host up front
// to give the submitter a clear error, and the dialer of [Policy.Client]
// checks the address it actually connects to, so a host whose DNS answer
// changes between the two (DNS rebinding) still cannot reach a forbidden
// address. Redirects are checked the same way.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults for zero Policy fields.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBytes = 64 << 20
	// DefaultMaxRedirects is what callers fetching inputs should set;
	// webhook delivery leaves MaxRedirects at 0 (a redirect is a failure).
	DefaultMaxRedirects = 3
)

// allowHint ends every ErrForbiddenAddress message.
const allowHint = "set COMFYQ_ALLOW_PRIVATE_URLS=true to allow"

// maxURLLen bounds the URLs accepted (presigned URLs run to a few KiB).
const maxURLLen = 16 << 10

// Errors returned, wrapped with details; test with errors.Is.
var (
	ErrInvalidURL       = errors.New("netguard: invalid URL")
	ErrForbiddenAddress = errors.New("netguard: forbidden address")
	ErrTooManyRedirects = errors.New("netguard: too many redirects")
	ErrTooLarge         = errors.New("netguard: response body too large")
	// ErrUnresolvable: the host name does not exist (NXDOMAIN) or has no address.
	// A lookup that fails otherwise (timeout, no DNS server) is not this error.
	ErrUnresolvable = errors.New("netguard: cannot resolve host")
)

// AddressError reports a host that is or resolves to a forbidden address.
// It matches ErrForbiddenAddress.
type AddressError struct {
	Host   string     // host as written in the URL
	Addr   netip.Addr // the forbidden address; invalid for a forbidden name (localhost.)
	Reason string     // from IsForbiddenIP, e.g. "loopback address"
}

func (e *AddressError) Error() string {
	if !e.Addr.IsValid() {
		return fmt.Sprintf("netguard: %s is a %s; %s", e.Host, e.Reason, allowHint)
	}
	if e.Host == "" || e.Host == e.Addr.String() {
		return fmt.Sprintf("netguard: %s is a %s; %s", e.Addr, e.Reason, allowHint)
	}
	return fmt.Sprintf("netguard: %s resolves to %s %s; %s", e.Host, e.Reason, e.Addr, allowHint)
}

// Unwrap makes errors.Is(err, ErrForbiddenAddress) true.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// Policy says which user-supplied URLs may be fetched and how. The zero
// Policy allows http and https to public addresses, follows no redirect,
// reads at most DefaultMaxBytes and gives up after DefaultTimeout.
type Policy struct {
	// AllowPrivate lets URLs reach loopback, private, link-local and
	// metadata addresses (COMFYQ_ALLOW_PRIVATE_URLS). Default false.
	AllowPrivate bool
	// AllowedSchemes lists the URL schemes accepted (case-insensitive).
	// Default http and https.
	AllowedSchemes []string
	// MaxRedirects is how many redirects to follow, each checked like the
	// first URL. Default 0: a redirect is not followed, and Client returns
	// the 3xx response itself. Fetching inputs uses DefaultMaxRedirects.
	MaxRedirects int
	// MaxBytes bounds a response body read through Fetch. Default
	// DefaultMaxBytes (64 MiB).
	MaxBytes int64
	// Timeout bounds a whole request, reading the body included. Default
	// DefaultTimeout (30s).
	Timeout time.Duration

	// forbidden replaces IsForbiddenIP and the check of this machine's own
	// addresses in tests, where every server is on loopback.
	forbidden func(netip.Addr) (bool, string)
	// local replaces LocalAddr in tests.
	local func(netip.Addr) bool
}

func (p Policy) schemes() []string {
	if len(p.AllowedSchemes) == 0 {
		return []string{"http", "https"}
	}
	return p.AllowedSchemes
}

func (p Policy) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

func (p Policy) maxBytes() int64 {
	if p.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return p.MaxBytes
}

// checkAddr returns an *AddressError when the policy forbids ip.
func (p Policy) checkAddr(host string, ip netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	if bad, reason := p.judge(ip); bad {
		return &AddressError{Host: host, Addr: ip, Reason: reason}
	}
	return nil
}

// judge tells whether ip is forbidden and why: one of IsForbiddenIP's ranges, or an
// address of this machine's own interfaces (a public address of the API or worker host
// reaches its services as loopback would).
func (p Policy) judge(ip netip.Addr) (bool, string) {
	if p.forbidden != nil {
		return p.forbidden(ip)
	}
	if bad, reason := IsForbiddenIP(ip); bad {
		return true, reason
	}
	isLocal := LocalAddr
	if p.local != nil {
		isLocal = p.local
	}
	if isLocal(ip) {
		return true, "local interface address (this machine's own)"
	}
	return false, ""
}

// CheckURL reports whether raw may be fetched: it must be an absolute URL of
// an allowed scheme with a host (user:password@ is accepted and kept out of
// error messages), the host must resolve, and, unless AllowPrivate is set,
// every address it resolves to must be allowed; one forbidden address refuses
// the URL. Hosts written as IPv4 numbers in the legacy forms some resolvers
// accept (2130706433, 0x7f000001, 0177.0.0.1, 127.1) are judged as the address
// they denote, or refused as ambiguous; they are never sent to DNS. A final dot
// changes nothing ("localhost." is localhost), and the names of RFC 6761 that
// mean loopback (localhost, *.localhost) are refused without asking DNS.
//
// Errors wrap ErrInvalidURL, ErrForbiddenAddress (an *AddressError) or
// ErrUnresolvable, or are resolver errors (a timeout: another try may work).
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := p.parse(raw)
	if err != nil {
		return err
	}
	addrs, err := p.resolve(ctx, u.Hostname())
	if err != nil || addrs != nil {
		return err
	}
	// AllowPrivate: nothing to judge, but a host that does not exist is still a
	// mistake to report now rather than on the worker.
	_, err = lookup(ctx, u.Hostname())
	return err
}

// parse checks the syntax of raw and returns it parsed.
func (p Policy) parse(raw string) (*url.URL, error) {
	if len(raw) > maxURLLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, maxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		if uerr, ok := errors.AsType[*url.Error](err); ok {
			err = uerr.Err
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	return u, p.checkParsed(u)
}

// checkParsed checks scheme, host and port, and refuses a forbidden literal
// address, all without DNS.
func (p Policy) checkParsed(u *url.URL) error {
	if u.Scheme == "" {
		return fmt.Errorf("%w: %q has no scheme (want %s)", ErrInvalidURL, u.Redacted(), strings.Join(p.schemes(), " or "))
	}
	if !slices.ContainsFunc(p.schemes(), func(s string) bool { return strings.EqualFold(s, u.Scheme) }) {
		return fmt.Errorf("%w: scheme %q not allowed (want %s)", ErrInvalidURL, u.Scheme, strings.Join(p.schemes(), " or "))
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%w: %q has no host", ErrInvalidURL, u.Redacted())
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%w: port %q out of range", ErrInvalidURL, port)
		}
	}
	if _, literal, err := p.literal(u.Hostname()); literal || err != nil {
		return err
	}
	return nil
}

// literal handles a host that is an IP address (or looks like one): it
// returns the address and literal=true, or the error refusing it.
func (p Policy) literal(host string) (netip.Addr, bool, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true, p.checkAddr(host, ip)
	}
	ip, numeric, ok := parseLegacyIPv4(host)
	if !numeric {
		return netip.Addr{}, false, nil
	}
	if !ok {
		return netip.Addr{}, true, fmt.Errorf("%w: host %q is neither a host name nor an IPv4 address", ErrInvalidURL, host)
	}
	if err := p.checkAddr(host, ip); err != nil {
		return netip.Addr{}, true, err
	}
	// Resolvers disagree on these forms (getaddrinfo reads 2130706433 as an
	// address, a DNS lookup does not): refuse rather than guess.
	return netip.Addr{}, true, fmt.Errorf("%w: host %q is IPv4 address %s in a legacy form; write %s", ErrInvalidURL, host, ip, ip)
}

// resolve returns the addresses of host, all of them allowed. With
// AllowPrivate it does not resolve and returns nil.
func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, literal, err := p.literal(host); literal || err != nil {
		if err != nil {
			return nil, err
		}
		return []netip.Addr{ip}, nil
	}
	if p.AllowPrivate {
		return nil, nil
	}
	if loopbackName(host) {
		return nil, &AddressError{Host: host, Reason: "loopback host name (RFC 6761)"}
	}
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	for i, ip := range addrs {
		ip = ip.Unmap() // the resolver may return IPv4 as ::ffff:a.b.c.d
		addrs[i] = ip
		if err := p.checkAddr(host, ip); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// lookup resolves host, telling a name that does not exist (ErrUnresolvable) from a
// lookup that failed.
func lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "invalid" || strings.HasSuffix(h, ".invalid") {
		return nil, fmt.Errorf("%w %q: .invalid names never resolve (RFC 6761)", ErrUnresolvable, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return nil, fmt.Errorf("%w %q: no such host", ErrUnresolvable, host)
	}
	if err != nil {
		return nil, fmt.Errorf("netguard: resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w %q: no addresses", ErrUnresolvable, host)
	}
	return addrs, nil
}

// loopbackName reports whether host is a name RFC 6761 reserves for loopback:
// localhost or a name under it, in any case, with or without a final dot.
func loopbackName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// parseLegacyIPv4 reads host the way inet_aton does: one to four
// dot-separated numbers, each decimal, octal (leading 0) or hex (0x), the
// last one filling the remaining bytes. numeric reports whether host looks
// like such a number at all (every label made of digits, or 0x and hex
// digits); ok whether it is a valid address.
func parseLegacyIPv4(host string) (ip netip.Addr, numeric, ok bool) {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return netip.Addr{}, false, false
	}
	labels := strings.Split(host, ".")
	values := make([]uint64, len(labels))
	valid := len(labels) <= 4
	for i, l := range labels {
		v, isNum, good := parseLegacyPart(l)
		if !isNum {
			return netip.Addr{}, false, false
		}
		values[i] = v
		valid = valid && good
	}
	if !valid {
		return netip.Addr{}, true, false
	}
	var n uint64
	for i, v := range values[:len(values)-1] {
		if v > 0xff {
			return netip.Addr{}, true, false
		}
		n |= v << (8 * (3 - i))
	}
	last := values[len(values)-1]
	if last >= 1<<(8*(5-len(values))) {
		return netip.Addr{}, true, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true, true
}

// parseLegacyPart parses one label of parseLegacyIPv4.
func parseLegacyPart(l string) (v uint64, numeric, ok bool) {
	base, digits := 10, l
	switch {
	case len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X'):
		base, digits = 16, l[2:]
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
				return 0, false, false
			}
		}
		if digits == "" { // "0x" alone is 0 to inet_aton
			return 0, true, true
		}
	case l == "":
		return 0, false, false
	default:
		for i := 0; i < len(l); i++ {
			if l[i] < '0' || l[i] > '9' {
				return 0, false, false
			}
		}
		if len(l) > 1 && l[0] == '0' {
			base, digits = 8, l[1:]
		}
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, true, false // octal with 8 or 9, or beyond 32 bits
	}
	return v, true, true
}
