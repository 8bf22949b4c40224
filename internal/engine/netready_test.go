package engine

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"golang.org/x/sys/unix"
)

func TestSourceFor(t *testing.T) {
	v4 := func(p string, idx int, flags uint32) netif.Addr {
		return netif.Addr{Prefix: netip.MustParsePrefix(p), LinkIndex: idx, Flags: flags}
	}
	eth0 := netif.LinkInfo{Index: 2, Name: "eth0"}
	ll := "fe80::1/64"
	plain := tutorialInstance(vrrp.StateBackup, 100)
	six := plain
	six.IPv6 = true
	uni := plain
	uni.VRRP.Unicast = true
	uni.VRRP.Source = netip.MustParseAddr("10.0.0.1")
	mcastSrc := plain
	mcastSrc.VRRP.Source = netip.MustParseAddr("10.0.0.1")
	six6Src := six
	six6Src.VRRP.Source = netip.MustParseAddr("fe80::9")
	vipMark := v4("192.168.1.100/24", 2, 0)
	vipMark.Proto = netif.AddrProtoKeepalived
	llVIP := v4("fe80::100/64", 2, unix.IFA_F_NODAD|unix.IFA_F_PERMANENT)
	llVIP.Proto = netif.AddrProtoKeepalived
	tests := []struct {
		name    string
		is      runspec.InstanceSpec
		addrs   []netif.Addr
		want    string
		missing string // substring; "" means usable
	}{
		{"no address at all", plain, nil, "", "no IPv4 address on eth0"},
		{"address on another interface", plain, []netif.Addr{v4("192.168.1.105/24", 3, 0)}, "", "no IPv4 address"},
		{"primary", plain, []netif.Addr{v4("192.168.1.105/24", 2, 0)}, "192.168.1.105", ""},
		{"secondary skipped", plain, []netif.Addr{v4("192.168.1.106/24", 2, unix.IFA_F_SECONDARY), v4("192.168.1.105/24", 2, 0)}, "192.168.1.105", ""},
		{"own VIP skipped", plain, []netif.Addr{vipMark}, "", "no IPv4 address"},
		{"IPv6 none", six, []netif.Addr{v4("192.168.1.105/24", 2, 0)}, "", "no IPv6 link-local address on eth0"},
		{"IPv6 global only", six, []netif.Addr{v4("fd00::5/64", 2, 0)}, "", "no IPv6 link-local"},
		{"IPv6 tentative", six, []netif.Addr{v4(ll, 2, unix.IFA_F_TENTATIVE)}, "", "fe80::1 on eth0 is tentative"},
		{"IPv6 DAD failed", six, []netif.Addr{v4(ll, 2, unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED)}, "", "failed duplicate address detection"},
		{"IPv6 only a link-local VIP", six, []netif.Addr{llVIP}, "", "no IPv6 link-local address on eth0"},
		{"IPv6 DAD done", six, []netif.Addr{v4(ll, 2, unix.IFA_F_PERMANENT)}, "fe80::1", ""},
		{"unicast source missing", uni, []netif.Addr{v4("192.168.1.105/24", 2, 0)}, "", "source address 10.0.0.1 is not on this host"},
		{"unicast source on another interface", uni, []netif.Addr{v4("10.0.0.1/24", 5, 0)}, "10.0.0.1", ""},
		{"IPv4 multicast source not waited for", mcastSrc, nil, "10.0.0.1", ""},
		{"IPv6 configured source tentative", six6Src, []netif.Addr{v4("fe80::9/64", 2, unix.IFA_F_TENTATIVE)}, "", "source address fe80::9 is tentative"},
		{"IPv6 configured source usable", six6Src, []netif.Addr{v4("fe80::9/64", 2, 0)}, "fe80::9", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, why := sourceFor(&tt.is, eth0, tt.addrs)
			if tt.missing == "" {
				if why != "" || src != netip.MustParseAddr(tt.want) {
					t.Fatalf("sourceFor = %v, %q; want %s", src, why, tt.want)
				}
				return
			}
			if src.IsValid() || !strings.Contains(why, tt.missing) {
				t.Fatalf("sourceFor = %v, %q; want no source, reason containing %q", src, why, tt.missing)
			}
		})
	}
}

