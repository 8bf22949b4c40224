// Package gobgp is the BGP speaker proper: an embedded GoBGP server
// (github.com/osrg/gobgp/v4) that keeps the locally originated paths equal
// to what it is given. Only the vigil-bgp helper links it; the daemon
// drives it through bgp.Speaker over a socket (see bgp.Serve), so that
// GoBGP, gRPC and their dependencies stay out of vigil's own binary.
package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/vigil-ha/vigil/internal/bgp"
)

// Speaker is the adapter to an embedded GoBGP server: it keeps the set of
// locally originated paths equal to what it is given.
//
// Concurrency: Run owns the server; Apply and Sessions are safe for
// concurrent use once Ready is closed.
type Speaker struct {
	cfg   bgp.SpeakerConfig
	log   *slog.Logger
	ready chan struct{}

	srv *server.BgpServer

	mu   sync.Mutex // serialises Apply, SetNeighbors and renewBFD; guards sent, added and cfg.Neighbors
	sent map[netip.Prefix]bgp.Route
	// added is when each neighbour was last added to the server after
	// the start.
	added map[netip.Addr]time.Time

	failMu sync.Mutex // guards failed
	// failed is the last NOTIFICATION each neighbour sent or received
	// (see logHandler): GoBGP's ListPeer reports nothing for an OPEN
	// refused before the session was established (a wrong AS).
	failed map[netip.Addr]string
}

// NewSpeaker prepares a speaker; Run starts it.
func NewSpeaker(cfg bgp.SpeakerConfig, log *slog.Logger) *Speaker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{cfg: cfg, log: log, ready: make(chan struct{}), sent: map[netip.Prefix]bgp.Route{}, added: map[netip.Addr]time.Time{}, failed: map[netip.Addr]string{}}
}

// Ready is closed once the speaker has started and accepts Apply.
func (s *Speaker) Ready() <-chan struct{} { return s.ready }

// Run starts the BGP server and its sessions and runs until ctx ends; then
// it closes the sessions (a Cease NOTIFICATION, so peers drop our routes
// at once) and returns.
func (s *Speaker) Run(ctx context.Context) error {
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	h := newLogHandler(s.log.With("component", "gobgp").Handler(), time.Now, func(a netip.Addr, why string) {
		s.failMu.Lock()
		if why == "" {
			delete(s.failed, a)
		} else {
			s.failed[a] = why
		}
		s.failMu.Unlock()
	})
	srv := server.NewBgpServer(server.LoggerOption(slog.New(h), lvl))
	served := make(chan struct{})
	go func() { srv.Serve(); close(served) }()
	defer func() { srv.Stop(); <-served }()

	listen := int32(-1)
	if s.cfg.ListenPort != 0 {
		listen = int32(s.cfg.ListenPort)
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.LocalAS, RouterId: s.cfg.RouterID.String(), ListenPort: listen,
	}}); err != nil {
		return fmt.Errorf("bgp: start: %w", err)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	// Watched before the first session can come up.
	downs := make(chan sessionEnd, 64)
	wctx, stopWatch := context.WithCancel(ctx)
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: sessionsEnded(downs)}, server.WatchPeer()); err != nil {
		stopWatch()
		return fmt.Errorf("bgp: watching the sessions: %w", err)
	}
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for {
			select {
			case <-wctx.Done():
				return
			case e := <-downs:
				s.renewBFD(wctx, e)
			}
		}
	}()
	defer func() { stopWatch(); <-renewed }()
	// GoBGP's global import policy also filters locally originated
	// paths, so none is set: received routes stay in GoBGP's RIB unused
	// (routers should export nothing to vigil).
	for _, n := range s.cfg.Neighbors {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConf(n, s.cfg.MaxReceived)}); err != nil {
			return fmt.Errorf("bgp: neighbor %s: %w", n.Addr, err)
		}
	}
	close(s.ready)
	<-ctx.Done()
	// No neighbour is renewed while the sessions close.
	stopWatch()
	<-renewed
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.StopBgp(sctx, &api.StopBgpRequest{}); err != nil {
		s.log.Warn("bgp: stop", "err", err)
	}
	return nil
}

// sessionsEnded returns GoBGP's peer-event callback that sends on downs
// the address of each neighbour whose established session ended (unless
// the prefix limit closed it: that one stays down). It never blocks; an
// address that finds downs full is dropped.
func sessionsEnded(downs chan<- sessionEnd) func(*apiutil.WatchEventMessage_PeerEvent, time.Time) {
	// Only GoBGP's watcher goroutine calls it.
	up := map[netip.Addr]bool{}
	return func(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
		if ev.Type != apiutil.PEER_EVENT_STATE {
			return
		}
		st := ev.Peer.State
		a := st.NeighborAddress
		was := up[a]
		up[a] = st.SessionState == gbgp.BGP_FSM_ESTABLISHED
		if was && !up[a] && st.AdminState != api.PeerState_ADMIN_STATE_PFX_CT {
			select {
			case downs <- sessionEnd{a, at}:
			default:
			}
		}
	}
}

