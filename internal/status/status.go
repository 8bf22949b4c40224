// Package status defines the daemon's state as the outside world sees it:
// the snapshot that `vigil status`, the API, the web page and the metrics
// collector read. It holds plain data only; the engine builds a Snapshot on
// request inside its own loop, so nothing here is shared mutable state.
package status

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Snapshot is the whole daemon state at one instant.
type Snapshot struct {
	Daemon         Daemon          `json:"daemon"`
	Instances      []Instance      `json:"instances"`
	SyncGroups     []SyncGroup     `json:"sync_groups,omitempty"`
	VirtualServers []VirtualServer `json:"virtual_servers,omitempty"`
	Reconciler     *Reconciler     `json:"reconciler,omitempty"`
	Heartbeat      *Heartbeat      `json:"heartbeat,omitempty"`
	BGP            *BGP            `json:"bgp,omitempty"`
	ConnSync       *ConnSync       `json:"conn_sync,omitempty"`
	Transitions    []Transition    `json:"transitions"`
}

// Daemon describes the running process.
type Daemon struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	ConfigFile string    `json:"config_file"`
	RouterID   string    `json:"router_id,omitempty"`
	// StaticRouteErrors counts static routes and rules the kernel refused
	// to add, replace or remove (each also logged).
	StaticRouteErrors uint64    `json:"static_route_errors,omitempty"`
	Reloads           uint64    `json:"reloads"`
	LastReload        time.Time `json:"last_reload,omitempty"`
	// ReloadFailures counts reloads (SIGHUP, vigil reload) that did not
	// apply: the file had errors, or applying it failed. While the last
	// one failed, LastReloadError says why (its first error, the count of
	// the others) and LastReloadFailed when: the daemon runs another
	// configuration than the file holds.
	ReloadFailures   uint64    `json:"reload_failures,omitempty"`
	LastReloadError  string    `json:"last_reload_error,omitempty"`
	LastReloadFailed time.Time `json:"last_reload_failed,omitzero"`
	// LateTimerWakeups counts VRRP timer expiries that a backstop thread
	// on another CPU ran because the timer's own wake-up was more than
	// half a millisecond late (its CPU held by a kernel thread or by
	// interrupts).
	LateTimerWakeups uint64 `json:"late_timer_wakeups,omitempty"`
	// Dropped counts adverts dropped before they reached an instance, by
	// reason: a VRID no instance on that socket has (unknown_vrid), or a
	// packet too broken to tell its VRID.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
	// NADropped counts the neighbour advertisements the address conflict
	// watch read that were no claim, by reason (malformed, hop-limit,
	// target, no-lladdr, bad-lladdr, wrong-iface).
	NADropped map[string]uint64 `json:"na_dropped,omitempty"`
}