func TestAddrMatters(t *testing.T) {
	a := func(p string, idx int) netif.Addr {
		return netif.Addr{Prefix: netip.MustParsePrefix(p), LinkIndex: idx}
	}
	plain := tutorialInstance(vrrp.StateBackup, 100)
	six := plain
	six.IPv6 = true
	uni := plain
	uni.VRRP.Unicast, uni.VRRP.Source = true, netip.MustParseAddr("10.0.0.1")
	vipMark := a("192.168.1.100/24", 2)
	vipMark.Proto = netif.AddrProtoKeepalived
	tests := []struct {
		name string
		is   runspec.InstanceSpec
		addr netif.Addr
		want bool
	}{
		{"IPv4 on the interface", plain, a("192.168.1.105/24", 2), true},
		{"IPv4 elsewhere", plain, a("192.168.1.105/24", 3), false},
		{"other family", plain, a("fe80::1/64", 2), false},
		{"own VIP", plain, vipMark, false},
		{"IPv6 link-local", six, a("fe80::1/64", 2), true},
		{"IPv6 global", six, a("fd00::1/64", 2), false},
		{"configured unicast source anywhere", uni, a("10.0.0.1/24", 7), true},
		{"not the configured source", uni, a("192.168.1.105/24", 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := addrMatters(&tt.is, 2, tt.addr); got != tt.want {
				t.Fatalf("addrMatters = %v, want %v", got, tt.want)
			}
		})
	}
}

// bootHost is a host whose interfaces exist (or not) in the state a test
// sets up before the engine starts.
func bootHost(lan *fakeLAN, name string) *fakeHost {
	h := newFakeHost(lan, name, nil)
	return h
}

// withLink adds an interface without addresses, up or with no carrier.
func (h *fakeHost) withLink(name string, index int, running bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links[name] = netif.LinkInfo{Index: index, Name: name, Up: true, Running: running, LowerUp: running, MAC: net.HardwareAddr{2, 0, 0, 0, 2, byte(index)}, MTU: 1500}
}

// transitions records an engine's instance transitions at the (fake) time
// they happen.
type transitions struct {
	mu  sync.Mutex
	log []stamped
}

type stamped struct {
	at       time.Time
	from, to vrrp.State
	reason   string
}

func (r *transitions) hook(name string, from, to vrrp.State, prio int, reason string) {
	r.mu.Lock()
	r.log = append(r.log, stamped{time.Now(), from, to, reason})
	r.mu.Unlock()
}

// leftFault returns when the instance last left FAULT.
func (r *transitions) leftFault() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.log) - 1; i >= 0; i-- {
		if r.log[i].from == vrrp.StateFault {
			return r.log[i].at
		}
	}
	return time.Time{}
}

