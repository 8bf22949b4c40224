// Package nft is vigil's nftables load balancer: virtual services as
// destination NAT in one table it owns (`table inet vigil`), programmed over
// netlink with github.com/google/nftables, every change one atomic batch.
//
// What it does, as LVS-NAT (keepalived lb_kind NAT):
//   - new connections to VIP:PORT/PROTO (or a firewall mark) are DNATed to a
//     real server chosen by the scheduler: rr and wrr rotate through a table
//     (numgen inc), sh and dh hash the source or destination address into
//     256 buckets filled as IPVS fills them, fo takes the highest weight; the
//     schedulers that count connections fall back to the closest stateless
//     one (see Capabilities);
//   - persistence_timeout: the first connection of a client (masked by
//     persistence_granularity) records its real server in a timed map that
//     later connections use; each new connection refreshes the timeout;
//   - conntrack keeps established connections on their real server whatever
//     the maps become: weight 0 (inhibit_on_failure) only stops new
//     connections, and adding or removing a real server never moves an
//     established connection;
//   - replies must come back through the director (the real servers' default
//     route points at it, as in the LVS-NAT layout): nothing is masqueraded,
//     and ip_forward must be on.
//
// Direct routing (lb_kind DR) is implemented in a second table of the
// netdev family, hooked at ingress (see dr.go). TUN is refused: nftables
// cannot encapsulate packets (IP-in-IP, GRE, GUE), so TUN needs IPVS
// (internal/lb/ipvs).
package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/inet"
	"github.com/vigil-ha/vigil/internal/lb"
)

// Options configure a Backend.
type Options struct {
	// Table is the name of the inet table the backend owns (default
	// "vigil").
	Table string
	// Keep leaves the table in place at Close (keepalived -X,
	// --dont-release-ipvs).
	Keep bool
	// NetNS is a file descriptor of the network namespace to program (0:
	// the namespace of the thread calling New).
	NetNS int
	// PersistSize is the maximum number of clients each persistence map
	// remembers (default 65536).
	PersistSize uint32
	// DRTable is the name of the netdev table holding direct-routing
	// services (default "vigil_dr").
	DRTable string
	// FlowTimeout is how long a DR flow is remembered without a packet
	// (default: 900 s, 300 s for UDP services, as IPVS's TCP established
	// and UDP timeouts). FlowSize bounds each DR service's flow map
	// (default 262144); when it is full, new flows are still forwarded by
	// the consistent hash, unrecorded.
	FlowTimeout time.Duration
	FlowSize    uint32
	// SyncedConntrack is for a director whose connection state another
	// director replicates (conntrack_sync): a TCP packet without SYN that
	// would start a connection here is dropped instead of scheduled. It
	// belongs to a connection made through the other director whose entry
	// conntrackd has not committed yet; TCP sends it again, by then the
	// entry is in place and the connection keeps its real server. Without
	// sync the packet is scheduled as before (a real server then resets it
	// or, by chance, the connection lands where it was).
	SyncedConntrack bool
	Logger          *slog.Logger
}

// Backend is the nftables data plane. It implements lb.Backend.
//
// Concurrency: one goroutine at a time (the reconciler, internal/director/reconcile), and one
// Backend applying at a time per process: google/nftables v0.3.0 numbers
// new sets from a package variable.
type Backend struct {
	opts Options
	conn *nftables.Conn
	log  *slog.Logger
	// cache is what the kernel held after the last successful Observe or
	// Apply; nil forces an Observe before the next Apply.
	cache   *observed
	drCache *drObserved
	routes  *resolver     // DR: devices reaching real servers, refreshed by Observe
	raw     *netlink.Conn // nf_tables messages the library cannot encode (fwd)
	nlh     *vnl.Handle   // route and link lookups for DR
	closed  bool
	// statsMade is the counting syncStats made last (stats.go); nil:
	// unknown, the next Apply lists the kernel's and rebuilds it.
	statsMade statLayout
	// refuse (tests only) makes the kernel refuse the batch that builds a
	// service it names: the batch then adds a rule to a chain that does
	// not exist (ENOENT).
	refuse func(lb.ServiceKey) bool
}

// observed is the kernel's table as Observe read it.
type observed struct {
	state  lb.State
	exists bool // the table exists
	// damaged: the table exists but is not a coherent vigil table (an
	// object deleted or added by hand); Apply rebuilds it whole.
	damaged bool
}

