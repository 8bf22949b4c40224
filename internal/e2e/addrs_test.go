package e2e

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseMonitorLine(t *testing.T) {
	for _, c := range []struct {
		line    string
		ok      bool
		at      string
		pfx     string
		idx     int
		deleted bool
	}{
		{"[2026-12-07T21:04:39.991568] 3: d0    inet 10.9.9.9/32 scope global d0\\       valid_lft forever preferred_lft forever",
			true, "2026-12-07T21:04:39.991568", "10.9.9.9/32", 3, false},
		{"[2026-12-07T21:04:39.993089] 3: d0    inet6 2001:db8::9/128 scope global nodad \\       valid_lft forever preferred_lft forever",
			true, "2026-12-07T21:04:39.993089", "2001:db8::9/128", 3, false},
		{"[2026-12-07T21:04:39.994299] Deleted 12: eth0    inet 10.1.0.1/32 scope global eth0\\       valid_lft forever preferred_lft forever",
			true, "2026-12-07T21:04:39.994299", "10.1.0.1/32", 12, true},
		{"[2026-12-07T21:04:40.000001] 4: ppp0    inet 10.0.0.1 peer 10.0.0.2/32 scope global ppp0",
			true, "2026-12-07T21:04:40.000001", "10.0.0.1/32", 4, false},
		{"[2026-12-07T21:04:40.000001] 4: eth0: <BROADCAST,MULTICAST,UP> mtu 1500", false, "", "", 0, false},
		{"3: d0    inet 10.9.9.9/32 scope global d0", false, "", "", 0, false},
	} {
		at, ev, ok := parseMonitorLine(c.line)
		if ok != c.ok {
			t.Errorf("%q: ok %v, want %v", c.line, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		want, _ := time.ParseInLocation("2006-01-02T15:04:05.999999", c.at, time.Local)
		if !at.Equal(want) || ev.Addr.Prefix != netip.MustParsePrefix(c.pfx) || ev.Addr.LinkIndex != c.idx || ev.Deleted != c.deleted || ev.Initial {
			t.Errorf("%q: %v %+v, want %v %s index %d deleted %v", c.line, at, ev, want, c.pfx, c.idx, c.deleted)
		}
	}
}