func startOn(t *testing.T, h *fakeHost, spec runspec.Spec) (*node, *transitions) {
	t.Helper()
	tr := &transitions{}
	e, err := New(spec, Options{Net: h, Hooks: Hooks{InstanceTransition: tr.hook}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{host: h, eng: e, cancel: cancel, done: make(chan error, 1)}
	go func() { n.done <- e.Run(ctx) }()
	t.Cleanup(func() { n.cancel(); n.wait() })
	return n, tr
}

// wantFault checks the instance is in FAULT and that its transition reason
// or its interface's status says why.
func wantFault(t *testing.T, n *node, why string) {
	t.Helper()
	in := n.snapshot(t).Instances[0]
	detail := ""
	for _, tr := range in.Trackers {
		if tr.Kind == "interface" && tr.Name == in.Interface {
			detail = tr.Detail
		}
	}
	if in.State != "FAULT" || !strings.Contains(in.Reason+" / "+detail, why) {
		t.Fatalf("instance is %s (%q, interface %q), want FAULT because %q", in.State, in.Reason, detail, why)
	}
}

// wantLeftFaultAt checks the instance left FAULT at the (fake) instant the
// condition cleared: the engine reacted to the event, it did not poll.
func wantLeftFaultAt(t *testing.T, n *node, tr *transitions, cleared time.Time) {
	t.Helper()
	synctest.Wait()
	if got := n.state(t, "VI_1"); got == "FAULT" {
		t.Fatalf("still FAULT after the condition cleared")
	}
	if at := tr.leftFault(); !at.Equal(cleared) {
		t.Fatalf("left FAULT at %v, %v after the condition cleared; want at once", at, at.Sub(cleared))
	}
}

// TestBootIPv4LinkDownThenUpThenAddress is issue 20's IPv4 boot order:
// the daemon starts while eth0 has no carrier and no address; the link
// comes up, then DHCP adds the address. The instance leaves FAULT the moment
// the address appears and becomes MASTER a Master_Down_Interval later.
func TestBootIPv4LinkDownThenUpThenAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, false)
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 100)}})
		time.Sleep(2 * time.Second)
		wantFault(t, a, "interface down")
		h.setLink("eth0", true)
		time.Sleep(2 * time.Second)
		wantFault(t, a, "no IPv4 address on eth0")
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		wantLeftFaultAt(t, a, tr, time.Now())
		time.Sleep(4 * time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" || !h.holds(vip) {
			t.Fatalf("a is %s holding=%v, want MASTER with the VIP", got, h.holds(vip))
		}
		if m := a.snapshot(t).Instances[0].Master; m != "192.168.1.105" {
			t.Fatalf("master address %q, want the new source 192.168.1.105", m)
		}
	})
}

// TestBootIPv4AddressThenLink: the other order, the address first (link
// still down), then the carrier.
func TestBootIPv4AddressThenLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, false)
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 100)}})
		time.Sleep(time.Second)
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		time.Sleep(time.Second)
		wantFault(t, a, "interface down")
		h.setLink("eth0", true)
		wantLeftFaultAt(t, a, tr, time.Now())
	})
}

func ipv6Instance() runspec.InstanceSpec {
	return runspec.InstanceSpec{
		VRRP: vrrp.Config{
			Name: "VI_1", VRID: 56, Version: 3, Priority: 100, AdvertInt: time.Second,
			InitialState: vrrp.StateBackup,
			VIPs:         []netip.Addr{netip.MustParseAddr("fd00::100")},
		},
		Interface: "eth0",
		IPv6:      true,
		VIPs:      []netif.VIP{{Prefix: netip.MustParsePrefix("fd00::100/64"), Dev: "eth0"}},
		GARP:      testGARP,
	}
}

// TestBootIPv6TentativeLinkLocal is issue 20's IPv6 boot order: a VRRPv3
// instance starts while the link-local address is still in duplicate
// address detection, and leaves FAULT when DAD completes (the kernel sends
// RTM_NEWADDR without IFA_F_TENTATIVE).
func TestBootIPv6TentativeLinkLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		h.setAddr("eth0", "fe80::a/64", unix.IFA_F_TENTATIVE|unix.IFA_F_PERMANENT, false)
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{ipv6Instance()}})
		time.Sleep(time.Second)
		wantFault(t, a, "fe80::a on eth0 is tentative")
		// A global address finishing DAD does not help: VRRPv3 sends from
		// the link-local one.
		h.setAddr("eth0", "fd00::5/64", 0, false)
		time.Sleep(time.Second)
		wantFault(t, a, "tentative")
		h.setAddr("eth0", "fe80::a/64", unix.IFA_F_PERMANENT, false)
		wantLeftFaultAt(t, a, tr, time.Now())
		time.Sleep(4 * time.Second)
		if got := a.state(t, "VI_1"); got != "MASTER" {
			t.Fatalf("a is %s, want MASTER", got)
		}
		if m := a.snapshot(t).Instances[0].Master; m != "fe80::a" {
			t.Fatalf("master address %q, want fe80::a", m)
		}
	})
}

