package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
)

func dw(spec string) []destW {
	var out []destW
	for i, f := range strings.Fields(spec) {
		var w uint32
		fmt.Sscan(f, &w)
		out = append(out, destW{addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), weight: w})
	}
	return out
}

// names renders a table as the last address byte of each entry: "1 1 1 2".
func names(t []netip.AddrPort) string {
	var s []string
	for _, a := range t {
		s = append(s, fmt.Sprint(a.Addr().As4()[3]))
	}
	return strings.Join(s, " ")
}

func TestPickTable(t *testing.T) {
	tests := []struct {
		sched, weights string
		kind           pickKind
		table          string
	}{
		{"rr", "1 5 0", pickNumgen, "1 2"},
		// ip_vs_wrr.c: cw starts at max(w)=3 and drops by gcd=1.
		{"wrr", "3 1", pickNumgen, "1 1 1 2"},
		{"wrr", "5 2 1", pickNumgen, "1 1 1 1 2 1 2 3"},
		{"wrr", "4 2", pickNumgen, "1 1 2"}, // gcd 2: period 3
		{"wlc", "2 1", pickNumgen, "1 1 2"},
		{"wrr", "0 0", pickNumgen, ""},
		// ip_vs_fo.c: the first of the highest weight.
		{"fo", "1 3 3", pickNumgen, "2"},
		{"ovf", "2 1", pickNumgen, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.sched+" "+tt.weights, func(t *testing.T) {
			kind, table := pickTable(tt.sched, dw(tt.weights))
			if kind != tt.kind {
				t.Errorf("kind = %v, want %v", kind, tt.kind)
			}
			if diff := cmp.Diff(tt.table, names(table)); diff != "" {
				t.Errorf("table (-want +got):\n%s", diff)
			}
		})
	}
}

// ip_vs_sh.c fills the 256 buckets with each server taking as many
// consecutive buckets as its weight; dh ignores weights.
func TestHashTables(t *testing.T) {
	kind, table := pickTable("sh", dw("2 1"))
	if kind != pickSaddr || len(table) != hashBuckets {
		t.Fatalf("sh: kind %v, %d buckets", kind, len(table))
	}
	if got := names(table[:7]); got != "1 1 2 1 1 2 1" {
		t.Errorf("sh buckets start %q", got)
	}
	count := map[string]int{}
	for _, a := range table {
		count[a.String()]++
	}
	if count["10.0.0.1:80"] != 171 || count["10.0.0.2:80"] != 85 {
		t.Errorf("sh shares %v, want 171/85", count)
	}
	kind, table = pickTable("lblc", dw("5 1 1"))
	if kind != pickDaddr || names(table[:4]) != "1 2 3 1" {
		t.Errorf("dh: kind %v buckets %q", kind, names(table[:4]))
	}
}

// Large weight sums are scaled to at most maxRotation entries, keeping
// proportions and every server.
func TestWRRScaled(t *testing.T) {
	_, table := pickTable("wrr", dw("65535 1000 1"))
	if len(table) > maxRotation+3 {
		t.Fatalf("%d entries", len(table))
	}
	count := map[string]int{}
	for _, a := range table {
		count[a.String()]++
	}
	if count["10.0.0.3:80"] != 1 || count["10.0.0.1:80"] < 60*count["10.0.0.2:80"] {
		t.Errorf("shares %v", count)
	}
}

func TestComment(t *testing.T) {
	for _, tt := range []struct {
		k lb.ServiceKey
		s lb.Service
	}{
		{lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}, lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}},
		{lb.ServiceKey{Family: lb.IPv6, Proto: lb.SCTP, Addr: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Port: 65535}, lb.Service{Scheduler: "lblcr", Flags: lb.FlagSched3, Timeout: 2678400, Netmask: 128, PE: "sip"}},
		{lb.ServiceKey{Family: lb.IPv6, FWMark: 0xffffffff}, lb.Service{Scheduler: "sh", Flags: lb.FlagSHPort | lb.FlagSHFallback, Netmask: 64, Timeout: 1}},
	} {
		c := encodeComment(tt.k, tt.s)
		if len(c) > 128 {
			t.Errorf("comment %q longer than nftables' 128", c)
		}
		k, s, err := decodeComment(c)
		if err != nil || k != tt.k || s != tt.s {
			t.Errorf("round trip of %q: %v %+v %v", c, k, s, err)
		}
	}
	for _, bad := range []string{"", "vigil", "vigil key=tcp/1.2.3.4", "vigil key=fwm4/0", "vigil key=tcp/1.2.3.4/99999", "vigil sched=rr", "vigil key=udp/::1/53 timeout=x"} {
		if _, _, err := decodeComment(bad); err == nil {
			t.Errorf("decodeComment(%q) accepted", bad)
		}
	}
}

// FuzzDecodeComment: decoding never panics, and what decodes re-encodes to
// the same service.
func FuzzDecodeComment(f *testing.F) {
	f.Add("vigil key=tcp/192.168.1.1/80 sched=rr flags=0 timeout=0 mask=4294967295")
	f.Add("vigil key=fwm6/3 sched=sh flags=16 timeout=300 mask=64 pe=sip")
	f.Fuzz(func(t *testing.T, c string) {
		k, s, err := decodeComment(c)
		if err != nil {
			return
		}
		k2, s2, err := decodeComment(encodeComment(k, s))
		if err != nil || k2 != k || (s2 != s && !strings.ContainsAny(s.Scheduler+s.PE, " =")) {
			t.Fatalf("%q: %v %+v -> %v %+v %v", c, k, s, k2, s2, err)
		}
	})
}

func TestServiceName(t *testing.T) {
	for k, want := range map[lb.ServiceKey]string{
		{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.168.118.110"), Port: 80}: "svc_tcp_192_168_118_110_80",
		{Family: lb.IPv6, Proto: lb.UDP, Addr: netip.MustParseAddr("fd00::1"), Port: 53}:         "svc_udp_fd00__1_53",
		{Family: lb.IPv6, FWMark: 9}: "svc_fwm6_9",
	} {
		if got := serviceName(k); got != want {
			t.Errorf("serviceName(%v) = %q, want %q", k, got, want)
		}
	}
}

func TestMaskBytes(t *testing.T) {
	if got := maskBytes(lb.IPv4, 0xffffff00); string(got) != "\xff\xff\xff\x00" {
		t.Errorf("v4 /24: %x", got)
	}
	if got := maskBytes(lb.IPv6, 60); fmt.Sprintf("%x", got) != "fffffffffffffff00000000000000000" {
		t.Errorf("v6 /60: %x", got)
	}
}
