package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VMAC is a VRRP virtual MAC interface (keepalived's use_vmac): a macvlan
// in private mode on Parent whose address is the instance's virtual MAC, so
// the VIPs it carries answer from the same MAC whichever router holds them.
type VMAC struct {
	Name   string
	Parent string
	MAC    net.HardwareAddr
	// IPv6 is set for an IPv6 instance: IPv6 stays enabled on the VMAC
	// (without an automatic link-local address) and, unless XmitBase, the
	// parent's link-local address is put on it to send adverts from.
	IPv6     bool
	XmitBase bool
}

// VMACAlias starts the interface alias (IFLA_IFALIAS) vigil gives the VMACs
// it creates. It marks them as vigil's: only interfaces carrying it are
// removed at exit or, when a killed run left them, at the next start. The
// rest of the alias records the parent's kernel parameters from before the
// first VMAC ("vigil-vmac arp_ignore=0 arp_filter=0 ..."), so that the start
// after a killed run restores them.
const VMACAlias = "vigil-vmac"

func isOurs(l netlink.Link) bool {
	a := l.Attrs().Alias
	return l.Type() == "macvlan" && (a == VMACAlias || strings.HasPrefix(a, VMACAlias+" "))
}

// VirtualMAC returns the VRRP virtual router MAC address of a VRID:
// 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6 (RFC 5798
// §7.3).
func VirtualMAC(vrid uint8, v6 bool) net.HardwareAddr {
	fam := byte(1)
	if v6 {
		fam = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, fam, vrid}
}

// VMACs creates and removes VMAC interfaces and keeps the kernel parameters
// keepalived 2.2.7 sets for them (vrrp_if_config.c), restoring on the last
// removal what it changed:
//   - on an IPv4 VMAC: arp_ignore=1 (answer ARP only for its own addresses),
//     accept_local=1, rp_filter=0 (receive adverts on an interface without an
//     IPv4 address), promote_secondaries=1, and IPv6 disabled;
//   - on its parent: arp_ignore=1 and arp_filter=1, so the parent does not
//     answer ARP for the VIPs with its own MAC; and, unlike keepalived,
//     arp_announce=2 (when lower): the master's replies to clients leave
//     through the parent, and with the default arp_announce its ARP
//     requests for a client carry the VIP as sender address, which teaches
//     the client the parent's MAC for the VIP and defeats the VMAC
//     (keepalived 2.2.7 does this; internal/e2e TestVMACInterop shows it);
//   - net.ipv4.conf.all.rp_filter=0, after raising default and every
//     interface's rp_filter to the old "all" value (the effective value is
//     the larger of "all" and the interface's, so only this lets the VMAC's
//     0 take effect without loosening any other interface);
//   - on an IPv6 VMAC: addr_gen_mode=1 (no link-local address from the
//     virtual MAC, RFC 5798 §7.4), then the parent's link-local address
//     (unless xmit_base), added without DAD.
//
// Safe for concurrent use.
type VMACs struct {
	h *Handle
	// sysctlRoot is /proc/sys (a test may point it elsewhere).
	sysctlRoot string

	mu sync.Mutex
	// owned are the VMACs this value created, by name.
	owned map[string]VMAC
	// parents holds the arp_ignore / arp_filter values of each parent
	// before the first IPv4 VMAC on it, and the VMACs on it.
	parents map[string]*parentSysctls
	// rp is the rp_filter state saved by clearRPFilter; nil when untouched.
	rp *rpFilterState
}

type parentSysctls struct {
	arpIgnore, arpFilter, arpAnnounce string
	users                             map[string]bool
}

type rpFilterState struct {
	all, def string
	// raised are the interfaces whose rp_filter was raised, with their old
	// values.
	raised map[string]string
}

// NewVMACs returns a VMAC manager over h. It changes nothing.
func NewVMACs(h *Handle) *VMACs {
	return &VMACs{h: h, sysctlRoot: "/proc/sys", owned: map[string]VMAC{}, parents: map[string]*parentSysctls{}}
}

// ErrVMACConflict reports an interface with a VMAC's name that vigil did not
// make and cannot use.
var ErrVMACConflict = errors.New("netif: interface exists and is not a usable VMAC")

// Create makes the VMAC (or adopts a matching macvlan someone else made, as
// keepalived reuses one: private mode on the same parent with the same MAC;
// such an interface is left in place on Delete), sets the kernel
// parameters, and brings it up. An interface with the name that vigil
// marked (left by a killed run) is replaced.
func (m *VMACs) Create(v VMAC) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parent, err := m.h.link(v.Parent)
	if err != nil {
		return err
	}
	if l, err := m.h.nh.LinkByName(v.Name); err == nil {
		mv, isMacvlan := l.(*netlink.Macvlan)
		switch {
		case isOurs(l):
			if err := m.h.nh.LinkDel(l); err != nil && !isNotFound(err) {
				return fmt.Errorf("netif: replace VMAC %s: %w", v.Name, err)
			}
		case isMacvlan && mv.Mode == netlink.MACVLAN_MODE_PRIVATE && l.Attrs().ParentIndex == parent.Attrs().Index &&
			strings.EqualFold(l.Attrs().HardwareAddr.String(), v.MAC.String()):
			// Not ours: use it, never remove it.
			return m.h.nh.LinkSetUp(l)
		default:
			return fmt.Errorf("%w: %s (%s)", ErrVMACConflict, v.Name, l.Type())
		}
	} else if !isNotFound(err) {
		return fmt.Errorf("netif: link %s: %w", v.Name, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = v.Name
	attrs.ParentIndex = parent.Attrs().Index
	attrs.HardwareAddr = v.MAC
	mv := &netlink.Macvlan{LinkAttrs: attrs, Mode: netlink.MACVLAN_MODE_PRIVATE}
	if err := m.h.nh.LinkAdd(mv); err != nil {
		return fmt.Errorf("netif: create VMAC %s on %s: %w", v.Name, v.Parent, err)
	}
	m.owned[v.Name] = v
	var errs []error
	set := func(key, val string) {
		if err := m.writeSysctl(key, val); err != nil {
			errs = append(errs, err)
		}
	}
	if !v.IPv6 {
		if m.rp == nil {
			errs = append(errs, m.clearRPFilter())
		}
		conf := "net/ipv4/conf/" + v.Name + "/"
		set(conf+"arp_ignore", "1")
		set(conf+"accept_local", "1")
		set(conf+"rp_filter", "0")
		set(conf+"promote_secondaries", "1")
		set("net/ipv6/conf/"+v.Name+"/disable_ipv6", "1")
		errs = append(errs, m.holdParent(v))
	} else {
		set("net/ipv6/conf/"+v.Name+"/disable_ipv6", "0")
		set("net/ipv6/conf/"+v.Name+"/addr_gen_mode", "1")
	}
	// The kernel ignores IFLA_IFALIAS in a link creation: mark it now.
	if err := m.h.nh.LinkSetAlias(mv, m.alias(v)); err != nil {
		errs = append(errs, fmt.Errorf("netif: mark VMAC %s: %w", v.Name, err))
	}
	l, err := m.h.nh.LinkByName(v.Name)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("netif: VMAC %s: %w", v.Name, err))...)
	}
	if err := m.h.nh.LinkSetUp(l); err != nil {
		errs = append(errs, fmt.Errorf("netif: VMAC %s up: %w", v.Name, err))
	}
	if v.IPv6 && !v.XmitBase {
		errs = append(errs, m.addLinkLocal(l, parent))
	}
	return errors.Join(errs...)
}