// TestBootInterfaceCreatedLater: the interface (a VLAN, a bond) is created
// after the daemon started, first without an address; what the start applies
// to an interface (promote_secondaries) is applied when it appears.
func TestBootInterfaceCreatedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		s := tutorialInstance(vrrp.StateBackup, 100)
		s.PromoteSecondaries = true
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{s}})
		time.Sleep(time.Second)
		wantFault(t, a, "interface eth0 not found")
		h.addLink("eth0", "", 7)
		time.Sleep(time.Second)
		wantFault(t, a, "no IPv4 address on eth0")
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		wantLeftFaultAt(t, a, tr, time.Now())
		h.mu.Lock()
		promoted := h.sysctls["net/ipv4/conf/eth0/promote_secondaries"]
		h.mu.Unlock()
		if promoted != "1" {
			t.Fatalf("promote_secondaries on the new eth0 = %q, want 1", promoted)
		}
	})
}

// TestInterfaceDeletedAndCreatedAgain: a master whose interface is deleted
// goes to FAULT and gives up its socket; the interface created again (a new
// ifindex) gets a new socket and the instance returns to MASTER, its adverts
// heard by the peer again.
func TestInterfaceDeletedAndCreatedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		a := startNode(t, lan, "a", "192.168.1.105/24", tutorialInstance(vrrp.StateMaster, 100))
		b := startNode(t, lan, "b", "192.168.1.106/24", tutorialInstance(vrrp.StateBackup, 99))
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		a.host.delLink("eth0")
		time.Sleep(5 * time.Second)
		wantFault(t, a, "interface eth0 removed")
		if b.state(t, "VI_1") != "MASTER" {
			t.Fatalf("b is %s after a's interface went, want MASTER", b.state(t, "VI_1"))
		}
		lan.mu.Lock()
		open := 0
		for _, c := range lan.conns {
			select {
			case <-c.closed:
			default:
				if c.host == a.host {
					open++
				}
			}
		}
		lan.mu.Unlock()
		if open != 0 {
			t.Fatalf("a keeps %d sockets on the deleted interface", open)
		}
		a.host.addLink("eth0", "192.168.1.105/24", 12)
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || b.state(t, "VI_1") != "BACKUP" {
			t.Fatalf("after eth0 came back: a %s, b %s; want a MASTER (preempt), b BACKUP", a.state(t, "VI_1"), b.state(t, "VI_1"))
		}
	})
}

// TestSourceAddressRemovedAndReplaced: keepalived moves an instance to the
// interface's next address when its source goes, and to FAULT when there is
// none, until one appears.
func TestSourceAddressRemovedAndReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 100)}})
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		h.setAddr("eth0", "192.168.1.105/24", 0, true)
		synctest.Wait()
		wantFault(t, a, "no IPv4 address on eth0")
		// The link is up: the transition names the missing address.
		if r := a.snapshot(t).Instances[0].Reason; r != "fault: no IPv4 address on eth0" {
			t.Fatalf("transition reason %q, want \"fault: no IPv4 address on eth0\"", r)
		}
		if h.holds(vip) {
			t.Fatal("the VIP stayed on a faulted instance")
		}
		h.setAddr("eth0", "192.168.1.107/24", 0, false)
		wantLeftFaultAt(t, a, tr, time.Now())
		time.Sleep(4 * time.Second)
		if m := a.snapshot(t).Instances[0].Master; a.state(t, "VI_1") != "MASTER" || m != "192.168.1.107" {
			t.Fatalf("a is %s from %q, want MASTER from 192.168.1.107", a.state(t, "VI_1"), m)
		}
	})
}

// TestBootUnicastSourceLater: unicast_src_ip is waited for like a default
// source (the socket is bound to it).
func TestBootUnicastSourceLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		s := tutorialInstance(vrrp.StateBackup, 100)
		s.VRRP.Unicast = true
		s.VRRP.Source = netip.MustParseAddr("192.168.1.105")
		s.VRRP.Peers = []vrrp.Peer{{Addr: netip.MustParseAddr("192.168.1.106")}}
		a, tr := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{s}})
		time.Sleep(time.Second)
		wantFault(t, a, "source address 192.168.1.105 is not on this host")
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		wantLeftFaultAt(t, a, tr, time.Now())
	})
}