// sessionEnd is the end of a neighbour's established session.
type sessionEnd struct {
	addr netip.Addr
	at   time.Time
}

// renewBFD deletes and adds again a BFD neighbour whose session ended.
//
// GoBGP v4.8.0's BFD resets the BGP session when the BFD session expires,
// by a Cease that it queues to the peer whatever the peer's state. After
// the session ended for another reason (the router closed it, the router's
// bgpd restarted), the router stops its BFD session too, GoBGP's expires
// a detection time later, while the BGP session is down, and the queued
// Cease kills the next session as soon as it is established; that ends
// the router's BFD again, and so on: the session never came back (seen
// with BIRD after `birdc disable` and `enable`). A peer added again has a
// new finite state machine, without the queued Cease, and a new BFD
// session in the down state, whose expiry does nothing.
//
// A neighbour that SetNeighbors added after the end (a changed one: its
// deletion ended the session) is left alone, as is one whose session is
// up again.
func (s *Speaker) renewBFD(ctx context.Context, e sessionEnd) {
	a := e.addr
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.cfg.Neighbors, func(n bgp.Neighbor) bool { return n.Addr == a })
	if i < 0 || s.cfg.Neighbors[i].BFDInterval == 0 || !s.added[a].Before(e.at) {
		return
	}
	up := false
	if err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: a.String()}, func(p *api.Peer) {
		up = p.GetState().GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED
	}); err != nil || up {
		return
	}
	n := s.cfg.Neighbors[i]
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
		s.log.Warn("bgp: renewing a BFD neighbour after its session ended: delete", "neighbor", a.String(), "err", err)
		return
	}
	s.added[a] = time.Now()
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConf(n, s.cfg.MaxReceived)}); err != nil {
		// Without it the neighbour is gone until a reload changes it.
		s.log.Error("bgp: renewing a BFD neighbour after its session ended: add", "neighbor", a.String(), "err", err)
		s.cfg.Neighbors = slices.Delete(s.cfg.Neighbors, i, i+1)
		return
	}
	s.log.Debug("bgp: BFD neighbour renewed after its session ended", "neighbor", a.String())
}

// SetNeighbors makes the running server's peers equal to ns: a removed
// neighbour's session is closed (a Cease NOTIFICATION), an added one is
// started, a changed one (any field) is deleted and added again, which
// resets that session alone. Unchanged neighbours keep their sessions. It
// returns one line per change.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []bgp.Neighbor) ([]string, error) {
	select {
	case <-s.ready:
	default:
		return nil, errors.New("bgp: speaker not running")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[netip.Addr]bgp.Neighbor{}
	for _, n := range s.cfg.Neighbors {
		old[n.Addr] = n
	}
	var changes []string
	var errs []error
	var kept []bgp.Neighbor
	seen := map[netip.Addr]bool{}
	for _, n := range ns {
		seen[n.Addr] = true
		o, had := old[n.Addr]
		switch {
		case had && o == n:
			kept = append(kept, n)
			continue
		case had:
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Addr.String()}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: neighbor %s: delete: %w", n.Addr, err))
				kept = append(kept, o)
				continue
			}
			changes = append(changes, fmt.Sprintf("~ bgp neighbor %s (its session restarts)", n.Addr))
		default:
			changes = append(changes, fmt.Sprintf("+ bgp neighbor %s", n.Addr))
		}
		s.added[n.Addr] = time.Now()
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConf(n, s.cfg.MaxReceived)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbor %s: %w", n.Addr, err))
			continue
		}
		kept = append(kept, n)
	}
	for _, o := range s.cfg.Neighbors {
		if seen[o.Addr] {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: o.Addr.String()}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbor %s: delete: %w", o.Addr, err))
			kept = append(kept, o)
			continue
		}
		changes = append(changes, fmt.Sprintf("- bgp neighbor %s", o.Addr))
	}
	s.cfg.Neighbors = kept
	// A neighbour changed or removed starts without the old reason.
	s.failMu.Lock()
	for a := range s.failed {
		if n, ok := old[a]; !ok || !slices.Contains(kept, n) {
			delete(s.failed, a)
		}
	}
	s.failMu.Unlock()
	return changes, errors.Join(errs...)
}

// peerConf is a neighbour's GoBGP configuration. Its address family is
// GoBGP's default for the neighbour's address (IPv4 or IPv6 unicast), with
// a limit of maxReceived prefixes (0: bgp.DefaultMaxReceived) it may send:
// past it, GoBGP closes the session (Cease, "maximum number of prefixes
// reached") and drops what it had received.
func peerConf(n bgp.Neighbor, maxReceived uint32) *api.Peer {
	if maxReceived == 0 {
		maxReceived = bgp.DefaultMaxReceived
	}
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if !n.Addr.Unmap().Is4() {
		fam = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	hold := uint64(n.HoldTime / time.Second)
	retry := uint64(max(n.ConnectRetry/time.Second, 1))
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.RemoteAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1), ConnectRetry: retry,
			// Reconnect as soon as a reset session may: GoBGP waits 30 s
			// by default.
			IdleHoldTimeAfterReset: retry,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis: []*api.AfiSafi{{
			Config:       &api.AfiSafiConfig{Family: fam, Enabled: true},
			PrefixLimits: &api.PrefixLimit{Family: fam, MaxPrefixes: maxReceived, ShutdownThresholdPct: 80},
		}},
	}
	if n.BFDInterval > 0 {
		us := uint32(n.BFDInterval / time.Microsecond)
		p.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us, DetectionMultiplier: uint32(max(n.BFDMultiplier, 1))}
	}
	return p
}

