// Package ipvs is vigil's IPVS load balancer: virtual services in the
// kernel's IP virtual server over generic netlink with
// github.com/cloudflare/ipvs, as keepalived programs them (ipvswrapper.c):
// every scheduler, NAT / DR / TUN, persistence with granularity, thresholds.
//
// IPVS has no transactions: Apply sends the difference as a sequence of
// commands, additions before removals, so a service never passes through an
// empty pool. The backend owns the services it created or was asked to hold
// (the keys of the desired state); services it never managed are left alone,
// as keepalived leaves them (unless Flush, keepalived's lvs_flush).
//
// The kernel that runs the tests here has no IPVS: the package is tested
// against a fake ipvs.Client that checks every command and field, and by
// namespace tests behind netnstest.IPVS that run where the kernel has it.
package ipvs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"syscall"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/vigil-ha/vigil/internal/inet"
	"github.com/vigil-ha/vigil/internal/lb"
)

// Available reports whether the running kernel has IPVS (/proc/net/ip_vs),
// which is how automatic backend selection chooses it.
func Available() bool {
	_, err := os.Stat("/proc/net/ip_vs")
	return err == nil
}

// Options configure a Backend.
type Options struct {
	// Client talks to IPVS; nil dials generic netlink in the namespace of
	// the calling thread.
	Client cfipvs.Client
	// Keep leaves the services in place at Close (keepalived -X).
	Keep bool
	// Flush removes every IPVS service at the first Apply (global_defs
	// lvs_flush).
	Flush bool
	// FlushOnStop removes every IPVS service at Close, not only the ones
	// the backend manages (global_defs lvs_flush_on_stop without VS;
	// keepalived's ipvs_flush_cmd at shutdown). Keep wins over it.
	FlushOnStop bool
	// All makes Observe report every service in the kernel, not only the
	// ones the backend manages (for `vigil lb show`).
	All    bool
	Logger *slog.Logger
}

// Backend is the IPVS data plane. It implements lb.Backend.
//
// Concurrency: one goroutine at a time (the reconciler, internal/director/reconcile).
type Backend struct {
	opts  Options
	c     cfipvs.Client
	log   *slog.Logger
	owned map[lb.ServiceKey]bool
	// cache is the kernel's state of the owned services after the last
	// successful Observe or Apply; nil forces an Observe first.
	cache   *lb.State
	flushed bool
	closed  bool
}

// New returns a Backend; it changes nothing in the kernel.
func New(opts Options) (*Backend, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := opts.Client
	if c == nil {
		var err error
		if c, err = cfipvs.New(); err != nil {
			return nil, fmt.Errorf("ipvs: generic netlink family IPVS: %w", err)
		}
	}
	return &Backend{opts: opts, c: c, log: log, owned: map[lb.ServiceKey]bool{}}, nil
}

// Name implements lb.Backend.
func (b *Backend) Name() string { return "ipvs" }

// Capabilities implements lb.Backend.
func (b *Backend) Capabilities() lb.Capabilities { return Capabilities() }

// Capabilities of IPVS: every scheduler keepalived accepts, every method,
// thresholds, one-packet scheduling and mixed-family tunnels.
// Persistence engines (persistence_engine sip) are not carried by
// cloudflare/ipvs v0.12.0's netlink encoding, so they are ignored with a
// warning.
func Capabilities() lb.Capabilities {
	s := map[string]lb.Support{}
	// keepalived 2.2.7 check_parser.c lvs_schedulers.
	for _, n := range []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"} {
		s[n] = lb.Support{As: n}
	}
	return lb.Capabilities{
		Backend:      "ipvs",
		Schedulers:   s,
		Methods:      []lb.Method{lb.NAT, lb.DR, lb.TUN},
		Thresholds:   true,
		OnePacket:    true,
		MixedFamily:  true,
		MixedMethods: true,
		MixedPorts:   true,
	}
}

// Project implements lb.Projector: IPVS holds everything but the
// persistence engine name.
func (b *Backend) Project(want lb.State) lb.State {
	out := want.Clone()
	for k, v := range out.Services {
		v.PE = ""
		out.Services[k] = v
	}
	return out
}

var errClosed = errors.New("ipvs: backend closed")

// Observe implements lb.Backend.
func (b *Backend) Observe(ctx context.Context) (lb.State, error) {
	if b.closed {
		return lb.State{}, errClosed
	}
	all, err := b.read(ctx)
	if err != nil {
		b.cache = nil
		return lb.State{}, err
	}
	mine := b.filter(all, b.owned)
	b.cache = &mine
	if b.opts.All {
		return all, nil
	}
	return mine.Clone(), nil
}