// TestBootSyncGroupWaitsForEveryMember: a sync group is in FAULT while one
// member has no address, and leaves it with that member.
func TestBootSyncGroupWaitsForEveryMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		h.withLink("eth1", 3, true)
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		s1 := tutorialInstance(vrrp.StateBackup, 100)
		s2 := tutorialInstance(vrrp.StateBackup, 100)
		s2.VRRP.Name, s2.VRRP.VRID, s2.Interface = "VI_2", 56, "eth1"
		s2.VRRP.VIPs = []netip.Addr{netip.MustParseAddr("10.0.0.100")}
		s2.VIPs = []netif.VIP{{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Dev: "eth1"}}
		a, tr := startOn(t, h, runspec.Spec{
			Instances:  []runspec.InstanceSpec{s1, s2},
			SyncGroups: []runspec.SyncGroupSpec{{Name: "G", Members: []string{"VI_1", "VI_2"}}},
		})
		time.Sleep(5 * time.Second)
		if got := a.state(t, "VI_1"); got != "FAULT" {
			t.Fatalf("VI_1 is %s while its group partner has no address, want FAULT", got)
		}
		h.setAddr("eth1", "10.0.0.1/24", 0, false)
		wantLeftFaultAt(t, a, tr, time.Now())
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" || !h.holds("10.0.0.100/24") {
			t.Fatalf("VI_1 is %s, VI_2's VIP held=%v; want both MASTER", a.state(t, "VI_1"), h.holds("10.0.0.100/24"))
		}
	})
}

// TestAddressNotificationsLost: when the kernel drops address notifications
// (ENOBUFS), every source is decided again from a fresh read: a source
// address removed meanwhile puts the instance in FAULT.
func TestAddressNotificationsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		h.setAddr("eth0", "192.168.1.105/24", 0, false)
		a, _ := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{tutorialInstance(vrrp.StateBackup, 100)}})
		time.Sleep(5 * time.Second)
		if a.state(t, "VI_1") != "MASTER" {
			t.Fatal("a not master")
		}
		h.loseAddr("eth0", "192.168.1.105/24")
		synctest.Wait()
		wantFault(t, a, "no IPv4 address on eth0")
	})
}

// TestVIPFailedDADIsNotHeld: an IPv6 VIP added with -nodad goes through
// duplicate address detection; when another host on the link has it, the
// kernel keeps it flagged dadfailed and accepts no traffic for it. Status
// no longer counts it as held.
func TestVIPFailedDADIsNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := bootHost(&fakeLAN{}, "a")
		h.withLink("eth0", 2, true)
		h.setAddr("eth0", "fe80::a/64", unix.IFA_F_PERMANENT, false)
		a, _ := startOn(t, h, runspec.Spec{Instances: []runspec.InstanceSpec{ipv6Instance()}})
		time.Sleep(5 * time.Second)
		if si := a.snapshot(t).Instances[0]; si.State != "MASTER" || !si.VIPsHeld {
			t.Fatalf("a is %s holding=%v, want MASTER with its VIP", si.State, si.VIPsHeld)
		}
		h.mu.Lock()
		ws := slices.Clone(h.awatch)
		h.mu.Unlock()
		for _, w := range ws {
			w <- netif.AddrEvent{Addr: netif.Addr{Prefix: netip.MustParsePrefix("fd00::100/64"), LinkIndex: 2,
				Flags: unix.IFA_F_NODAD | unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED}}
		}
		synctest.Wait()
		if si := a.snapshot(t).Instances[0]; si.VIPsHeld || slices.Contains(si.HeldVIPs, "fd00::100/64") {
			t.Fatalf("a VIP that failed DAD counts as held: vips_held %v, held %v", si.VIPsHeld, si.HeldVIPs)
		}
	})
}