// Apply makes the locally originated paths equal to the announced and
// draining routes among rs (withdrawn ones are removed). Routes not named
// in rs keep their last announcement.
func (s *Speaker) Apply(rs []bgp.Route) error {
	select {
	case <-s.ready:
	default:
		return errors.New("bgp: speaker not running")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var add []*apiutil.Path
	var del []*apiutil.Path
	for _, r := range rs {
		old, had := s.sent[r.Prefix]
		if r.Phase == bgp.Withdrawn {
			if had {
				p, err := toPath(old)
				if err != nil {
					return err
				}
				del = append(del, p)
				delete(s.sent, r.Prefix)
			}
			continue
		}
		if had && old.Equal(r) {
			continue
		}
		p, err := toPath(r)
		if err != nil {
			return err
		}
		add = append(add, p)
		s.sent[r.Prefix] = r
	}
	var errs []error
	if len(del) > 0 {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: del}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: withdraw: %w", err))
		}
	}
	if len(add) > 0 {
		if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: add}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: announce: %w", err))
		}
	}
	return errors.Join(errs...)
}

// toPath builds GoBGP's path for a route. The next hop is left
// unspecified: GoBGP puts the session's local address there.
func toPath(r bgp.Route) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, fmt.Errorf("bgp: %s: %w", r.Prefix, err)
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := gbgp.RF_IPv4_UC
	if r.Prefix.Addr().Is4() {
		nh, err := gbgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		fam = gbgp.RF_IPv6_UC
		mp, err := gbgp.NewPathAttributeMpReachNLRI(fam, []gbgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	attrs = append(attrs, gbgp.NewPathAttributeMultiExitDisc(r.MED))
	if len(r.Communities) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(slices.Clone(r.Communities)))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

// Sessions reports every neighbor's session.
func (s *Speaker) Sessions(ctx context.Context) ([]bgp.Session, error) {
	select {
	case <-s.ready:
	default:
		return nil, nil
	}
	var out []bgp.Session
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, session(p))
	})
	s.failMu.Lock()
	for i := range out {
		if out[i].LastError == "" {
			out[i].LastError = s.failed[out[i].Neighbor]
		}
	}
	s.failMu.Unlock()
	slices.SortFunc(out, func(a, b bgp.Session) int { return a.Neighbor.Compare(b.Neighbor) })
	return out, err
}

func session(p *api.Peer) bgp.Session {
	var s bgp.Session
	if c := p.GetConf(); c != nil {
		s.Neighbor, _ = netip.ParseAddr(c.NeighborAddress)
		s.RemoteAS = c.PeerAsn
	}
	st := p.GetState()
	s.State = sessionState(st.GetSessionState())
	switch {
	case st.GetAdminState() == api.PeerState_ADMIN_STATE_PFX_CT:
		s.LastError = "closed: the neighbour sent more prefixes than the speaker accepts (it only announces; the router should send it nothing); the session stays down until the neighbour is re-added or vigil-bgp restarts"
	case st.GetDisconnectMessage() != "":
		s.LastError = st.GetDisconnectMessage()
	case st.GetDisconnectReason() != api.PeerState_DISCONNECT_REASON_UNSPECIFIED:
		s.LastError = st.GetDisconnectReason().String()
	}
	if ts := p.GetTimers().GetState(); ts != nil {
		if s.State == "established" && ts.GetUptime() != nil {
			s.Since = ts.GetUptime().AsTime()
		}
		s.HoldTime = time.Duration(ts.GetNegotiatedHoldTime()) * time.Second
	}
	if b := st.GetBfdState(); b != nil && p.GetBfd().GetEnabled() {
		s.BFD = strings.ToLower(strings.TrimPrefix(b.GetSessionState().String(), "BFD_SESSION_STATE_"))
	}
	for _, af := range p.GetAfiSafis() {
		if as := af.GetState(); as != nil {
			s.Sent += as.GetAdvertised()
			s.Received += as.GetReceived()
		}
	}
	return s
}

func sessionState(st api.PeerState_SessionState) string {
	switch st {
	case api.PeerState_SESSION_STATE_IDLE:
		return "idle"
	case api.PeerState_SESSION_STATE_CONNECT:
		return "connect"
	case api.PeerState_SESSION_STATE_ACTIVE:
		return "active"
	case api.PeerState_SESSION_STATE_OPENSENT:
		return "opensent"
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return "openconfirm"
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return "established"
	}
	return "unknown"
}