// New opens a netlink connection to nftables; it changes nothing.
func New(opts Options) (*Backend, error) {
	if opts.Table == "" {
		opts.Table = "vigil"
	}
	if opts.PersistSize == 0 {
		opts.PersistSize = 65536
	}
	if opts.DRTable == "" {
		opts.DRTable = opts.Table + "_dr"
	}
	if opts.FlowSize == 0 {
		opts.FlowSize = 262144
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	copts := []nftables.ConnOption{nftables.AsLasting(), nftables.WithSockOptions(bigBuffers)}
	if opts.NetNS != 0 {
		copts = append(copts, nftables.WithNetNSFd(opts.NetNS))
	}
	c, err := nftables.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("nft: netlink: %w", err)
	}
	b := &Backend{opts: opts, conn: c, log: log}
	// The raw nf_tables socket and the rtnetlink handle are opened now, in
	// the namespace New runs in (or NetNS), like the library's connection.
	if b.raw, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: opts.NetNS}); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("nft: netlink: %w", err)
	}
	_ = bigBuffers(b.raw)
	if opts.NetNS != 0 {
		b.nlh, err = vnl.NewHandleAt(netns.NsHandle(opts.NetNS), unix.NETLINK_ROUTE)
	} else {
		b.nlh, err = vnl.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		c.CloseLasting()
		b.raw.Close()
		return nil, fmt.Errorf("nft: rtnetlink: %w", err)
	}
	return b, nil
}

// bigBuffers sizes the socket for batches of thousands of objects: the
// kernel acknowledges every message of a batch before we read any. Without
// CAP_NET_ADMIN the forced sizes are refused and the defaults stay, which
// serve small tables.
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) {
		for _, o := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o, 64<<20)
		}
	})
}

// Name implements lb.Backend.
func (b *Backend) Name() string { return "nftables" }

// Capabilities implements lb.Backend.
func (b *Backend) Capabilities() lb.Capabilities { return Capabilities() }

// Capabilities of the nftables backend: NAT and DR; connection-counting
// schedulers approximated; no thresholds, persistence engines or one-packet
// scheduling; no TUN.
func Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Backend:    "nftables",
		Schedulers: schedulers,
		MethodSchedulers: map[lb.Method]map[string]lb.Support{
			lb.DR: drSchedulers,
		},
		Methods: []lb.Method{lb.NAT, lb.DR},
		MethodNotes: map[lb.Method]string{
			lb.TUN: "nftables cannot encapsulate packets (IP-in-IP, GRE, GUE) and this data plane has no tunnel devices: TUN needs IPVS (lvs_backend ipvs, on a kernel with ip_vs and ipip)",
		},
		MethodWarnings: map[lb.Method]string{
			lb.DR: "ICMP errors about its connections (path MTU) and IP fragments after the first reach the director, not the real servers (IPVS relays them): keep one MTU on the paths to the clients, or clamp the MSS",
		},
		FWMarkNotes: map[lb.Method]string{
			lb.DR: "direct routing on nftables runs at the netdev ingress hook, before iptables and nftables mangle rules: only a mark set at ingress (tc, or a netdev ingress chain with priority below 0) selects this service",
		},
	}
}

// drSchedulers: under DR, mh is the Maglev hash it is named after.
var drSchedulers = func() map[string]lb.Support {
	m := map[string]lb.Support{}
	for k, v := range schedulers {
		m[k] = v
	}
	m["mh"] = lb.Support{As: "mh"}
	return m
}()

// netlinkHandle is the rtnetlink handle DR uses to find the device that
// reaches each real server.
func (b *Backend) netlinkHandle() (*vnl.Handle, error) { return b.nlh, nil }

func (b *Backend) table() *nftables.Table {
	return &nftables.Table{Name: b.opts.Table, Family: nftables.TableFamilyINet}
}

// project drops what this backend does not hold (thresholds, tunnels,
// persistence engines, ops) so that comparisons with Observe are stable.
func project(s lb.State) lb.State {
	out := lb.State{Services: make(map[lb.ServiceKey]lb.Service, len(s.Services)), Dests: make(map[lb.DestKey]lb.Dest, len(s.Dests))}
	for k, v := range s.Services {
		v.PE = ""
		v.Flags &^= lb.FlagOnePacket
		out.Services[k] = v
	}
	for k, d := range s.Dests {
		out.Dests[k] = lb.Dest{Weight: d.Weight, Method: d.Method}
	}
	return out
}

