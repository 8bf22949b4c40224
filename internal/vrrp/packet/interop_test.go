package packet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// Tier 3: keepalived 2.2.7 and this codec on one LAN of network namespaces.
// Host "ka" runs keepalived (192.168.1.105); host "vg" (192.168.1.106) has a
// raw IP protocol 112 socket. Each case checks that Parse accepts the
// adverts keepalived sends and that keepalived accepts what Marshal builds:
// keepalived is master at priority 100 and must log that it heard our
// priority-200 advert and go BACKUP. A negative control first sends an advert
// keepalived must reject, so the positive result is not vacuous.

type rawSock struct {
	fd      int
	is6     bool
	ifindex int
	src     netip.Addr // our address on eth0 (IPv6: link-local)
}

func openRaw(t *testing.T, h *lab.Host, is6 bool) *rawSock {
	t.Helper()
	s := &rawSock{is6: is6}
	err := h.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		s.ifindex = ifc.Index
		// The kernel adds the IPv6 link-local address when the link
		// comes up, asynchronously: on a loaded machine it may not be
		// there yet.
		var addrs []net.Addr
		for deadline := time.Now().Add(10 * time.Second); !s.src.IsValid() && time.Now().Before(deadline); {
			if addrs, err = ifc.Addrs(); err != nil {
				return err
			}
			for _, a := range addrs {
				p, err := netip.ParsePrefix(a.String())
				if err != nil {
					continue
				}
				if is6 && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() || !is6 && p.Addr().Is4() {
					s.src = p.Addr()
				}
			}
			if !s.src.IsValid() {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !s.src.IsValid() {
			return fmt.Errorf("no source address on eth0: %v", addrs)
		}
		family := syscall.AF_INET
		if is6 {
			family = syscall.AF_INET6
		}
		if s.fd, err = syscall.Socket(family, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, Protocol); err != nil {
			return err
		}
		tv := syscall.Timeval{Usec: 200_000}
		if err := syscall.SetsockoptTimeval(s.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		if is6 {
			mreq := &syscall.IPv6Mreq{Multiaddr: MulticastIPv6().As16(), Interface: uint32(s.ifindex)}
			return errors.Join(
				syscall.Bind(s.fd, &syscall.SockaddrInet6{Addr: s.src.As16(), ZoneId: uint32(s.ifindex)}),
				syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_HOPS, TTL),
				syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, s.ifindex),
				syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_LOOP, 0),
				syscall.SetsockoptIPv6Mreq(s.fd, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq))
		}
		mreq := &syscall.IPMreqn{Multiaddr: MulticastIPv4().As4(), Address: s.src.As4(), Ifindex: int32(s.ifindex)}
		// No bind: a raw IPv4 socket bound to an address only receives
		// packets addressed to it, not to 224.0.0.18.
		return errors.Join(
			syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IP, syscall.IP_TTL, TTL),
			syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_TTL, TTL),
			syscall.SetsockoptIPMreqn(s.fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, mreq),
			syscall.SetsockoptInt(s.fd, syscall.IPPROTO_IP, syscall.IP_MULTICAST_LOOP, 0),
			syscall.SetsockoptIPMreqn(s.fd, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, mreq))
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", h.Name(), err)
	}
	t.Cleanup(func() { syscall.Close(s.fd) })
	return s
}

func (s *rawSock) send(b []byte, dst netip.Addr) error {
	if s.is6 {
		return syscall.Sendto(s.fd, b, 0, &syscall.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(s.ifindex)})
	}
	return syscall.Sendto(s.fd, b, 0, &syscall.SockaddrInet4{Addr: dst.As4()})
}

// recv returns the next VRRP message with its IP source, destination and
// TTL (-1 for IPv6, whose header a raw socket does not return), or an error
// at the deadline.
func (s *rawSock) recv(deadline time.Time) (msg []byte, src, dst netip.Addr, ttl int, err error) {
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		n, from, err := syscall.Recvfrom(s.fd, buf, 0)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, src, dst, 0, err
		}
		b := buf[:n]
		if s.is6 {
			sa := from.(*syscall.SockaddrInet6)
			return b, netip.AddrFrom16(sa.Addr), MulticastIPv6(), -1, nil
		}
		if n < 20 || n < int(b[0]&0x0f)*4 {
			continue
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		return b[int(b[0]&0x0f)*4:], src, dst, int(b[8]), nil
	}
	return nil, src, dst, 0, errors.New("no VRRP packet before the deadline")
}

