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
// DR and TUN are not implemented here (Capabilities rejects them): they need
// IPVS (internal/lb/ipvs).
package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

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
	Logger      *slog.Logger
}

// Backend is the nftables data plane. It implements lb.Backend.
//
// Concurrency: one goroutine at a time (the lb.Reconciler), and one
// Backend applying at a time per process: google/nftables v0.3.0 numbers
// new sets from a package variable.
type Backend struct {
	opts Options
	conn *nftables.Conn
	log  *slog.Logger
	// cache is what the kernel held after the last successful Observe or
	// Apply; nil forces an Observe before the next Apply.
	cache  *observed
	closed bool
	// statsMade is the counting syncStats made last (stats.go); nil:
	// unknown, the next Apply lists the kernel's and rebuilds it.
	statsMade statLayout
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
	return &Backend{opts: opts, conn: c, log: log}, nil
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

// Capabilities of the nftables backend: NAT only; connection-counting
// schedulers approximated; no thresholds, persistence engines or one-packet
// scheduling.
func Capabilities() lb.Capabilities {
	return lb.Capabilities{
		Backend:    "nftables",
		Schedulers: schedulers,
		Methods:    []lb.Method{lb.NAT},
	}
}

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
		} else if !k.Addr.IsValid() || lb.FamilyOf(k.Addr) != k.Family || (k.Proto != lb.TCP && k.Proto != lb.UDP && k.Proto != lb.SCTP) {
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
		if d.Method != lb.NAT {
			return out, fmt.Errorf("nft: %v -> %v: lb_kind %v needs IPVS (lvs_backend ipvs): %w", k.Service, k.Addr, d.Method, lb.ErrUnsupported)
		}
		if lb.FamilyOf(k.Addr.Addr()) != k.Service.Family {
			return out, fmt.Errorf("nft: %v -> %v: destination of another address family: %w", k.Service, k.Addr, lb.ErrUnsupported)
		}
		if k.Addr.Port() == 0 {
			if !k.Service.IsFWMark() && k.Service.Port != 0 {
				return out, fmt.Errorf("nft: %v -> %v: destination without a port: %w", k.Service, k.Addr, lb.ErrUnsupported)
			}
			p.zero = true
		} else {
			p.nonzero = true
		}
		if p.zero && p.nonzero {
			return out, fmt.Errorf("nft: %v: destinations with and without a port cannot share a service: %w", k.Service, lb.ErrUnsupported)
		}
		out.Dests[k] = lb.Dest{Weight: d.Weight, Method: d.Method}
	}
	return out, nil
}

// Apply implements lb.Backend: one batch with the changed services rebuilt.
func (b *Backend) Apply(ctx context.Context, want lb.State) error {
	if b.closed {
		return errClosed
	}
	want, err := checkProject(want)
	if err != nil {
		return err
	}
	if b.cache == nil {
		if _, err := b.Observe(ctx); err != nil {
			return err
		}
	}
	have := b.cache
	if !have.exists && len(want.Services) == 0 {
		return nil // no table is needed yet
	}
	full := !have.exists || have.damaged
	var changed []lb.ServiceKey
	if full {
		changed = sortedKeys(want.Services)
	} else {
		changed = lb.ChangedServices(lb.Diff(have.state, want))
		if len(changed) == 0 {
			if b.statsMade == nil {
				b.applyStats(want, true)
			}
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	bt := newBatch(b, want, have.state, changed)
	if full {
		if have.exists {
			b.conn.DelTable(b.table())
		}
		if err := bt.addBase(); err != nil {
			return err
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
		case inHave:
			bt.removeService(k, have.state.Services[k])
		}
		if err != nil {
			b.cache = nil
			return err
		}
	}
	if err := b.conn.Flush(); err != nil {
		b.cache = nil
		return fmt.Errorf("nft: apply %d services: %w", len(changed), err)
	}
	b.cache = &observed{state: want, exists: true} // want is project's copy
	b.applyStats(want, full)
	return nil
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
		if _, lerr := b.conn.ListTableOfFamily(b.opts.Table, nftables.TableFamilyINet); lerr == nil {
			b.conn.DelTable(b.table())
			if ferr := b.conn.Flush(); ferr != nil {
				err = fmt.Errorf("nft: delete table %s: %w", b.opts.Table, ferr)
			}
		}
	}
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
