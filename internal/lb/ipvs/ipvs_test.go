package ipvs

import (
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	cfipvs "github.com/cloudflare/ipvs"
	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lb"
)

// fakeIPVS is an in-memory IPVS behind the cloudflare/ipvs Client interface.
// It answers as the kernel and the library do (EEXIST, ENOENT,
// fs.ErrNotExist for an empty dump, the hashed flag on every service) and
// logs every command with all its fields.
type fakeIPVS struct {
	svcs  map[svcID]cfipvs.Service
	dests map[svcID][]cfipvs.Destination
	log   []string
	fail  error
	// Statistics the kernel would report (64-bit, or 32-bit only).
	svcStats  map[svcID]cfipvs.Stats
	destStats map[netip.AddrPort]cfipvs.Stats
	only32    bool
}

func (f *fakeIPVS) stats(s cfipvs.Stats) (s32, s64 cfipvs.Stats) {
	if f.only32 {
		return s, cfipvs.Stats{}
	}
	return cfipvs.Stats{Connections: s.Connections & 0xffffffff}, s
}

type svcID struct {
	fam   cfipvs.AddressFamily
	proto cfipvs.Protocol
	addr  netip.Addr
	port  uint16
	mark  uint32
}

func idOf(s cfipvs.Service) svcID {
	if s.FWMark != 0 {
		return svcID{fam: s.Family, mark: s.FWMark}
	}
	return svcID{fam: s.Family, proto: s.Protocol, addr: s.Address, port: s.Port}
}

func newFake() *fakeIPVS {
	return &fakeIPVS{svcs: map[svcID]cfipvs.Service{}, dests: map[svcID][]cfipvs.Destination{}}
}

func svcString(s cfipvs.Service) string {
	id := fmt.Sprintf("%v %v %v", s.Family, s.Protocol, netip.AddrPortFrom(s.Address, s.Port))
	if s.FWMark != 0 {
		id = fmt.Sprintf("%v fwmark %d", s.Family, s.FWMark)
	}
	return fmt.Sprintf("%s sched=%s flags=%#x timeout=%d netmask=%v", id, s.Scheduler, uint32(s.Flags), s.Timeout, s.Netmask)
}

func destString(d cfipvs.Destination) string {
	return fmt.Sprintf("%v %v fwd=%v weight=%d uthresh=%d lthresh=%d tun=%v/%d/%v", d.Family, netip.AddrPortFrom(d.Address, d.Port), d.FwdMethod, d.Weight,
		d.UpperThreshold, d.LowerThreshold, d.TunnelType, d.TunnelPort, d.TunnelFlags)
}

func (f *fakeIPVS) record(s string) { f.log = append(f.log, s) }

func (f *fakeIPVS) Info() (cfipvs.Info, error)     { return cfipvs.Info{}, nil }
func (f *fakeIPVS) Config() (cfipvs.Config, error) { return cfipvs.Config{}, nil }
func (f *fakeIPVS) SetConfig(cfipvs.Config) error  { return nil }
func (f *fakeIPVS) Service(s cfipvs.Service) (cfipvs.ServiceExtended, error) {
	v, ok := f.svcs[idOf(s)]
	if !ok {
		return cfipvs.ServiceExtended{}, syscall.ESRCH
	}
	return cfipvs.ServiceExtended{Service: v}, nil
}

func (f *fakeIPVS) Services() ([]cfipvs.ServiceExtended, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if len(f.svcs) == 0 {
		return nil, fs.ErrNotExist // cloudflare/ipvs: an empty dump
	}
	var out []cfipvs.ServiceExtended
	for _, s := range f.svcs {
		s32, s64 := f.stats(f.svcStats[idOf(s)])
		out = append(out, cfipvs.ServiceExtended{Service: s, Stats: s32, Stats64: s64})
	}
	return out, nil
}

func (f *fakeIPVS) CreateService(s cfipvs.Service) error {
	f.record("CreateService " + svcString(s))
	if _, ok := f.svcs[idOf(s)]; ok {
		return syscall.EEXIST
	}
	s.Flags |= cfipvs.ServiceHashed // the kernel's
	f.svcs[idOf(s)] = s
	return nil
}