func waitLog(t *testing.T, p *lab.Proc, want string, within time.Duration) {
	t.Helper()
	if !p.WaitOutput(want, within) {
		t.Fatalf("keepalived did not log %q within %v; output:\n%s", want, within, p.Output())
	}
}

func TestKeepalivedInterop(t *testing.T) {
	netnstest.RequireRoot(t)
	keepalived := netnstest.RequireCommand(t, "keepalived")
	ka4 := netip.MustParseAddr("192.168.1.105")
	vg4 := netip.MustParseAddr("192.168.1.106")
	for _, tc := range []struct {
		name     string
		is6      bool
		instance string // vrrp_instance body after "interface eth0"
		want     Advert // what keepalived sends, Checksum and AuthData aside
		unicast  bool
		// bad is sent first and must be rejected with log line badLog
		// (empty: no negative control).
		bad    func(a Advert, b []byte) []byte
		badLog string
		// goodMode is the checksum mode of the advert keepalived must accept.
		goodMode ChecksumMode
		goodLog  string // extra line keepalived logs on accepting it
	}{
		{
			name: "v2 PASS multicast", instance: `virtual_router_id 55
  priority 100
  advert_int 1
  authentication { auth_type PASS
    auth_pass 1111 }
  virtual_ipaddress { 192.168.1.100/24 }`,
			want: Advert{Version: 2, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AuthType: AuthPass, AdvertInt: 1,
				Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}},
			bad:    func(_ Advert, b []byte) []byte { b[7] ^= 0x01; return b },
			badLog: "Invalid VRRPv2 checksum",
		},
		{
			name: "v3 multicast", instance: `virtual_router_id 55
  priority 100
  advert_int 0.1
  version 3
  virtual_ipaddress { 192.168.1.100/24 }`,
			want: Advert{Version: 3, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AdvertInt: 10,
				Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}},
			// keepalived 2.2.7 has no v3_checksum_as_v2: it must reject the
			// RFC 9568 IPv4 checksum.
			bad: func(a Advert, _ []byte) []byte {
				a.ChecksumMode = ChecksumNoPseudoHeader
				b, _ := a.Marshal(vg4, MulticastIPv4())
				return b
			},
			badLog: "Invalid VRRPv3 checksum",
		},
		{
			name: "v3 IPv6 multicast", is6: true, instance: `virtual_router_id 55
  priority 100
  advert_int 0.1
  virtual_ipaddress { fd00::100/64 }`,
			want: Advert{Version: 3, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AdvertInt: 10,
				Addrs: []netip.Addr{netip.MustParseAddr("fd00::100")}},
		},
		{
			// keepalived (not strict) runs version 2 over IPv6 when the
			// version comes before the addresses: no auth data, and the
			// kernel's IPv6 pseudo-header checksum (IPV6_CHECKSUM).
			name: "v2 IPv6 multicast", is6: true, instance: `virtual_router_id 55
  priority 100
  advert_int 1
  version 2
  virtual_ipaddress { fd00::100/64 }`,
			want: Advert{Version: 2, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AdvertInt: 1,
				Addrs: []netip.Addr{netip.MustParseAddr("fd00::100")}},
		},
		{
			name: "v3 unicast, keepalived auto-detects the old unicast checksum", unicast: true, instance: `virtual_router_id 55
  priority 100
  advert_int 0.1
  version 3
  unicast_src_ip 192.168.1.105
  unicast_peer { 192.168.1.106 }
  virtual_ipaddress { 192.168.1.100/24 }`,
			want: Advert{Version: 3, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AdvertInt: 10,
				Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}},
			goodMode: ChecksumMulticastPseudoHeader,
			goodLog:  "Setting unicast VRRPv3 checksum to old version",
		},
		{
			name: "v3 unicast old_unicast_checksum", unicast: true, instance: `virtual_router_id 55
  priority 100
  advert_int 0.1
  version 3
  unicast_src_ip 192.168.1.105
  unicast_peer { 192.168.1.106 }
  old_unicast_checksum
  virtual_ipaddress { 192.168.1.100/24 }`,
			want: Advert{Version: 3, Type: 1, VRID: 55, Priority: 100, CountIPAddrs: 1, AdvertInt: 10,
				Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.100")}, ChecksumMode: ChecksumMulticastPseudoHeader},
			bad: func(a Advert, _ []byte) []byte {
				a.ChecksumMode = ChecksumDefault // pseudo-header with the real destination
				b, _ := a.Marshal(vg4, netip.MustParseAddr("192.168.1.105"))
				return b
			},
			badLog:   "Invalid VRRPv3 checksum",
			goodMode: ChecksumMulticastPseudoHeader,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := netnstest.New(t, "kaiop")
			ka := netnstest.AddHost(t, l, "ka", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.105/24", "fd00::105/64"}})
			vg := netnstest.AddHost(t, l, "vg", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"192.168.1.106/24", "fd00::106/64"}})
			sock := openRaw(t, vg, tc.is6)

			dir := t.TempDir()
			conf := filepath.Join(dir, "keepalived.conf")
			body := fmt.Sprintf("global_defs {\n  router_id ka\n}\nvrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  %s\n}\n", tc.instance)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := ka.Start(keepalived, e2e.KeepalivedArgs("-P", "-f", conf,
				"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = p.Signal(syscall.SIGTERM)
				if !p.Wait(5 * time.Second) {
					p.Kill()
				}
			})
			waitLog(t, p, "Entering MASTER STATE", 20*time.Second)

			// keepalived's adverts parse, with the checksum variant expected.
			var got Advert
			var src, dst netip.Addr
			var raw []byte
			for end := time.Now().Add(10 * time.Second); ; {
				msg, s, d, ttl, err := sock.recv(end)
				if err != nil {
					t.Fatalf("receiving keepalived's advert: %v\n%s", err, p.Output())
				}
				if got, err = Parse(msg, s, d); err != nil {
					t.Fatalf("Parse of keepalived's advert %x from %v to %v: %v", msg, s, d, err)
				}
				if got.Priority == 0 {
					continue
				}
				if ttl >= 0 && ttl != TTL {
					t.Errorf("keepalived sent TTL %d", ttl)
				}
				src, dst, raw = s, d, msg
				break
			}
			want := tc.want
			want.Checksum, want.AuthData = got.Checksum, got.AuthData
			if got.VRID != want.VRID || got.Priority != want.Priority || got.AdvertInt != want.AdvertInt ||
				got.ChecksumMode != want.ChecksumMode || len(got.Addrs) != 1 || got.Addrs[0] != want.Addrs[0] {
				t.Fatalf("keepalived's advert from %v to %v:\n got  %+v\n want %+v", src, dst, got, want)
			}
			if tc.unicast && (src != ka4 || dst != vg4) || !tc.unicast && !tc.is6 && dst != MulticastIPv4() {
				t.Fatalf("keepalived's advert went %v -> %v", src, dst)
			}
			if b, err := got.Marshal(src, dst); err != nil || string(b) != string(raw) {
				t.Fatalf("re-marshal of keepalived's advert: %x, %v; received %x", b, err, raw)
			}

			// Our advert: priority 200, as keepalived would send it.
			ours := tc.want
			ours.Priority = 200
			ours.AuthData = got.AuthData
			ours.ChecksumMode = tc.goodMode
			to := dst
			if tc.unicast {
				to = ka4
			}
			if tc.is6 {
				to = MulticastIPv6()
			}
			good, err := ours.Marshal(sock.src, to)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bad != nil {
				bad := tc.bad(ours, append([]byte(nil), good...))
				if err := sock.send(bad, to); err != nil {
					t.Fatal(err)
				}
				waitLog(t, p, tc.badLog, 10*time.Second)
				if strings.Contains(p.Output(), "higher priority 200") {
					t.Fatalf("keepalived accepted the bad advert:\n%s", p.Output())
				}
			}
			if err := sock.send(good, to); err != nil {
				t.Fatal(err)
			}
			if tc.goodLog != "" {
				waitLog(t, p, tc.goodLog, 10*time.Second)
			}
			waitLog(t, p, fmt.Sprintf("Master received advert from %v with higher priority 200, ours 100", sock.src), 10*time.Second)
			waitLog(t, p, "Entering BACKUP STATE", 10*time.Second)
		})
	}
}
