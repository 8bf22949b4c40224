package nft

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// A director taking over commits the flows conntrackd replicated to it
// (conntrack_sync): each entry carries its DNAT mapping. The NAT table's
// DNAT rules are consulted for a connection's first packet only, and no
// rule matches on ct state, so such an entry is used as it is even when the
// rules would now choose another real server.
//
// Two established connections to web1; the table is changed to send new
// connections to web2 only, and both connections' entries are deleted, as
// on a director that never saw them. One entry is injected again through
// ctnetlink with its DNAT mapping (what conntrackd -c does): that
// connection carries on with web1. The other, without an entry, is picked
// up mid-stream as a new flow, DNAT'ed to web2 by the rules and reset: the
// failure conntrack_sync prevents.
func TestNATUsesInjectedConntrackEntries(t *testing.T) {
	netnstest.RequireCommand(t, "conntrack")
	tt := newTutorial(t)
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, 1, -1))
	kept, lost := tt.keepAlive(t), tt.keepAlive(t)
	for _, k := range []*keepAlive{kept, lost} {
		if body, err := k.get(); err != nil || body != "web1" {
			t.Fatalf("before: %q, %v; want web1", body, err)
		}
	}
	tt.apply(t, state(lb.Service{Scheduler: "rr"}, -1, 1))
	port := func(k *keepAlive) string { return strconv.Itoa(k.c.LocalAddr().(*net.TCPAddr).Port) }
	for _, k := range []*keepAlive{kept, lost} {
		mustRun(t, tt.dir, "conntrack", "-D", "-p", "tcp", "--sport", port(k))
	}
	// The reply tuple as before NAT, and the mapping: the kernel derives
	// the translated reply tuple and marks the entry DNAT'ed.
	p := port(kept)
	mustRun(t, tt.dir, "conntrack", "-I", "-p", "tcp",
		"-s", src1.String(), "-d", tutVIP.String(), "--sport", p, "--dport", "80",
		"-r", tutVIP.String(), "-q", src1.String(), "--reply-port-src", "80", "--reply-port-dst", p,
		"--dst-nat", tutWeb1.String(), "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED", "-t", "120")
	listing := mustRun(t, tt.dir, "conntrack", "-L", "-p", "tcp", "--sport", p)
	if !strings.Contains(listing, "src="+tutWeb1.Addr().String()+" dst="+src1.String()+" sport=8080") {
		t.Fatalf("the injected entry does not map to web1:\n%s", listing)
	}
	for i := range 3 {
		if body, err := kept.get(); err != nil || body != "web1" {
			t.Fatalf("request %d through the injected entry: %q, %v; want web1 (the entry's mapping, not the rules' web2)", i, body, err)
		}
	}
	if body, err := lost.get(); err == nil {
		t.Errorf("a connection without an entry answered %q after the rules changed; want it reset (the test would not show the injected entry at work)", body)
	}
	want(t, "new connections", tt.count(t, 2, src1), map[string]int{"web2": 2})
}
