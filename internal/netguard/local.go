package netguard

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// localAddrsFor is how long the list of this machine's addresses is reused.
const localAddrsFor = 5 * time.Second

var local struct {
	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]bool
}

// LocalAddr reports whether ip is an address of one of this machine's network
// interfaces. Such an address reaches the machine's own services (the API, Redis,
// a ComfyUI node on the same host) even when it is public, so a user-supplied URL
// may not name it unless private addresses are allowed. The interface list is read
// again every few seconds; if it cannot be read, no address counts as local.
func LocalAddr(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	local.mu.Lock()
	defer local.mu.Unlock()
	if local.addrs == nil || time.Since(local.at) > localAddrsFor {
		local.addrs, local.at = interfaceAddrs(), time.Now()
	}
	return local.addrs[ip]
}

func interfaceAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return m
	}
	for _, a := range ifaddrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			m[addr.Unmap()] = true
		}
	}
	return m
}