// split validates want and divides it between the NAT table and the DR
// table: a service goes where its destinations' method says; one without
// destinations stays where it is (NAT when new).
func (b *Backend) split(want lb.State) (nat, dr lb.State, err error) {
	p, err := checkProject(want)
	if err != nil {
		return nat, dr, err
	}
	nat = lb.State{Services: make(map[lb.ServiceKey]lb.Service, len(p.Services)), Dests: make(map[lb.DestKey]lb.Dest, len(p.Dests))}
	dr = lb.State{Services: make(map[lb.ServiceKey]lb.Service, len(p.Services)), Dests: make(map[lb.DestKey]lb.Dest, len(p.Dests))}
	method := make(map[lb.ServiceKey]lb.Method, len(p.Services))
	for k, d := range p.Dests {
		if m, ok := method[k.Service]; ok && m != d.Method {
			return nat, dr, fmt.Errorf("nft: %v: NAT and DR real servers in one virtual server need IPVS (lvs_backend ipvs): %w", k.Service, lb.ErrUnsupported)
		}
		method[k.Service] = d.Method
	}
	for k, v := range p.Services {
		m, ok := method[k]
		if !ok && b.drCache != nil {
			if _, was := b.drCache.present[k]; was {
				m = lb.DR
			}
		}
		if m == lb.DR {
			dr.Services[k] = v
		} else {
			nat.Services[k] = v
		}
	}
	seen := map[lb.ServiceKey]map[netip.Addr]bool{}
	for k, d := range p.Dests {
		if d.Method == lb.DR {
			if seen[k.Service] == nil {
				seen[k.Service] = map[netip.Addr]bool{}
			}
			if seen[k.Service][k.Addr.Addr()] {
				return nat, dr, fmt.Errorf("nft: %v: two DR real servers at %v: direct routing cannot change the port, so they would be one: %w", k.Service, k.Addr.Addr(), lb.ErrUnsupported)
			}
			seen[k.Service][k.Addr.Addr()] = true
			dr.Dests[k] = d
		} else {
			nat.Dests[k] = d
		}
	}
	return nat, dr, nil
}

// Project implements lb.Projector: what Observe returns after Apply(want).
func (b *Backend) Project(want lb.State) lb.State { return project(want) }

// checkProject validates want, rejects what the table cannot express and
// returns the projection, in one pass over each map (Apply's cost on a
// 10,000-destination state is these passes).
func checkProject(want lb.State) (lb.State, error) {
	out := lb.State{Services: make(map[lb.ServiceKey]lb.Service, len(want.Services)), Dests: make(map[lb.DestKey]lb.Dest, len(want.Dests))}
	type ports struct{ zero, nonzero bool }
	seen := make(map[lb.ServiceKey]*ports, len(want.Services))
	for k, v := range want.Services {
		seen[k] = &ports{}
		if k.IsFWMark() {
			if k.Addr.IsValid() || k.Proto != 0 || k.Port != 0 {
				return out, fmt.Errorf("nft: service %v: fwmark service with address, protocol or port", k)
			}
		} else if !k.Addr.IsValid() || inet.FamilyOf(k.Addr) != k.Family || (k.Proto != lb.TCP && k.Proto != lb.UDP && k.Proto != lb.SCTP) {
			return out, fmt.Errorf("nft: service %v: bad key", k)
		}
		if _, ok := schedulers[v.Scheduler]; !ok {
			return out, fmt.Errorf("nft: %v: scheduler %q: %w", k, v.Scheduler, lb.ErrUnsupported)
		}
		v.PE = ""
		v.Flags &^= lb.FlagOnePacket
		out.Services[k] = v
	}
	for k, d := range want.Dests {
		p := seen[k.Service]
		if p == nil {
			return out, fmt.Errorf("nft: destination %v of absent service %v", k.Addr, k.Service)
		}
		switch d.Method {
		case lb.NAT, lb.DR:
		case lb.TUN:
			return out, fmt.Errorf("nft: %v -> %v: lb_kind TUN needs IPVS (lvs_backend ipvs): nftables cannot encapsulate packets (IP-in-IP, GRE, GUE): %w", k.Service, k.Addr, lb.ErrUnsupported)
		default:
			return out, fmt.Errorf("nft: %v -> %v: lb_kind %v needs IPVS (lvs_backend ipvs): %w", k.Service, k.Addr, d.Method, lb.ErrUnsupported)
		}
		if inet.FamilyOf(k.Addr.Addr()) != k.Service.Family {
			return out, fmt.Errorf("nft: %v -> %v: destination of another address family: %w", k.Service, k.Addr, lb.ErrUnsupported)
		}
		if k.Addr.Port() == 0 && d.Method == lb.NAT {
			if !k.Service.IsFWMark() && k.Service.Port != 0 {
				return out, fmt.Errorf("nft: %v -> %v: destination without a port: %w", k.Service, k.Addr, lb.ErrUnsupported)
			}
			p.zero = true
		} else if d.Method == lb.NAT {
			p.nonzero = true
		}
		if p.zero && p.nonzero {
			return out, fmt.Errorf("nft: %v: destinations with and without a port cannot share a service: %w", k.Service, lb.ErrUnsupported)
		}
		out.Dests[k] = lb.Dest{Weight: d.Weight, Method: d.Method}
	}
	return out, nil
}

