package engine

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/internal/netif"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// burstInstances are n backups (priority 99, advert_int 1, VRRPv2) on
// eth0, VRIDs 1..n, each with the VIP 10.1.0.VRID, keepalived's default
// gratuitous ARP settings and garp_master_refresh 2 s (2 rounds).
func burstInstances(n int) []runspec.InstanceSpec {
	var out []runspec.InstanceSpec
	for i := 1; i <= n; i++ {
		s := tutorialInstance(vrrp.StateBackup, 99)
		s.GARP.Refresh, s.GARP.RefreshRepeat = 2*time.Second, 2
		s.VRRP.Name, s.VRRP.VRID = fmt.Sprintf("VI_%d", i), uint8(i)
		a := netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})
		s.VRRP.VIPs = []netip.Addr{a}
		s.VIPs = []netif.VIP{{Prefix: netip.PrefixFrom(a, 32), Dev: "eth0"}}
		out = append(out, s)
	}
	return out
}

// wireSince returns the host's address changes and announcements (and
// their times) from entry k on.
func (h *fakeHost) wireSince(k int) ([]string, []time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.wire[k:]), slices.Clone(h.wireAt[k:])
}

// TestMassTakeoverAddsBeforeAnnouncing: 60 backups whose
// Master_Down_Timers expire together take over in one turn. Every address
// is added before the first gratuitous ARP of the burst; the first round
// announces each address once before any repeat; the repeats, the
// garp_master_refresh bursts and the garp_master_delay burst keep
// keepalived's times and counts (garp_master_repeat 5 at once, refresh
// every 2 s with 2 rounds, 5 more rounds after 5 s).
func TestMassTakeoverAddsBeforeAnnouncing(t *testing.T) {
	const n = 60
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		b := startNode(t, lan, "b", "192.168.1.106/24", burstInstances(n)...)
		mdi := 3*time.Second + time.Duration(256-99)*time.Second/256
		time.Sleep(mdi + 500*time.Millisecond)
		wire, at := b.host.wireSince(0)
		if len(wire) != n+5*n {
			t.Fatalf("%d adds and announcements, want %d + 5 × %d:\n%s", len(wire), n, n, strings.Join(wire, "\n"))
		}
		firstARP := slices.IndexFunc(wire, func(s string) bool { return strings.HasPrefix(s, "arp ") })
		if firstARP != n {
			t.Fatalf("first gratuitous ARP at entry %d, want %d (after every address):\n%s", firstARP, n, strings.Join(wire, "\n"))
		}
		for _, s := range wire[n:] {
			if !strings.HasPrefix(s, "arp ") {
				t.Fatalf("%q among the announcements", s)
			}
		}
		// Round one announces every address once.
		round := map[string]bool{}
		for _, s := range wire[n : 2*n] {
			round[s] = true
		}
		if len(round) != n {
			t.Errorf("the first %d announcements cover %d addresses, want all %d", n, len(round), n)
		}
		// All of it when the timers expired: no pacing asked for.
		if d := at[len(at)-1].Sub(at[0]); d != 0 {
			t.Errorf("the burst took %v of fake time, want none", d)
		}
		took := at[0]

		// garp_master_refresh 2 s (2 rounds) and garp_master_delay 5 s (5
		// rounds) keep their times and counts.
		for _, c := range []struct {
			at   time.Duration
			want int
		}{
			{2*time.Second - time.Millisecond, 6 * n},
			{2*time.Second + time.Millisecond, 8 * n},
			{4*time.Second + time.Millisecond, 10 * n},
			{5*time.Second - time.Millisecond, 10 * n},
			{5*time.Second + time.Millisecond, 15 * n},
		} {
			time.Sleep(time.Until(took.Add(c.at)))
			if w, _ := b.host.wireSince(0); len(w) != c.want {
				t.Errorf("%d entries %v after the takeover, want %d", len(w), c.at, c.want)
			}
		}
		for _, in := range b.snapshot(t).Instances {
			if in.State != "MASTER" {
				t.Errorf("%s is %s", in.Name, in.State)
			}
		}
		b.stop(t)
	})
}

// TestMassTakeoverKeepsGARPInterval: with vrrp_garp_interval 10 ms the
// interface's pacer still spaces the burst's announcements, one per 10 ms,
// as keepalived does (garp.Pacer): the first address twice (its first
// round at once, its repeats collapsed into one waiting packet), every
// other once; the first leaves only after every address was added.
func TestMassTakeoverKeepsGARPInterval(t *testing.T) {
	const n = 20
	synctest.Test(t, func(t *testing.T) {
		lan := &fakeLAN{}
		h := newFakeHost(lan, "b", map[string]string{"eth0": "192.168.1.106/24"})
		e, err := New(runspec.Spec{Instances: burstInstances(n), GARPInterval: 10 * time.Millisecond}, Options{Net: h})
		if err != nil {
			t.Fatal(err)
		}
		b := runNode(t, h, e)
		mdi := 3*time.Second + time.Duration(256-99)*time.Second/256
		time.Sleep(mdi + time.Second)
		wire, at := b.host.wireSince(0)
		if len(wire) != 2*n+1 {
			t.Fatalf("%d adds and announcements, want %d + %d:\n%s", len(wire), n, n+1, strings.Join(wire, "\n"))
		}
		if wire[n] != "arp 10.1.0.1" || wire[n+1] != "arp 10.1.0.1" {
			t.Errorf("announcements begin %q, want the first address twice", wire[n:n+2])
		}
		if i := slices.IndexFunc(wire, func(s string) bool { return strings.HasPrefix(s, "arp ") }); i != n {
			t.Fatalf("first gratuitous ARP at entry %d, want %d", i, n)
		}
		seen := map[string]bool{}
		for k := n; k < len(wire); k++ {
			seen[wire[k]] = true
			if k > n {
				if gap := at[k].Sub(at[k-1]); gap != 10*time.Millisecond {
					t.Errorf("announcement %d came %v after the previous, want 10ms", k-n, gap)
				}
			}
		}
		if len(seen) != n {
			t.Errorf("%d addresses announced, want %d", len(seen), n)
		}
		if at[n] != at[0] {
			t.Errorf("first announcement %v after the first address, want at once", at[n].Sub(at[0]))
		}
		b.stop(t)
	})
}