// read returns every service in the kernel.
func (b *Backend) read(ctx context.Context) (lb.State, error) {
	st := lb.NewState()
	svcs, err := b.c.Services()
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil // no service at all
	}
	if err != nil {
		return st, fmt.Errorf("ipvs: list services: %w", err)
	}
	for _, s := range svcs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		k, v, err := fromService(s.Service)
		if err != nil {
			b.log.Warn("ipvs: ignoring a service vigil cannot represent", "err", err)
			continue
		}
		st.Services[k] = v
		ds, err := b.c.Destinations(s.Service)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("ipvs: list destinations of %v: %w", k, err)
		}
		for _, d := range ds {
			a, dv := fromDest(d.Destination)
			st.Dests[lb.DestKey{Service: k, Addr: a}] = dv
		}
	}
	return st, nil
}

// filter keeps the services in keys.
func (b *Backend) filter(all lb.State, keys map[lb.ServiceKey]bool) lb.State {
	out := lb.NewState()
	for k, v := range all.Services {
		if keys[k] {
			out.Services[k] = v
		}
	}
	for k, v := range all.Dests {
		if keys[k.Service] {
			out.Dests[k] = v
		}
	}
	return out
}

// Apply implements lb.Backend.
func (b *Backend) Apply(ctx context.Context, want lb.State) error {
	if b.closed {
		return errClosed
	}
	if err := want.Validate(); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	want = b.Project(want)
	if b.opts.Flush && !b.flushed {
		if err := b.flush("lvs_flush"); err != nil {
			return err
		}
		b.flushed = true
		b.cache = nil
	}
	// The services to manage: what we made plus what is wanted (a wanted
	// service already in the kernel, left by a previous run, is adopted).
	for k := range want.Services {
		b.owned[k] = true
	}
	if b.cache == nil {
		if _, err := b.Observe(ctx); err != nil {
			return err
		}
	}
	have := *b.cache
	for _, c := range lb.Diff(have, want) {
		if err := ctx.Err(); err != nil {
			b.cache = nil
			return err
		}
		if err := b.do(c); err != nil {
			b.cache = nil
			return err
		}
		have = lb.ApplyChanges(have, []lb.Change{c})
		if c.Op == lb.DelService {
			delete(b.owned, c.Service)
		}
	}
	b.cache = &have
	return nil
}

func (b *Backend) flush(why string) error {
	all, err := b.read(context.Background())
	if err != nil {
		return err
	}
	for k := range all.Services {
		if err := b.c.RemoveService(toService(k, lb.Service{})); err != nil && !isNotExist(err) {
			return fmt.Errorf("ipvs: %s: remove %v: %w", why, k, err)
		}
	}
	return nil
}