// Apply implements lb.Backend: one batch with the changed services rebuilt
// in the NAT table and the DR table, then (when the devices that reach DR
// real servers change) one transaction for the DR ingress chains.
//
// When the kernel refuses that batch, Apply falls back to one batch per
// changed service, so that one service the kernel will not take (a limit,
// a module it cannot load, memory) does not keep every other one out:
// keepalived too adds each service with its own ipvsadm command, and logs
// the one that fails. The services refused keep what the kernel has for
// them (nothing, or their previous version), and Apply returns an error
// naming them, which the reconciler logs, counts and retries.
func (b *Backend) Apply(ctx context.Context, want lb.State) error {
	err := b.apply(ctx, want)
	if err == nil || ctx.Err() != nil || errors.Is(err, lb.ErrUnsupported) || errors.Is(err, errClosed) {
		return err
	}
	return b.applyEach(ctx, want, err)
}

// maxRefusedListed bounds the services an Apply error names.
const maxRefusedListed = 8

// applyEach applies want one service at a time (see Apply); whole is the
// error of the batch that held them all.
func (b *Backend) applyEach(ctx context.Context, want lb.State, whole error) error {
	b.log.Warn("nft: the kernel refused the batch; applying one virtual service at a time", "err", whole)
	cur, err := b.Observe(ctx)
	if err != nil {
		return errors.Join(whole, err)
	}
	all := sortedKeys(want.Services)
	for _, k := range sortedKeys(cur.Services) {
		if _, ok := want.Services[k]; !ok {
			all = append(all, k) // removed ones last
		}
	}
	var refused []string
	for _, k := range all {
		if sameService(cur, want, k) {
			continue
		}
		next := cur.Clone()
		setService(next, want, k)
		if err := b.apply(ctx, next); err != nil {
			if ctx.Err() != nil {
				return err
			}
			refused = append(refused, fmt.Sprintf("%v: %v", k, err))
			b.log.Warn("nft: the kernel refused a virtual service; the others are applied", "service", k.String(), "err", err)
			// The failed batch reset the caches: read the kernel again.
			if cur, err = b.Observe(ctx); err != nil {
				return errors.Join(whole, err)
			}
			continue
		}
		cur = next
	}
	if len(refused) == 0 {
		return nil // the whole batch failed, each service alone did not
	}
	n := len(refused)
	if n > maxRefusedListed {
		refused = append(refused[:maxRefusedListed], fmt.Sprintf("and %d more", n-maxRefusedListed))
	}
	return fmt.Errorf("nft: the kernel refused %d of %d virtual services (the others are applied): %s", n, len(want.Services), strings.Join(refused, "; "))
}

// sameService reports whether a and b hold service k alike: the service
// and its destinations.
func sameService(a, b lb.State, k lb.ServiceKey) bool {
	sa, ina := a.Services[k]
	sb, inb := b.Services[k]
	if ina != inb || sa != sb {
		return false
	}
	da := a.DestsOf(k)
	return slices.Equal(da, b.DestsOf(k)) &&
		!slices.ContainsFunc(da, func(dk lb.DestKey) bool { return a.Dests[dk] != b.Dests[dk] })
}

// setService makes st hold service k as from holds it (or not at all).
func setService(st, from lb.State, k lb.ServiceKey) {
	delete(st.Services, k)
	for _, dk := range st.DestsOf(k) {
		delete(st.Dests, dk)
	}
	if svc, ok := from.Services[k]; ok {
		st.Services[k] = svc
		for _, dk := range from.DestsOf(k) {
			st.Dests[dk] = from.Dests[dk]
		}
	}
}

// refuseForTest queues what the kernel refuses when the test hook names k.
func (b *Backend) refuseForTest(t *nftables.Table, k lb.ServiceKey) {
	if b.refuse != nil && b.refuse(k) {
		b.conn.AddRule(&nftables.Rule{Table: t, Chain: &nftables.Chain{Name: "refused_by_test", Table: t}})
	}
}