// Instance is one VRRP instance.
type Instance struct {
	Name              string   `json:"name"`
	Interface         string   `json:"interface"`
	Family            string   `json:"family"` // "inet" or "inet6"
	Version           int      `json:"version"`
	VRID              int      `json:"vrid"`
	State             string   `json:"state"`
	BasePriority      int      `json:"base_priority"`
	EffectivePriority int      `json:"effective_priority"`
	AdvertInterval    Duration `json:"advert_interval"`
	Master            string   `json:"master,omitempty"` // address of the current master, as last heard (or ours)
	MasterPriority    int      `json:"master_priority,omitempty"`
	VIPs              []string `json:"vips"`
	ExcludedVIPs      []string `json:"excluded_vips,omitempty"`
	VIPsHeld          bool     `json:"vips_held"`
	// VMAC is the use_vmac interface the VIPs live on ("" without), with
	// XmitBase when adverts leave from Interface instead.
	VMAC     string `json:"vmac,omitempty"`
	VMACAddr string `json:"vmac_addr,omitempty"`
	XmitBase bool   `json:"vmac_xmit_base,omitempty"`
	// NoAccept is accept mode off below priority 255 (vrrp_strict,
	// no_accept): traffic to the VIPs is dropped while MASTER, and
	// DroppingVIPs says whether the drop rules are in place now.
	NoAccept     bool      `json:"no_accept,omitempty"`
	Strict       bool      `json:"strict,omitempty"`
	DroppingVIPs bool      `json:"dropping_vips,omitempty"`
	GARPDelay    Duration  `json:"garp_delay"`
	SyncGroup    string    `json:"sync_group,omitempty"`
	Since        time.Time `json:"since"`
	Reason       string    `json:"reason"`
	// Warning is a condition an operator should see, e.g. "master
	// 192.168.1.105 advertises 2 addresses, ours 1" during a rolling change
	// of virtual_ipaddress.
	Warning string `json:"warning,omitempty"`
	// RivalMaster is, on a MASTER, the router heard advertising as master
	// too whose adverts it drops for a difference of configuration (the
	// Warning says which): both hold the addresses. "" otherwise.
	RivalMaster string `json:"rival_master,omitempty"`
	// AHSequence is an `auth_type AH` instance's sequence number: the last
	// it sent or accepted (keepalived's seq_number).
	AHSequence uint32    `json:"ah_sequence,omitempty"`
	Trackers   []Tracker `json:"trackers,omitempty"`
	Counters   Counters  `json:"counters"`
	// HeldVIPs are the virtual addresses (of VIPs and ExcludedVIPs) the
	// kernel reports on this host now; VIPsHeld says whether all are.
	HeldVIPs []string `json:"held_vips,omitempty"`
	// MissingRoutes are the virtual routes of an instance holding its
	// addresses that the kernel's tables lack now (refused: see
	// Counters.RouteErrors and the log; or removed and not put back).
	MissingRoutes []string `json:"missing_routes,omitempty"`
	// Peers are the routers heard advertising this VRID, most recent
	// first (a bounded list).
	Peers []Peer `json:"peers,omitempty"`
	// Handover is the state of a planned handover: "" (none), "holding"
	// (priority 0 sent, addresses kept until the new master is heard or
	// HandoverUntil) or "yielding" (handed over: not preempting until
	// `vigil handover --reclaim`).
	Handover      string    `json:"handover,omitempty"`
	HandoverUntil time.Time `json:"handover_until,omitzero"`
	// History is the instance's own state changes, oldest first (bounded
	// by count and age); HistoryFrom is when it begins: the instance's
	// creation, or the oldest change forgotten.
	History     []Transition `json:"history,omitempty"`
	HistoryFrom time.Time    `json:"history_from,omitzero"`
}

// Peer is a router heard advertising an instance's VRID.
type Peer struct {
	Addr      string    `json:"addr"`
	Priority  int       `json:"priority"`
	LastHeard time.Time `json:"last_heard"`
	Adverts   uint64    `json:"adverts"`
}

// Kernel are a virtual or real server's counters as the kernel keeps them
// (IPVS statistics, or nftables counters in vigil's table): new
// connections, and packets and bytes in both directions.
type Kernel struct {
	Connections uint64 `json:"connections"`
	PacketsIn   uint64 `json:"packets_in"`
	PacketsOut  uint64 `json:"packets_out"`
	BytesIn     uint64 `json:"bytes_in"`
	BytesOut    uint64 `json:"bytes_out"`
}

// Add adds o's counters to k.
func (k *Kernel) Add(o Kernel) {
	k.Connections += o.Connections
	k.PacketsIn += o.PacketsIn
	k.PacketsOut += o.PacketsOut
	k.BytesIn += o.BytesIn
	k.BytesOut += o.BytesOut
}