// addLinkLocal puts the parent's link-local address (or, without one, the
// EUI-64 one of the parent's MAC) on the VMAC, so adverts leave the VMAC
// from an address that is not a VIP (keepalived set_link_local_address).
func (m *VMACs) addLinkLocal(l, parent netlink.Link) error {
	ll, err := m.h.PrimaryAddr(parent.Attrs().Name, true)
	if err != nil {
		ll = eui64LinkLocal(parent.Attrs().HardwareAddr)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := m.h.nh.AddrReplace(l, a); err != nil {
		return fmt.Errorf("netif: link-local %s on VMAC %s: %w", ll, l.Attrs().Name, err)
	}
	return nil
}

// eui64LinkLocal is the modified EUI-64 link-local address of a MAC (RFC
// 4291 appendix A).
func eui64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	if len(mac) == 6 {
		b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
		b[11], b[12] = 0xff, 0xfe
		b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	}
	return netip.AddrFrom16(b)
}

// holdParent sets arp_ignore=1 and arp_filter=1 on the parent of an IPv4
// VMAC, saving the old values at the first VMAC.
func (m *VMACs) holdParent(v VMAC) error {
	p := m.parents[v.Parent]
	conf := "net/ipv4/conf/" + v.Parent + "/"
	if p == nil {
		ai, err1 := m.readSysctl(conf + "arp_ignore")
		af, err2 := m.readSysctl(conf + "arp_filter")
		aa, err3 := m.readSysctl(conf + "arp_announce")
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		p = &parentSysctls{arpIgnore: ai, arpFilter: af, arpAnnounce: aa, users: map[string]bool{}}
		m.parents[v.Parent] = p
	}
	p.users[v.Name] = true
	errs := []error{m.writeSysctl(conf+"arp_ignore", "1"), m.writeSysctl(conf+"arp_filter", "1")}
	if n, _ := strconv.Atoi(p.arpAnnounce); n < 2 {
		errs = append(errs, m.writeSysctl(conf+"arp_announce", "2"))
	}
	return errors.Join(errs...)
}

