package netif

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Usable reports whether the kernel lets a socket send from the address: an
// IPv6 address still in duplicate address detection (IFA_F_TENTATIVE, unless
// IFA_F_OPTIMISTIC, RFC 4429) or found duplicated (IFA_F_DADFAILED) is not
// usable yet; an IPv4 address always is.
func (a Addr) Usable() bool {
	if a.Flags&unix.IFA_F_DADFAILED != 0 {
		return false
	}
	return a.Flags&unix.IFA_F_TENTATIVE == 0 || a.Flags&unix.IFA_F_OPTIMISTIC != 0
}

// SourceAddr is the one home of keepalived's rule for the default source of
// adverts on the link with index ifindex, given the addresses of the
// namespace (any order the kernel reports them in): for IPv4 the first
// primary (non-secondary) address, for IPv6 the first usable link-local
// address (keepalived_netlink.c netlink_if_address_filter only takes
// link-local IPv6 addresses; vigil also waits for DAD to finish, because the
// kernel refuses to send from a tentative address). Addresses marked with
// skipProto (vigil's VIPs, see AddrProtoKeepalived) are skipped as keepalived
// skips its own VIPs (ignore_address_if_ours_or_link_local). ok is false
// when there is no such address.
func SourceAddr(addrs []Addr, ifindex int, v6 bool, skipProto uint8) (src netip.Addr, ok bool) {
	for _, a := range addrs {
		if a.LinkIndex != ifindex || (skipProto != 0 && a.Proto == skipProto) {
			continue
		}
		ip := a.Prefix.Addr()
		switch {
		case !v6 && ip.Is4() && a.Flags&unix.IFA_F_SECONDARY == 0:
			return ip, true
		case v6 && ip.Is6() && ip.IsLinkLocalUnicast() && a.Usable():
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// FindAddr returns the address a of the namespace, wherever it is
// configured; ok is false when no interface has it.
func FindAddr(addrs []Addr, a netip.Addr) (found Addr, ok bool) {
	for _, x := range addrs {
		if x.Prefix.Addr() == a {
			return x, true
		}
	}
	return Addr{}, false
}

// Addrs returns every address of the handle's namespace, both families, in
// the kernel's order.
func (h *Handle) Addrs() ([]Addr, error) { return h.listAddrs(0) }

// noSourceError is the error PrimaryAddr returns for a link without a usable
// source address.
func noSourceError(dev string, v6 bool) error {
	fam := "IPv4"
	if v6 {
		fam = "IPv6 link-local"
	}
	return fmt.Errorf("netif: %s: no %s address: %w", dev, fam, ErrNoAddress)
}