// Counters are an instance's cumulative counters.
type Counters struct {
	AdvertsSent     uint64            `json:"adverts_sent"`
	AdvertsReceived uint64            `json:"adverts_received"`
	Dropped         map[string]uint64 `json:"dropped,omitempty"` // by reason
	Transitions     uint64            `json:"transitions"`
	BecameMaster    uint64            `json:"became_master"`
	ReleasedMaster  uint64            `json:"released_master"`
	PriorityZeroRx  uint64            `json:"priority_zero_received"`
	PriorityZeroTx  uint64            `json:"priority_zero_sent"`
	// AddrMismatch counts adverts accepted from a master whose address list
	// differs from ours; VIPsRestored counts VIPs (and virtual routes) put
	// back after something else removed them while we were master.
	AddrMismatch uint64 `json:"addr_list_mismatch"`
	VIPsRestored uint64 `json:"vips_restored"`
	// VIPConflicts counts ARP packets and neighbour advertisements from
	// other hosts announcing one of the instance's VIPs with their own MAC
	// while it was master.
	VIPConflicts uint64 `json:"vip_conflicts"`
	// VIPClaimsLeft counts those claims that came right after the last
	// advert of another router, silent since: leftovers of its master
	// period (a handover, a preemption), answered but no conflict.
	VIPClaimsLeft uint64 `json:"vip_claims_leftover"`
	// Announcements counts gratuitous ARP / unsolicited NA packets sent
	// for the instance's addresses; NotifyFailures its notify scripts that
	// failed (exit status not 0, timeout, not startable).
	Announcements  uint64 `json:"announcements_sent"`
	NotifyFailures uint64 `json:"notify_failures"`
	// RouteErrors counts virtual routes and rules the kernel refused to
	// add, replace or remove (each also logged).
	RouteErrors uint64 `json:"route_errors"`
}

// Tracker is one tracked object's state as it affects an instance.
type Tracker struct {
	Kind   string `json:"kind"` // interface, script, file, process
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Weight int    `json:"weight"`
	Detail string `json:"detail,omitempty"`
}

// SyncGroup is a vrrp_sync_group.
type SyncGroup struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Instances []string `json:"instances"`
}

// VirtualServer is one virtual service and its real servers.
type VirtualServer struct {
	Name        string       `json:"name"` // e.g. "192.168.1.100:80/tcp" or "fwmark 1"
	Algo        string       `json:"algo"`
	Kind        string       `json:"kind"`
	Backend     string       `json:"backend"` // nftables or ipvs
	QuorumUp    bool         `json:"quorum_up"`
	Active      bool         `json:"active"` // installed in the kernel
	Sorry       string       `json:"sorry_server,omitempty"`
	SorryActive bool         `json:"sorry_active,omitempty"`
	RealServers []RealServer `json:"real_servers"`
	// The service's identity, for labels: address, port and protocol
	// ("TCP", "UDP", "SCTP"), or a firewall mark, or a group name.
	VIP      string `json:"vip,omitempty"`
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	FWMark   uint32 `json:"fwmark,omitempty"`
	Group    string `json:"group,omitempty"`
	// Kernel sums the counters of the service's kernel services; nil when
	// the data plane could not be read.
	Kernel *Kernel `json:"kernel,omitempty"`
}

// RealServer is one real server with its checkers.
type RealServer struct {
	Addr     string    `json:"addr"`
	Weight   int       `json:"weight"`
	Healthy  bool      `json:"healthy"`
	Since    time.Time `json:"since,omitzero"` // last health change; zero: none since start
	Reason   string    `json:"reason,omitempty"`
	Checkers []Checker `json:"checkers,omitempty"`
	// Kernel are the destination's counters; nil when not installed or
	// not read.
	Kernel *Kernel `json:"kernel,omitempty"`
}

// Checker is the last result of one health checker.
type Checker struct {
	Kind string `json:"kind"` // the keepalived keyword: TCP_CHECK, HTTP_GET, ...
	// Name says which checker it is, e.g. "HTTP_GET 10.99.0.2:8081".
	Name     string    `json:"name,omitempty"`
	OK       bool      `json:"ok"`
	Reason   string    `json:"reason,omitempty"`
	LastRun  time.Time `json:"last_run,omitzero"`
	Failures int       `json:"consecutive_failures"`
	// Duration is how long the last check took.
	Duration Duration `json:"duration,omitempty"`
}