// Delete removes a VMAC this value created (an adopted or unknown interface
// is left alone) and, with the last VMAC on a parent or on the host,
// restores the kernel parameters it changed.
func (m *VMACs) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.owned[name]
	if !ok {
		return nil
	}
	delete(m.owned, name)
	var errs []error
	if l, err := m.h.nh.LinkByName(name); err == nil && isOurs(l) {
		if err := m.h.nh.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("netif: remove VMAC %s: %w", name, err))
		}
	}
	if p := m.parents[v.Parent]; p != nil {
		delete(p.users, name)
		if len(p.users) == 0 {
			delete(m.parents, v.Parent)
			conf := "net/ipv4/conf/" + v.Parent + "/"
			if _, err := m.h.link(v.Parent); err == nil {
				errs = append(errs, m.writeSysctl(conf+"arp_ignore", p.arpIgnore), m.writeSysctl(conf+"arp_filter", p.arpFilter),
					m.writeSysctl(conf+"arp_announce", p.arpAnnounce))
			}
		}
	}
	if len(m.parents) == 0 && m.rp != nil {
		errs = append(errs, m.restoreRPFilter())
	}
	return errors.Join(errs...)
}

// Owned returns the names of the VMACs this value created.
func (m *VMACs) Owned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.owned))
	for n := range m.owned {
		out = append(out, n)
	}
	return out
}

// RemoveStale removes every macvlan marked with VMACAlias: at start, those
// are what a killed earlier run left. It returns the names removed.
func (m *VMACs) RemoveStale() ([]string, error) {
	links, err := m.h.nh.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netif: list links: %w", err)
	}
	var out []string
	var errs []error
	for _, l := range links {
		if !isOurs(l) {
			continue
		}
		if err := m.h.nh.LinkDel(l); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("netif: remove stale VMAC %s: %w", l.Attrs().Name, err))
			continue
		}
		out = append(out, l.Attrs().Name)
		errs = append(errs, m.restoreFromAlias(l, links))
	}
	return out, errors.Join(errs...)
}

// alias is the VMAC's alias: the marker, then the saved parameters.
func (m *VMACs) alias(v VMAC) string {
	a := VMACAlias
	if p := m.parents[v.Parent]; p != nil {
		a += fmt.Sprintf(" arp_ignore=%s arp_filter=%s arp_announce=%s", p.arpIgnore, p.arpFilter, p.arpAnnounce)
	}
	if m.rp != nil && m.rp.all != "0" {
		a += " all.rp_filter=" + m.rp.all
	}
	return a
}