func (f *fakeIPVS) UpdateService(s cfipvs.Service) error {
	f.record("UpdateService " + svcString(s))
	if _, ok := f.svcs[idOf(s)]; !ok {
		return syscall.ESRCH
	}
	s.Flags |= cfipvs.ServiceHashed
	f.svcs[idOf(s)] = s
	return nil
}

func (f *fakeIPVS) RemoveService(s cfipvs.Service) error {
	f.record("RemoveService " + svcString(s))
	if _, ok := f.svcs[idOf(s)]; !ok {
		return syscall.ESRCH
	}
	delete(f.svcs, idOf(s))
	delete(f.dests, idOf(s))
	return nil
}

func (f *fakeIPVS) Destinations(s cfipvs.Service) ([]cfipvs.DestinationExtended, error) {
	ds := f.dests[idOf(s)]
	if len(ds) == 0 {
		return nil, fs.ErrNotExist
	}
	var out []cfipvs.DestinationExtended
	for _, d := range ds {
		s32, s64 := f.stats(f.destStats[netip.AddrPortFrom(d.Address, d.Port)])
		out = append(out, cfipvs.DestinationExtended{Destination: d, Stats: s32, Stats64: s64})
	}
	return out, nil
}

func (f *fakeIPVS) findDest(s cfipvs.Service, d cfipvs.Destination) int {
	return slices.IndexFunc(f.dests[idOf(s)], func(e cfipvs.Destination) bool { return e.Address == d.Address && e.Port == d.Port })
}

func (f *fakeIPVS) CreateDestination(s cfipvs.Service, d cfipvs.Destination) error {
	f.record("CreateDestination " + svcString(s) + " -> " + destString(d))
	if _, ok := f.svcs[idOf(s)]; !ok {
		return syscall.ESRCH
	}
	if f.findDest(s, d) >= 0 {
		return syscall.EEXIST
	}
	f.dests[idOf(s)] = append(f.dests[idOf(s)], d)
	return nil
}

func (f *fakeIPVS) UpdateDestination(s cfipvs.Service, d cfipvs.Destination) error {
	f.record("UpdateDestination " + svcString(s) + " -> " + destString(d))
	i := f.findDest(s, d)
	if i < 0 {
		return syscall.ENOENT
	}
	f.dests[idOf(s)][i] = d
	return nil
}

func (f *fakeIPVS) RemoveDestination(s cfipvs.Service, d cfipvs.Destination) error {
	f.record("RemoveDestination " + svcString(s) + " -> " + destString(d))
	i := f.findDest(s, d)
	if i < 0 {
		return syscall.ENOENT
	}
	f.dests[idOf(s)] = slices.Delete(f.dests[idOf(s)], i, i+1)
	return nil
}

func (f *fakeIPVS) take() []string {
	l := f.log
	f.log = nil
	return l
}

var (
	vip  = netip.MustParseAddr("192.168.118.110")
	web  = lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: vip, Port: 80}
	sip  = lb.ServiceKey{Family: lb.IPv4, Proto: lb.UDP, Addr: vip, Port: 5060}
	mark = lb.ServiceKey{Family: lb.IPv6, FWMark: 9}
	rs1  = netip.MustParseAddrPort("192.168.118.129:80")
	rs2  = netip.MustParseAddrPort("192.168.118.131:80")
)

// tutorialState is the seed tutorial's LVS-DR service, a persistent NAT
// service with thresholds and a TUN fwmark service over IPv6.
func tutorialState() lb.State {
	s := lb.NewState()
	s.Services[web] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	s.Dests[lb.DestKey{Service: web, Addr: rs1}] = lb.Dest{Weight: 1, Method: lb.DR}
	s.Dests[lb.DestKey{Service: web, Addr: rs2}] = lb.Dest{Weight: 1, Method: lb.DR}
	s.Services[sip] = lb.Service{Scheduler: "sh", Flags: lb.FlagSHPort | lb.FlagOnePacket, Timeout: 300, Netmask: 0xffffff00}
	s.Dests[lb.DestKey{Service: sip, Addr: netip.MustParseAddrPort("10.0.0.2:5060")}] = lb.Dest{Weight: 3, Method: lb.NAT, UThreshold: 100, LThreshold: 50}
	s.Services[mark] = lb.Service{Scheduler: "wlc", Timeout: 60, Netmask: 64}
	s.Dests[lb.DestKey{Service: mark, Addr: netip.MustParseAddrPort("[fd00::2]:0")}] = lb.Dest{Weight: 2, Method: lb.TUN, Tunnel: lb.Tunnel{Type: lb.TunnelGUE, Port: 6080, Csum: 1}}
	return s
}

