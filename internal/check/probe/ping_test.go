package probe

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPingLoopback(t *testing.T) {
	noLeak(t)
	ctx := ctxT(t)
	for _, addr := range []string{"127.0.0.1", "::1"} {
		for _, mode := range []PingMode{PingRaw, PingUnprivileged, PingAuto} {
			p := &Ping{Conn: Conn{Addr: netip.AddrPortFrom(netip.MustParseAddr(addr), 0), Timeout: time.Second}, Mode: mode}
			r := p.Check(ctx)
			switch {
			case r.OK:
			case mode == PingRaw && os.Geteuid() != 0:
				t.Logf("%s raw: %s (needs CAP_NET_RAW)", addr, r.Reason)
			case mode == PingUnprivileged && strings.Contains(r.Reason, "permission denied"):
				// The lab test sets net.ipv4.ping_group_range and covers
				// this mode.
				t.Logf("%s unprivileged: %s (net.ipv4.ping_group_range excludes our group)", addr, r.Reason)
			default:
				t.Errorf("ping %s mode %d: %s", addr, mode, r.Reason)
			}
		}
	}
}