// do sends one change. keepalived's ipvs_cmd semantics: an existing service
// or destination being added is edited instead (a previous run's leftover),
// a missing one being removed is not an error.
func (b *Backend) do(c lb.Change) error {
	svc := toService(c.Service, c.Attrs)
	var err error
	switch c.Op {
	case lb.AddService:
		if err = b.c.CreateService(svc); isExist(err) {
			err = b.c.UpdateService(svc)
		}
	case lb.UpdateService:
		err = b.c.UpdateService(svc)
	case lb.DelService:
		if err = b.c.RemoveService(svc); isNotExist(err) {
			err = nil
		}
	case lb.AddDest:
		d := toDest(c.Dest, c.DestAttrs)
		if err = b.c.CreateDestination(svc, d); isExist(err) {
			err = b.c.UpdateDestination(svc, d)
		}
	case lb.UpdateDest:
		err = b.c.UpdateDestination(svc, toDest(c.Dest, c.DestAttrs))
	case lb.DelDest:
		if err = b.c.RemoveDestination(svc, toDest(c.Dest, lb.Dest{})); isNotExist(err) {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("ipvs: %v: %w", c, err)
	}
	return nil
}

// Close implements lb.Backend: it removes the services it manages (every
// service with FlushOnStop) unless Keep (keepalived clear_services at
// shutdown). Removing a service removes its destinations.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	var errs []error
	if !b.opts.Keep && b.opts.FlushOnStop {
		if err := b.flush("lvs_flush_on_stop"); err != nil {
			errs = append(errs, err)
		}
	} else if !b.opts.Keep {
		for k := range b.owned {
			if err := b.c.RemoveService(toService(k, lb.Service{})); err != nil && !isNotExist(err) {
				errs = append(errs, fmt.Errorf("ipvs: remove %v: %w", k, err))
			}
		}
	}
	if c, ok := b.c.(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func isExist(err error) bool {
	return errors.Is(err, syscall.EEXIST) || errors.Is(err, fs.ErrExist)
}

func isNotExist(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) || errors.Is(err, fs.ErrNotExist)
}

// Conversions between lb and cloudflare/ipvs values.

// svcFlagPersistent and svcFlagHashed are set by the backend and the kernel,
// never part of lb.Flags.
const (
	svcFlagPersistent = cfipvs.ServicePersistent
	svcFlagHashed     = cfipvs.ServiceHashed
)

func family(f lb.Family) cfipvs.AddressFamily {
	if f == lb.IPv6 {
		return cfipvs.INET6
	}
	return cfipvs.INET
}

func addrFamily(a netip.Addr) cfipvs.AddressFamily {
	return family(inet.FamilyOf(a))
}

// toService is what keepalived's ipvs_set_srule fills in.
func toService(k lb.ServiceKey, s lb.Service) cfipvs.Service {
	out := cfipvs.Service{
		Family:    family(k.Family),
		Scheduler: s.Scheduler,
		Flags:     cfipvs.Flags(s.Flags),
		Timeout:   s.Timeout,
	}
	if k.IsFWMark() {
		out.FWMark = k.FWMark
	} else {
		out.Address, out.Port, out.Protocol = k.Addr, k.Port, cfipvs.Protocol(k.Proto)
	}
	nm := s.Netmask
	if nm == 0 {
		nm = lb.FullNetmask(k.Family)
	}
	if s.Timeout > 0 {
		out.Flags |= svcFlagPersistent
	}
	if k.Family == lb.IPv6 {
		out.Netmask = netmask.MaskFrom(int(min(nm, 128)), 128)
	} else {
		out.Netmask = netmask.MaskFrom4([4]byte{byte(nm >> 24), byte(nm >> 16), byte(nm >> 8), byte(nm)})
	}
	return out
}

func fromService(s cfipvs.Service) (lb.ServiceKey, lb.Service, error) {
	var k lb.ServiceKey
	switch s.Family {
	case cfipvs.INET:
		k.Family = lb.IPv4
	case cfipvs.INET6:
		k.Family = lb.IPv6
	default:
		return k, lb.Service{}, fmt.Errorf("service %v: family %v", s.Address, s.Family)
	}
	if s.FWMark != 0 {
		k.FWMark = s.FWMark
	} else {
		k.Addr, k.Port, k.Proto = s.Address.Unmap(), s.Port, lb.Protocol(s.Protocol)
		if !k.Addr.IsValid() {
			return k, lb.Service{}, fmt.Errorf("service without address")
		}
	}
	v := lb.Service{Scheduler: s.Scheduler, Flags: lb.Flags(s.Flags &^ (svcFlagPersistent | svcFlagHashed))}
	if s.Flags&svcFlagPersistent != 0 {
		v.Timeout = s.Timeout
	}
	v.Netmask = lb.FullNetmask(k.Family)
	if v.Timeout > 0 && s.Netmask.IsValid() {
		if k.Family == lb.IPv6 {
			v.Netmask = uint32(s.Netmask.Bits())
		} else if b := s.Netmask.AsSlice(); len(b) == 4 {
			v.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
	}
	return k, v, nil
}

func toDest(a netip.AddrPort, d lb.Dest) cfipvs.Destination {
	out := cfipvs.Destination{
		Address:        a.Addr(),
		Port:           a.Port(),
		Family:         addrFamily(a.Addr()),
		Weight:         d.Weight,
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
	}
	switch d.Method {
	case lb.DR:
		out.FwdMethod = cfipvs.DirectRoute
	case lb.TUN:
		out.FwdMethod = cfipvs.Tunnel
		out.TunnelType = cfipvs.TunnelType(d.Tunnel.Type)
		out.TunnelPort = d.Tunnel.Port
		out.TunnelFlags = cfipvs.TunnelFlags(d.Tunnel.Csum)
	default:
		out.FwdMethod = cfipvs.Masquerade
	}
	return out
}

func fromDest(d cfipvs.Destination) (netip.AddrPort, lb.Dest) {
	out := lb.Dest{Weight: d.Weight, UThreshold: d.UpperThreshold, LThreshold: d.LowerThreshold}
	switch d.FwdMethod {
	case cfipvs.DirectRoute:
		out.Method = lb.DR
	case cfipvs.Tunnel:
		out.Method = lb.TUN
		out.Tunnel = lb.Tunnel{Type: lb.TunnelType(d.TunnelType), Port: d.TunnelPort, Csum: uint16(d.TunnelFlags)}
	default:
		out.Method = lb.NAT
	}
	return netip.AddrPortFrom(d.Address.Unmap(), d.Port), out
}