// restoreFromAlias puts back the parameters a killed run's VMAC recorded:
// the parent's ARP settings, and net.ipv4.conf.all.rp_filter if still 0.
func (m *VMACs) restoreFromAlias(l netlink.Link, links []netlink.Link) error {
	var parent string
	for _, p := range links {
		if p.Attrs().Index == l.Attrs().ParentIndex {
			parent = p.Attrs().Name
		}
	}
	var errs []error
	for _, f := range strings.Fields(l.Attrs().Alias)[1:] {
		k, val, ok := strings.Cut(f, "=")
		if _, err := strconv.Atoi(val); !ok || err != nil {
			continue
		}
		switch k {
		case "arp_ignore", "arp_filter", "arp_announce":
			if parent != "" {
				errs = append(errs, m.writeSysctl("net/ipv4/conf/"+parent+"/"+k, val))
			}
		case "all.rp_filter":
			if cur, err := m.readSysctl("net/ipv4/conf/all/rp_filter"); err == nil && cur == "0" {
				errs = append(errs, m.writeSysctl("net/ipv4/conf/all/rp_filter", val))
			}
		}
	}
	return errors.Join(errs...)
}

// clearRPFilter makes net.ipv4.conf.all.rp_filter 0 without loosening any
// interface (keepalived clear_rp_filter): default and each interface below
// the old "all" value are raised to it first.
func (m *VMACs) clearRPFilter() error {
	all, err := m.readSysctl("net/ipv4/conf/all/rp_filter")
	if err != nil {
		return err
	}
	st := &rpFilterState{all: all, raised: map[string]string{}}
	m.rp = st
	if all == "0" {
		return nil
	}
	allN, _ := strconv.Atoi(all)
	var errs []error
	if d, err := m.readSysctl("net/ipv4/conf/default/rp_filter"); err == nil {
		if n, _ := strconv.Atoi(d); n < allN {
			st.def = d
			errs = append(errs, m.writeSysctl("net/ipv4/conf/default/rp_filter", all))
		}
	}
	links, err := m.h.nh.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		name := l.Attrs().Name
		key := "net/ipv4/conf/" + name + "/rp_filter"
		cur, err := m.readSysctl(key)
		if err != nil {
			continue
		}
		if n, _ := strconv.Atoi(cur); n < allN {
			st.raised[name] = cur
			errs = append(errs, m.writeSysctl(key, all))
		}
	}
	errs = append(errs, m.writeSysctl("net/ipv4/conf/all/rp_filter", "0"))
	return errors.Join(errs...)
}

// restoreRPFilter undoes clearRPFilter where nobody changed the values
// since (keepalived restore_rp_filter).
func (m *VMACs) restoreRPFilter() error {
	st := m.rp
	m.rp = nil
	if st.all == "0" {
		return nil
	}
	var errs []error
	if cur, err := m.readSysctl("net/ipv4/conf/all/rp_filter"); err == nil && cur == "0" {
		errs = append(errs, m.writeSysctl("net/ipv4/conf/all/rp_filter", st.all))
	}
	if st.def != "" {
		if cur, err := m.readSysctl("net/ipv4/conf/default/rp_filter"); err == nil && cur == st.all {
			errs = append(errs, m.writeSysctl("net/ipv4/conf/default/rp_filter", st.def))
		}
	}
	for name, old := range st.raised {
		key := "net/ipv4/conf/" + name + "/rp_filter"
		if cur, err := m.readSysctl(key); err == nil && cur == st.all {
			errs = append(errs, m.writeSysctl(key, old))
		}
	}
	return errors.Join(errs...)
}

func (m *VMACs) sysctlPath(key string) string {
	// Interface names may hold dots (vrrp.51): the path is literal.
	return filepath.Join(m.sysctlRoot, filepath.Clean("/"+key))
}

func (m *VMACs) readSysctl(key string) (string, error) {
	b, err := os.ReadFile(m.sysctlPath(key))
	if err != nil {
		return "", fmt.Errorf("netif: sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (m *VMACs) writeSysctl(key, val string) error {
	if err := os.WriteFile(m.sysctlPath(key), []byte(val), 0o644); err != nil {
		return fmt.Errorf("netif: sysctl %s=%s: %w", key, val, err)
	}
	return nil
}