// Reconciler is the load balancer data plane's apply loop.
type Reconciler struct {
	Backend   string    `json:"backend"`
	Applies   uint64    `json:"applies"`
	Errors    uint64    `json:"errors"`
	Resyncs   uint64    `json:"resyncs"`
	Repairs   uint64    `json:"repairs"`
	LastApply time.Time `json:"last_apply,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// ConnSync is the connection tracking replication to the peer director
// (conntrack_sync: a supervised conntrackd).
type ConnSync struct {
	Daemon    string `json:"daemon"` // "conntrackd"
	Interface string `json:"interface"`
	Peer      string `json:"peer"`    // unicast peer or multicast group
	Follows   string `json:"follows"` // the VRRP instance or sync group followed
	Role      string `json:"role"`    // the state last applied: MASTER, BACKUP, FAULT, INIT
	Alive     bool   `json:"alive"`
	PID       int    `json:"pid,omitempty"`
	Restarts  uint64 `json:"restarts"`
	LinkUp    bool   `json:"link_up"`
	// Internal and External are the entries in conntrackd's caches (its
	// own flows, and those replicated from the peer), as of StatsAt.
	Internal   int64     `json:"internal_entries"`
	External   int64     `json:"external_entries"`
	StatsAt    time.Time `json:"stats_at,omitzero"`
	SendErrors uint64    `json:"send_errors"`
	RecvErrors uint64    `json:"recv_errors"`
	LostMsgs   uint64    `json:"lost_messages"`
	LastResync time.Time `json:"last_resync,omitzero"` // last MASTER sequence (commit, flush, resync, bulk send)
	PeerHeard  time.Time `json:"peer_heard,omitzero"`  // last message from the peer
	// CommandFailures counts failed conntrackd commands, by flag (-c ...).
	CommandFailures map[string]uint64 `json:"command_failures,omitempty"`
	Warnings        []string          `json:"warnings,omitempty"`
}

// Heartbeat is the state of a heartbeat-style cluster.
type Heartbeat struct {
	Node   string           `json:"node"`
	Nodes  []HeartbeatNode  `json:"nodes"`
	Pings  []HeartbeatPing  `json:"ping_nodes,omitempty"`
	Groups []HeartbeatGroup `json:"groups"`
}

// HeartbeatNode is a cluster member as seen from here.
type HeartbeatNode struct {
	Name      string               `json:"name"`
	Status    string               `json:"status"`               // active, dead, up, init
	LastHeard map[string]time.Time `json:"last_heard,omitempty"` // by medium
}

// HeartbeatPing is a ping node's reachability.
type HeartbeatPing struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
}

// HeartbeatGroup is one haresources resource group.
type HeartbeatGroup struct {
	Name      string   `json:"name"`
	Home      string   `json:"home"`
	Owner     string   `json:"owner"` // node currently holding it, "" when none
	Resources []string `json:"resources"`
	State     string   `json:"state"`
}

// Transition is one state change with its reason, for the timeline.
type Transition struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"` // instance, group, real_server, heartbeat
	Name     string    `json:"name"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
	Priority int       `json:"priority,omitempty"`
}

// Duration marshals as a string such as "1s" or "100ms".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("status: duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Timeline keeps the last N transitions. It is not safe for concurrent use:
// the engine owns it.
type Timeline struct {
	max  int
	ring []Transition
	next int
	full bool
}

// NewTimeline returns a timeline holding up to max entries.
func NewTimeline(max int) *Timeline {
	if max < 1 {
		max = 1
	}
	return &Timeline{max: max, ring: make([]Transition, 0, max)}
}

// Add appends a transition, dropping the oldest when full.
func (t *Timeline) Add(tr Transition) {
	if len(t.ring) < t.max {
		t.ring = append(t.ring, tr)
		return
	}
	t.ring[t.next] = tr
	t.next = (t.next + 1) % t.max
	t.full = true
}

// List returns the transitions, oldest first.
func (t *Timeline) List() []Transition {
	out := make([]Transition, 0, len(t.ring))
	if t.full {
		out = append(out, t.ring[t.next:]...)
		out = append(out, t.ring[:t.next]...)
		return out
	}
	return append(out, t.ring...)
}

// WriteText prints a snapshot for people, as `vigil status` does.
func WriteText(w io.Writer, s Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "vigil %s  pid %d  up %s  config %s\n", s.Daemon.Version, s.Daemon.PID,
		time.Since(s.Daemon.Started).Round(time.Second), s.Daemon.ConfigFile)
	if s.Daemon.LastReloadError != "" {
		fmt.Fprintf(tw, "RELOAD FAILED %s ago, the running configuration is older than the file: %s\n",
			time.Since(s.Daemon.LastReloadFailed).Round(time.Second), s.Daemon.LastReloadError)
	}
	if len(s.Instances) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tVER\tSTATE\tPRIO\tMASTER\tVIPS\tSINCE\tREASON")
		for _, in := range s.Instances {
			prio := fmt.Sprint(in.EffectivePriority)
			if in.EffectivePriority != in.BasePriority {
				prio = fmt.Sprintf("%d(%d)", in.EffectivePriority, in.BasePriority)
			}
			vips := dash(strings.Join(in.VIPs, ","))
			if !in.VIPsHeld && len(in.VIPs) > 0 {
				vips = "(" + vips + ")" // configured, not held here
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\tv%d\t%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Interface, in.VRID, in.Version,
				in.State, prio, dash(in.Master), vips, clock(in.Since), in.Reason)
		}
	}
	for _, in := range s.Instances {
		if len(in.HeldVIPs) > 0 && len(in.HeldVIPs) < len(in.VIPs)+len(in.ExcludedVIPs) {
			fmt.Fprintf(tw, "PARTIAL %s: holds %s of %d configured addresses\n", in.Name, strings.Join(in.HeldVIPs, ","), len(in.VIPs)+len(in.ExcludedVIPs))
		}
		if len(in.MissingRoutes) > 0 {
			fmt.Fprintf(tw, "ROUTES %s: not in the kernel: %s\n", in.Name, strings.Join(in.MissingRoutes, ", "))
		}
		switch in.Handover {
		case "holding":
			fmt.Fprintf(tw, "HANDOVER %s: priority 0 sent, holding the addresses until the new master is heard (at most until %s)\n", in.Name, clock(in.HandoverUntil))
		case "yielding":
			fmt.Fprintf(tw, "HANDOVER %s: handed over; not preempting until `vigil handover --reclaim %s`\n", in.Name, in.Name)
		}
	}
	for _, in := range s.Instances {
		if d := in.Counters.Dropped; len(d) > 0 {
			var parts []string
			for _, r := range sortedReasons(d) {
				parts = append(parts, fmt.Sprintf("%s %d", r, d[r]))
			}
			fmt.Fprintf(tw, "DROPPED %s: %s\n", in.Name, strings.Join(parts, ", "))
		}
	}
	if anyPeers(s.Instances) {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "INSTANCE\tPEER\tPRIO\tLAST ADVERT\tADVERTS")
		for _, in := range s.Instances {
			for _, p := range in.Peers {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\t%d\n", in.Name, p.Addr, p.Priority, time.Since(p.LastHeard).Round(time.Millisecond), p.Adverts)
			}
		}
	}
	for _, in := range s.Instances {
		if !in.VIPsHeld && len(in.VIPs) > 0 {
			fmt.Fprintln(tw, "(VIPs in parentheses are configured but not held here)")
			break
		}
	}
	for _, in := range s.Instances {
		if in.Warning != "" {
			fmt.Fprintf(tw, "WARNING %s: %s\n", in.Name, in.Warning)
		}
		var notes []string
		if in.VMAC != "" {
			n := fmt.Sprintf("VIPs on VMAC %s (%s)", in.VMAC, in.VMACAddr)
			if in.XmitBase {
				n += ", adverts from " + in.Interface
			}
			notes = append(notes, n)
		}
		if in.Strict {
			notes = append(notes, "strict mode")
		}
		if in.NoAccept {
			if in.DroppingVIPs {
				notes = append(notes, "accept mode off: traffic to the VIPs is DROPPED now (add accept to answer it)")
			} else {
				notes = append(notes, "accept mode off: traffic to the VIPs will be dropped while MASTER")
			}
		}
		if len(notes) > 0 {
			fmt.Fprintf(tw, "%s: %s\n", in.Name, strings.Join(notes, "; "))
		}
	}
	for _, in := range s.Instances {
		if len(in.Trackers) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\ntrackers of %s:\n", in.Name)
		for _, tr := range in.Trackers {
			fmt.Fprintf(tw, "  %s\t%s\t%s\tweight %d\t%s\n", tr.Kind, tr.Name, okText(tr.OK, "ok", "FAIL"), tr.Weight, tr.Detail)
		}
	}
	if len(s.SyncGroups) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "SYNC GROUP\tSTATE\tINSTANCES")
		for _, g := range s.SyncGroups {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, g.State, strings.Join(g.Instances, ","))
		}
	}
	for _, vs := range s.VirtualServers {
		fmt.Fprintf(tw, "\nvirtual server %s  %s/%s on %s  quorum %s%s\n", vs.Name, vs.Algo, vs.Kind, vs.Backend,
			okText(vs.QuorumUp, "up", "DOWN"), map[bool]string{true: "  sorry server " + vs.Sorry + " ACTIVE", false: ""}[vs.SorryActive])
		for _, rs := range vs.RealServers {
			traffic := ""
			if k := rs.Kernel; k != nil {
				traffic = fmt.Sprintf("%d conns, %d B in, %d B out", k.Connections, k.BytesIn, k.BytesOut)
			}
			fmt.Fprintf(tw, "  %s\tweight %d\t%s\t%s\t%s\n", rs.Addr, rs.Weight, okText(rs.Healthy, "up", "DOWN"), traffic, rs.Reason)
		}
	}
	if hb := s.Heartbeat; hb != nil {
		fmt.Fprintf(tw, "\nheartbeat node %s\n", hb.Node)
		for _, n := range hb.Nodes {
			var media []string
			for m, at := range n.LastHeard {
				media = append(media, fmt.Sprintf("%s %s ago", m, time.Since(at).Round(time.Millisecond)))
			}
			sort.Strings(media)
			fmt.Fprintf(tw, "  node %s\t%s\t%s\n", n.Name, n.Status, strings.Join(media, ", "))
		}
		for _, p := range hb.Pings {
			fmt.Fprintf(tw, "  ping %s\t%s\n", p.Addr, okText(p.Reachable, "reachable", "UNREACHABLE"))
		}
		for _, g := range hb.Groups {
			fmt.Fprintf(tw, "  group %s\thome %s\trunning on %s\t%s\t%s\n", g.Name, g.Home, dash(g.Owner), g.State, strings.Join(g.Resources, " "))
		}
	}
	if s.BGP != nil {
		writeBGP(tw, s.BGP)
	}
	if cs := s.ConnSync; cs != nil {
		fmt.Fprintf(tw, "\nconnection sync %s  %s on %s to %s  follows %s (%s)\n", cs.Daemon,
			okText(cs.Alive, fmt.Sprintf("running (pid %d)", cs.PID), "NOT RUNNING"), cs.Interface, cs.Peer, cs.Follows, cs.Role)
		fmt.Fprintf(tw, "  entries\tinternal %d\texternal %d\n", cs.Internal, cs.External)
		resync := "never"
		if !cs.LastResync.IsZero() {
			resync = cs.LastResync.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  link\t%s\trestarts %d\tlast resync %s\n", okText(cs.LinkUp, "up", "DOWN"), cs.Restarts, resync)
		for _, w := range cs.Warnings {
			fmt.Fprintf(tw, "  WARNING: %s\n", w)
		}
	}
	if n := len(s.Transitions); n > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "RECENT TRANSITIONS")
		start := max(0, n-10)
		for _, tr := range s.Transitions[start:] {
			fmt.Fprintf(tw, "%s\t%s %s\t%s -> %s\t%s\n", tr.At.Format("15:04:05.000 MST"), tr.Kind, tr.Name, tr.From, tr.To, tr.Reason)
		}
	}
	return tw.Flush()
}

func sortedReasons(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func anyPeers(ins []Instance) bool {
	for _, in := range ins {
		if len(in.Peers) > 0 {
			return true
		}
	}
	return false
}

// clock formats a time of day with its zone; the zero time is "never".
func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05 MST")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func okText(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}
