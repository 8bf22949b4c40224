package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

// TestV6GlobalSourceAdvert: an IPv6 advert whose source is a global
// address, not the link-local one RFC 5798 §5.1.2.1 says a router sends
// from. §7.1's receive checks do not look at the source, and keepalived
// 2.2.7 (vrrp_check_packet, vrrp_state_master_rx) accepts it and compares
// the source with its own link-local address as any other: at equal
// priority 2001:db8::2 is lower than fe80::105, so the master stays and
// answers; a higher priority wins whatever its source (the yielding master
// announces itself once first, see the package documentation).
func TestV6GlobalSourceAdvert(t *testing.T) {
	c := v6cfg()
	global := netip.MustParseAddr("2001:db8::2")
	steps, mdi := toMaster(c)
	runScenario(t, c, concat(steps, []step{
		{at: mdi + 10*time.Millisecond, ev: rx(c, global, 100),
			want: []Action{send(c, 100), LowerPriorityAdvert{Src: global, Priority: 100}}, state: StateMaster},
		{at: mdi + 20*time.Millisecond, ev: rx(c, global, 101),
			want: []Action{send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher priority advert from 2001:db8::2")}, state: StateBackup},
	}))
}
