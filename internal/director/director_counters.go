package director

import (
	"context"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/lb/ipvs"
	"github.com/vigil-ha/vigil/internal/lb/nft"
	"github.com/vigil-ha/vigil/internal/status"
)

// statsReader picks the counter reader of a data plane: the backends'
// own readers open connections of their own, so a scrape never waits for
// (nor disturbs) the reconciler. nil for a backend without counters.
func statsReader(b lb.Backend) lb.StatsReader {
	if sr, ok := b.(lb.StatsReader); ok {
		return sr
	}
	switch b.(type) {
	case *nft.Backend:
		return nft.StatsReader{}
	case *ipvs.Backend:
		return ipvs.StatsReader{}
	}
	return nil
}

// vsIdentity fills the labels of a virtual server: its address, port and
// protocol, or its mark, or its group.
func vsIdentity(vs *status.VirtualServer, spec lb.VirtualServer) {
	switch {
	case spec.Group != nil:
		vs.Group = spec.Group.Name
		if spec.Proto != 0 {
			vs.Protocol = spec.Proto.String()
		}
	case spec.FWMark != 0:
		vs.FWMark = spec.FWMark
	default:
		vs.VIP, vs.Port, vs.Protocol = spec.Addr.String(), int(spec.Port), spec.Proto.String()
	}
}

// serviceKeys are the kernel services of each virtual server of a
// snapshot, in its order.
type serviceKeys [][]lb.ServiceKey

// addCounters adds the kernel's counters to the virtual and real servers
// of a snapshot: a virtual server sums its kernel services (a group has
// several), a real server its destinations in them.
func addCounters(vss []status.VirtualServer, keys serviceKeys, st lb.Stats) {
	for i := range vss {
		vs := &vss[i]
		var sum status.Kernel
		found := false
		for _, k := range keys[i] {
			if c, ok := st.Services[k]; ok {
				sum.Add(kernel(c))
				found = true
			}
		}
		if found {
			vs.Kernel = &sum
		}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			a, err := netip.ParseAddrPort(rs.Addr)
			if err != nil {
				continue
			}
			var rsum status.Kernel
			rfound := false
			for _, k := range keys[i] {
				// A destination of a port-less service carries port 0.
				for _, d := range []netip.AddrPort{a, netip.AddrPortFrom(a.Addr(), 0)} {
					if c, ok := st.Dests[lb.DestKey{Service: k, Addr: d}]; ok {
						rsum.Add(kernel(c))
						rfound = true
						break
					}
				}
			}
			if rfound {
				rs.Kernel = &rsum
			}
		}
	}
}

func kernel(c lb.Counters) status.Kernel {
	return status.Kernel{Connections: c.Conns, PacketsIn: c.InPkts, PacketsOut: c.OutPkts, BytesIn: c.InBytes, BytesOut: c.OutBytes}
}

// noteRealTransition records when a real server changed health, for its
// `since`.
func (d *Director) noteRealTransition(ev lb.Event, at time.Time) {
	if ev.Kind != lb.RealUp && ev.Kind != lb.RealDown {
		return
	}
	if d.rsSince == nil {
		d.rsSince = map[lb.RealID]time.Time{}
	}
	d.rsSince[lb.RealID{VS: ev.VS, Addr: ev.Real}] = at
	if len(d.rsSince) > 2*len(d.byID)+16 {
		// Reloads removed real servers: forget them.
		for k := range d.rsSince {
			if _, ok := d.byID[k.String()]; !ok {
				delete(d.rsSince, k)
			}
		}
	}
}

// readCounters adds the kernel's counters to a snapshot; a failed read
// leaves them out (the status still answers).
func (d *Director) readCounters(ctx context.Context, vss []status.VirtualServer, keys serviceKeys) {
	if d.stats == nil {
		return
	}
	st, err := d.stats.Stats(ctx)
	if err != nil {
		d.log.Debug("kernel counters not read", "err", err)
		return
	}
	addCounters(vss, keys, st)
}