func TestApplyCommands(t *testing.T) {
	f := newFake()
	// A service of someone else's (ipvsadm by hand) is never touched.
	f.svcs[svcID{fam: cfipvs.INET, proto: cfipvs.TCP, addr: netip.MustParseAddr("10.9.9.9"), port: 22}] =
		cfipvs.Service{Family: cfipvs.INET, Protocol: cfipvs.TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 22, Scheduler: "wlc"}
	b, err := New(Options{Client: f})
	if err != nil {
		t.Fatal(err)
	}
	st := tutorialState()
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	// ipvswrapper.c ipvs_set_srule/_drule: persistence sets the persistent
	// flag (0x1) and the netmask; DR/TUN/NAT are conn_flags 3/2/0.
	want := []string{
		"CreateService INET TCP 192.168.118.110:80 sched=rr flags=0x0 timeout=0 netmask=255.255.255.255",
		"CreateService INET UDP 192.168.118.110:5060 sched=sh flags=0x15 timeout=300 netmask=255.255.255.0",
		"CreateService INET6 fwmark 9 sched=wlc flags=0x1 timeout=60 netmask=64",
		"CreateDestination INET TCP 192.168.118.110:80 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 192.168.118.129:80 fwd=DirectRoute weight=1 uthresh=0 lthresh=0 tun=IPIP/0/TunnelEncapNoChecksum",
		"CreateDestination INET TCP 192.168.118.110:80 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 192.168.118.131:80 fwd=DirectRoute weight=1 uthresh=0 lthresh=0 tun=IPIP/0/TunnelEncapNoChecksum",
		"CreateDestination INET UDP 192.168.118.110:5060 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 10.0.0.2:5060 fwd=Masquerade weight=3 uthresh=100 lthresh=50 tun=IPIP/0/TunnelEncapNoChecksum",
		"CreateDestination INET6 fwmark 9 sched= flags=0x0 timeout=0 netmask=128 -> INET6 [fd00::2]:0 fwd=Tunnel weight=2 uthresh=0 lthresh=0 tun=GUE/6080/TunnelEncapChecksum",
	}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("initial apply (-want +got):\n%s", diff)
	}

	// Observe reads back exactly what was applied (the kernel's hashed
	// flag and the persistent flag are not part of the state), and not
	// the foreign service.
	got, err := b.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(st) {
		t.Errorf("observed:\n%v\nwant:\n%v", got, st)
	}

	// One weight: one command (keepalived update_svr_wgt -> EDIT_DEST).
	st.Dests[lb.DestKey{Service: web, Addr: rs2}] = lb.Dest{Weight: 0, Method: lb.DR}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	want = []string{"UpdateDestination INET TCP 192.168.118.110:80 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 192.168.118.131:80 fwd=DirectRoute weight=0 uthresh=0 lthresh=0 tun=IPIP/0/TunnelEncapNoChecksum"}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("weight change (-want +got):\n%s", diff)
	}

	// Remove a destination and a service; change a scheduler.
	delete(st.Dests, lb.DestKey{Service: web, Addr: rs2})
	delete(st.Services, mark)
	delete(st.Dests, lb.DestKey{Service: mark, Addr: netip.MustParseAddrPort("[fd00::2]:0")})
	st.Services[web] = lb.Service{Scheduler: "wrr", Netmask: 0xffffffff}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"UpdateService INET TCP 192.168.118.110:80 sched=wrr flags=0x0 timeout=0 netmask=255.255.255.255",
		"RemoveDestination INET TCP 192.168.118.110:80 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 192.168.118.131:80 fwd=Masquerade weight=0 uthresh=0 lthresh=0 tun=IPIP/0/TunnelEncapNoChecksum",
		"RemoveService INET6 fwmark 9 sched= flags=0x0 timeout=0 netmask=128",
	}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("removals (-want +got):\n%s", diff)
	}

	// Close removes what the backend made, not the foreign service.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(f.svcs) != 1 {
		t.Errorf("after Close: %d services left, want only the foreign one", len(f.svcs))
	}
}

