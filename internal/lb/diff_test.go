package lb

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	svcA = ServiceKey{Family: IPv4, Proto: TCP, Addr: netip.MustParseAddr("192.168.1.1"), Port: 80}
	svcB = ServiceKey{Family: IPv4, Proto: UDP, Addr: netip.MustParseAddr("192.168.1.1"), Port: 53}
	svcF = ServiceKey{Family: IPv4, FWMark: 5}
	rs1  = netip.MustParseAddrPort("10.0.0.1:80")
	rs2  = netip.MustParseAddrPort("10.0.0.2:80")
	rs3  = netip.MustParseAddrPort("10.0.0.3:80")
)

func st(svcs map[ServiceKey]Service, ds map[DestKey]Dest) State {
	s := NewState()
	for k, v := range svcs {
		s.Services[k] = v
	}
	for k, v := range ds {
		s.Dests[k] = v
	}
	return s
}

func TestDiff(t *testing.T) {
	rr := Service{Scheduler: "rr", Netmask: 0xffffffff}
	wrr := Service{Scheduler: "wrr", Netmask: 0xffffffff}
	w := func(n uint32) Dest { return Dest{Weight: n, Method: NAT} }
	tests := []struct {
		name       string
		have, want State
		changes    []string
	}{
		{name: "nothing", have: NewState(), want: NewState()},
		{
			name: "from nothing: services first, then destinations in key order",
			have: NewState(),
			want: st(map[ServiceKey]Service{svcB: rr, svcA: rr}, map[DestKey]Dest{{svcA, rs2}: w(1), {svcA, rs1}: w(2), {svcB, rs1}: w(1)}),
			changes: []string{
				"add-service TCP  192.168.1.1:80 {Scheduler:rr Flags:0 Timeout:0 Netmask:4294967295 PE:}",
				"add-service UDP  192.168.1.1:53 {Scheduler:rr Flags:0 Timeout:0 Netmask:4294967295 PE:}",
				"add-dest TCP  192.168.1.1:80 -> 10.0.0.1:80 {Weight:2 Method:NAT Tunnel:{Type:0 Port:0 Csum:0} UThreshold:0 LThreshold:0}",
				"add-dest TCP  192.168.1.1:80 -> 10.0.0.2:80 {Weight:1 Method:NAT Tunnel:{Type:0 Port:0 Csum:0} UThreshold:0 LThreshold:0}",
				"add-dest UDP  192.168.1.1:53 -> 10.0.0.1:80 {Weight:1 Method:NAT Tunnel:{Type:0 Port:0 Csum:0} UThreshold:0 LThreshold:0}",
			},
		},
		{
			name: "one destination replaced, one reweighted: adds before deletes",
			have: st(map[ServiceKey]Service{svcA: rr}, map[DestKey]Dest{{svcA, rs1}: w(1), {svcA, rs2}: w(1)}),
			want: st(map[ServiceKey]Service{svcA: rr}, map[DestKey]Dest{{svcA, rs1}: w(0), {svcA, rs3}: w(1)}),
			changes: []string{
				"add-dest TCP  192.168.1.1:80 -> 10.0.0.3:80 {Weight:1 Method:NAT Tunnel:{Type:0 Port:0 Csum:0} UThreshold:0 LThreshold:0}",
				"update-dest TCP  192.168.1.1:80 -> 10.0.0.1:80 {Weight:0 Method:NAT Tunnel:{Type:0 Port:0 Csum:0} UThreshold:0 LThreshold:0}",
				"del-dest TCP  192.168.1.1:80 -> 10.0.0.2:80",
			},
		},
		{
			name: "scheduler change updates the service only",
			have: st(map[ServiceKey]Service{svcA: rr}, map[DestKey]Dest{{svcA, rs1}: w(1)}),
			want: st(map[ServiceKey]Service{svcA: wrr}, map[DestKey]Dest{{svcA, rs1}: w(1)}),
			changes: []string{
				"update-service TCP  192.168.1.1:80 {Scheduler:wrr Flags:0 Timeout:0 Netmask:4294967295 PE:}",
			},
		},
		{
			name:    "service removal takes its destinations",
			have:    st(map[ServiceKey]Service{svcA: rr, svcF: rr}, map[DestKey]Dest{{svcA, rs1}: w(1), {svcF, rs1}: w(1)}),
			want:    st(map[ServiceKey]Service{svcA: rr}, map[DestKey]Dest{{svcA, rs1}: w(1)}),
			changes: []string{"del-service FWM  5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := Diff(tt.have, tt.want)
			var got []string
			for _, c := range cs {
				got = append(got, c.String())
			}
			if diff := cmp.Diff(tt.changes, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if after := ApplyChanges(tt.have, cs); !after.Equal(tt.want) {
				t.Errorf("applying the diff gives\n%v\nwant\n%v", after, tt.want)
			}
		})
	}
}

// stateFromBytes builds a small state from fuzz input: each 4-byte record
// picks a service (of 4), a destination (of 4), a weight and a scheduler.
func stateFromBytes(b []byte) State {
	s := NewState()
	keys := []ServiceKey{svcA, svcB, svcF, {Family: IPv6, Proto: TCP, Addr: netip.MustParseAddr("fd00::1"), Port: 443}}
	addrs := []netip.AddrPort{rs1, rs2, rs3, netip.MustParseAddrPort("[fd00::2]:443")}
	scheds := []string{"rr", "wrr", "sh", "wlc"}
	for len(b) >= 4 {
		r := binary.BigEndian.Uint32(b)
		b = b[4:]
		k := keys[r&3]
		s.Services[k] = Service{Scheduler: scheds[(r>>2)&3], Netmask: FullNetmask(k.Family), Timeout: (r >> 4) & 1 * 300}
		if r&(1<<5) != 0 {
			s.Dests[DestKey{Service: k, Addr: addrs[(r>>6)&3]}] = Dest{Weight: (r >> 8) & 7, Method: Method(1 + (r>>11)%3)}
		}
	}
	return s
}

// FuzzDiff checks that Diff never panics and that applying Diff(have, want)
// to have always yields want, with no change when they are equal.
func FuzzDiff(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0x21}, []byte{0, 0, 1, 0x61})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{})
	f.Fuzz(func(t *testing.T, hb, wb []byte) {
		have, want := stateFromBytes(hb), stateFromBytes(wb)
		cs := Diff(have, want)
		if got := ApplyChanges(have, cs); !got.Equal(want) {
			t.Fatalf("apply(diff) != want\nhave:\n%v\nwant:\n%v\ngot:\n%v", have, want, got)
		}
		if len(Diff(want, want)) != 0 {
			t.Fatal("diff of equal states is not empty")
		}
		// Order: ops never go backwards.
		for i := 1; i < len(cs); i++ {
			if cs[i].Op < cs[i-1].Op {
				t.Fatalf("op order: %v after %v", cs[i], cs[i-1])
			}
		}
	})
}

func TestFormat(t *testing.T) {
	s := st(map[ServiceKey]Service{
		svcA: {Scheduler: "rr", Netmask: 0xffffffff},
		svcF: {Scheduler: "sh", Flags: FlagSHPort, Timeout: 300, Netmask: 0xffffff00},
	}, map[DestKey]Dest{
		{svcA, rs2}: {Weight: 1, Method: NAT},
		{svcA, rs1}: {Weight: 3, Method: NAT},
		{svcF, netip.MustParseAddrPort("10.0.0.1:0")}: {Weight: 0, Method: DR},
	})
	want := strings.Join([]string{
		"Prot LocalAddress:Port Scheduler Flags",
		"  -> RemoteAddress:Port           Forward Weight",
		"TCP  192.168.1.1:80 rr",
		"  -> 10.0.0.1:80                  Masq    3",
		"  -> 10.0.0.2:80                  Masq    1",
		"FWM  5 sh (sh-port) persistent 300 mask 255.255.255.0",
		"  -> 10.0.0.1:0                   Route   0",
		"",
	}, "\n")
	if diff := cmp.Diff(want, s.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