// apply is one Apply attempt: every change in one batch.
func (b *Backend) apply(ctx context.Context, want lb.State) error {
	if b.closed {
		return errClosed
	}
	if b.cache == nil || b.drCache == nil {
		if _, err := b.Observe(ctx); err != nil {
			return err
		}
	}
	nat, dr, err := b.split(want)
	if err != nil {
		return err
	}
	// Routes found by the last Observe (or earlier Applies) serve: the
	// reconciler observes every resync interval, which looks them up anew.
	if b.routes == nil {
		b.routes = b.newResolver()
	}
	r := b.routes
	natQueued, natFull, err := b.queueNAT(ctx, nat)
	if err != nil {
		b.cache = nil
		return err
	}
	drQueued, plan, err := b.queueDR(ctx, dr, r)
	if err != nil {
		b.cache, b.drCache = nil, nil
		return err
	}
	if natQueued || drQueued {
		if err := b.conn.Flush(); err != nil {
			b.cache, b.drCache = nil, nil
			return fmt.Errorf("nft: apply: %w", err)
		}
	}
	if drQueued {
		if err := plan.finish(b); err != nil {
			b.cache, b.drCache = nil, nil
			return err
		}
	}
	if natQueued {
		b.cache = &observed{state: nat, exists: true}
	}
	// Counters follow the NAT services (DR traffic bypasses conntrack).
	if (natQueued || b.statsMade == nil) && b.cache != nil && b.cache.exists {
		b.applyStats(nat, natFull || b.statsMade == nil)
	}
	if drQueued {
		obs := newDRObserved()
		obs.exists = len(dr.Services) > 0
		obs.state = dr
		for k := range dr.Services {
			obs.present[k] = true
		}
		for dk := range dr.Dests {
			obs.ifindex[dk] = r.ifindex(dk.Addr.Addr())
		}
		obs.devs = devsOf(dr, r)
		b.drCache = obs
	}
	return nil
}

// queueNAT queues the NAT table's changes; it reports whether it queued
// anything.
func (b *Backend) queueNAT(ctx context.Context, want lb.State) (queued, full bool, err error) {
	have := b.cache
	if !have.exists && len(want.Services) == 0 {
		return false, false, nil // no table is needed yet
	}
	full = !have.exists || have.damaged
	var changed []lb.ServiceKey
	if full {
		changed = sortedKeys(want.Services)
	} else {
		changed = lb.ChangedServices(lb.Diff(have.state, want))
		if len(changed) == 0 {
			return false, false, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return false, false, err
	}
	bt := newBatch(b, want, have.state, changed)
	if full {
		if have.exists {
			b.conn.DelTable(b.table())
		}
		if err := bt.addBase(); err != nil {
			return false, false, err
		}
	}
	for _, k := range changed {
		_, inWant := want.Services[k]
		_, inHave := have.state.Services[k]
		if full {
			inHave = false
		}
		var err error
		switch {
		case inWant:
			err = bt.buildService(k, inHave)
			b.refuseForTest(bt.t, k)
		case inHave:
			bt.removeService(k, have.state.Services[k])
		}
		if err != nil {
			return false, false, err
		}
	}
	return true, full, nil
}

// applyStats brings the counters to want; a failure is logged, not
// returned: the services are in place, counters are for people.
func (b *Backend) applyStats(want lb.State, all bool) {
	if err := b.syncStats(want, all); err != nil {
		b.log.Warn("nft: counters not updated", "err", err)
	}
}

// Close implements lb.Backend: it removes the table unless Keep. A second
// Close does nothing.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	var err error
	if !b.opts.Keep {
		for _, t := range []*nftables.Table{b.table(), b.drTable()} {
			if _, lerr := b.conn.ListTableOfFamily(t.Name, t.Family); lerr == nil {
				b.conn.DelTable(t)
				if ferr := b.conn.Flush(); ferr != nil {
					err = errors.Join(err, fmt.Errorf("nft: delete table %s: %w", t.Name, ferr))
				}
			}
		}
	}
	b.nlh.Close()
	b.raw.Close()
	return errors.Join(err, b.conn.CloseLasting())
}

var errClosed = errors.New("nft: backend closed")

func sortedKeys(m map[lb.ServiceKey]lb.Service) []lb.ServiceKey {
	ks := make([]lb.ServiceKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, lb.ServiceKey.Compare)
	return ks
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || (err != nil && strings.Contains(err.Error(), "no such file or directory"))
}