// A service left by a previous run is adopted: CreateService's EEXIST turns
// into an update, as keepalived does when it finds its services.
func TestApplyAdopts(t *testing.T) {
	f := newFake()
	old := toService(web, lb.Service{Scheduler: "wlc"})
	f.CreateService(old)
	f.CreateDestination(old, toDest(rs1, lb.Dest{Weight: 5, Method: lb.DR}))
	f.take()
	b, _ := New(Options{Client: f})
	st := lb.NewState()
	st.Services[web] = lb.Service{Scheduler: "rr", Netmask: 0xffffffff}
	st.Dests[lb.DestKey{Service: web, Addr: rs1}] = lb.Dest{Weight: 1, Method: lb.DR}
	if err := b.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"UpdateService INET TCP 192.168.118.110:80 sched=rr flags=0x0 timeout=0 netmask=255.255.255.255",
		"UpdateDestination INET TCP 192.168.118.110:80 sched= flags=0x0 timeout=0 netmask=255.255.255.255 -> INET 192.168.118.129:80 fwd=DirectRoute weight=1 uthresh=0 lthresh=0 tun=IPIP/0/TunnelEncapNoChecksum",
	}
	if diff := cmp.Diff(want, f.take()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// lvs_flush removes every service first; Keep leaves them at Close.
func TestFlushAndKeep(t *testing.T) {
	f := newFake()
	f.CreateService(toService(sip, lb.Service{Scheduler: "wlc"}))
	f.take()
	b, _ := New(Options{Client: f, Flush: true, Keep: true})
	if err := b.Apply(t.Context(), tutorialState()); err != nil {
		t.Fatal(err)
	}
	l := f.take()
	if len(l) == 0 || l[0] != "RemoveService INET UDP 192.168.118.110:5060 sched= flags=0x0 timeout=0 netmask=255.255.255.255" {
		t.Errorf("first command %v, want the flush", l)
	}
	b.Close()
	if len(f.svcs) != 3 {
		t.Errorf("Keep: %d services after Close, want 3", len(f.svcs))
	}
}

// lvs_flush_on_stop: Close removes every service, a foreign one too;
// without it only the managed ones go; Keep wins over it.
func TestFlushOnStop(t *testing.T) {
	foreign := lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: netip.MustParseAddr("192.0.2.9"), Port: 8080}
	for _, tc := range []struct {
		name     string
		opts     Options
		wantLeft int
	}{
		{"default", Options{}, 1},
		{"flush on stop", Options{FlushOnStop: true}, 0},
		{"keep wins", Options{FlushOnStop: true, Keep: true}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.CreateService(toService(foreign, lb.Service{Scheduler: "rr"}))
			tc.opts.Client = f
			b, _ := New(tc.opts)
			if err := b.Apply(t.Context(), tutorialState()); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if len(f.svcs) != tc.wantLeft {
				t.Errorf("%d services left after Close, want %d", len(f.svcs), tc.wantLeft)
			}
		})
	}
}

// After a failure the next Apply observes first and repairs.
func TestApplyAfterError(t *testing.T) {
	f := newFake()
	b, _ := New(Options{Client: f})
	f.fail = syscall.EPERM
	if err := b.Apply(t.Context(), tutorialState()); err == nil {
		t.Fatal("apply succeeded although the kernel refuses")
	}
	f.fail = nil
	if err := b.Apply(t.Context(), tutorialState()); err != nil {
		t.Fatal(err)
	}
	// Drift: a destination removed by hand comes back on the next
	// Observe + Apply.
	delete(f.dests, idOf(toService(web, lb.Service{})))
	if _, err := b.Observe(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.take()
	if err := b.Apply(t.Context(), tutorialState()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.take()); n != 2 {
		t.Errorf("repair sent %d commands, want 2 destinations", n)
	}
}

func TestConversionsRoundTrip(t *testing.T) {
	st := tutorialState()
	for k, v := range st.Services {
		gk, gv, err := fromService(toService(k, v))
		if err != nil || gk != k || gv != v {
			t.Errorf("service %v %+v -> %v %+v %v", k, v, gk, gv, err)
		}
	}
	for k, v := range st.Dests {
		ga, gv := fromDest(toDest(k.Addr, v))
		if ga != k.Addr || gv != v {
			t.Errorf("dest %v %+v -> %v %+v", k.Addr, v, ga, gv)
		}
	}
}
