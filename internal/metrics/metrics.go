// Package metrics exposes the daemon's state to Prometheus. It holds no
// state of its own: on each scrape it asks the engine for a status.Snapshot
// and turns it into constant metrics, so a scrape sees one consistent
// instant and the engine keeps a single source of truth.
//
// Naming follows the Prometheus conventions: every name starts with vigil_,
// cumulative counts end in _total, times are in seconds with a _seconds
// suffix (timestamps as _timestamp_seconds, Unix time). A VRRP instance is
// labelled vrrp_instance, not instance: Prometheus sets "instance" on every
// scraped series (the target) and would rename ours to exported_instance.
//
// Enumerations (instance state, sync group state, heartbeat node status) are
// one series per possible value, 1 for the current one and 0 for the
// others, as the Prometheus "writing exporters" guide recommends for enums
// (and as OpenMetrics' StateSet encodes): a dashboard or alert reads
// vigil_vrrp_instance_state{state="MASTER"} == 1 without a table of magic
// numbers, sum by (state) counts instances per state, and changes() sees
// every transition. keepalived exporters use a numeric enum instead
// (keepalived_vrrp_state 0..3); the dump package writes that format for them.
//
// Virtual servers carry separate vip, port and protocol labels (fwmark and
// group for the other kinds of virtual_server), so that a query selects by
// any of them; real servers add real_server (ADDR:PORT), checkers their
// keyword and an index among the real server's checkers of that keyword.
// docs/metrics.md maps the community keepalived exporters' metrics onto
// these.
package metrics

import (
	"context"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-ha/vigil/internal/status"
)

// SnapshotFunc returns the daemon's current state. The engine implements it
// (api.Daemon.Snapshot has this signature).
type SnapshotFunc func(ctx context.Context) (status.Snapshot, error)

// States lists the VRRP states every instance reports a series for, even
// when it is not in them (keepalived's four; RFC 5798 §6.4 has Initialize,
// Backup and Master, keepalived adds FAULT). A state outside the list (e.g.
// STOP while shutting down) gets a series of its own while it lasts.
var States = []string{"INIT", "BACKUP", "MASTER", "FAULT"}

// HeartbeatStatuses lists the node statuses reported one-hot, as heartbeat's
// cl_status prints them.
var HeartbeatStatuses = []string{"init", "up", "active", "dead"}

// DefaultTimeout bounds how long a scrape waits for the engine's snapshot.
const DefaultTimeout = 5 * time.Second

var (
	instLabels    = []string{"vrrp_instance", "interface", "vrid"}
	trackerLabels = []string{"vrrp_instance", "kind", "tracker"}
	// A virtual server is its address, port and protocol; a fwmark
	// service its mark, a virtual_server group its group (the labels it
	// does not have are empty, which Prometheus treats as absent).
	vsLabels = []string{"vip", "port", "protocol", "fwmark", "group"}
	rsLabels = with(vsLabels, "real_server")
	// checker is the checker's keyword (HTTP_GET, TCP_CHECK, ...); index
	// tells two checkers of one kind on one real server apart (0, 1, ...
	// in configuration order).
	checkLabels = with(rsLabels, "checker", "index")
	peerLabels  = with(instLabels, "peer")
)

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

// Collector is a prometheus.Collector over snapshots. Register it in a
// registry the caller owns (no global registry is touched).
//
// Concurrency: safe for concurrent use; each Collect takes its own
// snapshot.
type Collector struct {
	snap    SnapshotFunc
	timeout time.Duration
	d       descs
}

type descs struct {
	up, buildInfo, start, reloads, lastReload                   *prometheus.Desc
	reloadFailures, lastReloadOK                                *prometheus.Desc
	unmatchedDropped, naDropped, staticRouteErrors, lateWakeups *prometheus.Desc

	instInfo, instState, lastTransition, effPrio, basePrio, advertInt, vips                                                                                      *prometheus.Desc
	transitions, becameMaster, sent, received, dropped, prioZeroTx, prioZeroRx, addrMismatch, rivalMaster, vipsRestored, vipConflicts, vipLeftovers, routeErrors *prometheus.Desc
	syncState, trackerUp, trackerWeight                                                                                                                          *prometheus.Desc

	vsQuorum, vsActive, vsSorry, rsUp, rsWeight, checkUp, checkFailures, checkLastRun *prometheus.Desc

	hbNode, hbLastHeard, hbPing, hbGroupLocal, hbGroupInfo *prometheus.Desc

	releasedMaster, masterPrio                  *prometheus.Desc
	lbApplies, lbErrors, lbRepairs, lbLastApply *prometheus.Desc

	vsConns, vsPackets, vsBytes, rsConns, rsPackets, rsBytes, rsLastChange, checkDuration   *prometheus.Desc
	announcements, notifyFailures, garpDelay, vipsHeld, routesMissing, peerPrio, peerLast   *prometheus.Desc
	bgp                                                                                     bgpDescs
	csUp, csRestarts, csLinkUp, csEntries, csLastResync, csErrors, csCmdFailures, csWarning *prometheus.Desc
}

func newDescs() descs {
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("vigil_"+name, help, labels, nil)
	}
	return descs{
		bgp:            newBGPDescs(d),
		up:             d("up", "Whether the engine answered this scrape's status request (1) or not (0).", nil),
		buildInfo:      d("build_info", "Always 1; the version label is the running daemon's.", []string{"version"}),
		start:          d("start_time_seconds", "When the daemon started, in Unix time.", nil),
		reloads:        d("config_reloads_total", "Configuration reloads applied since start.", nil),
		lastReload:     d("config_last_reload_timestamp_seconds", "When the configuration was last reloaded, in Unix time.", nil),
		reloadFailures: d("config_reload_failures_total", "Reloads that did not apply (the file had errors, or applying it failed) since start.", nil),
		lastReloadOK:   d("config_last_reload_successful", "0 while the last reload did not apply: the daemon runs an older configuration than the file holds.", nil),

		unmatchedDropped:  d("vrrp_unmatched_adverts_dropped_total", "VRRP advertisements dropped before they reached an instance, by reason (unknown_vrid: no instance on the socket has the VRID; or too broken to tell the VRID).", []string{"reason"}),
		naDropped:         d("vrrp_conflict_watch_na_dropped_total", "Neighbour advertisements the address conflict watch read that were no claim on a virtual address, by reason.", []string{"reason"}),
		staticRouteErrors: d("static_route_errors_total", "Static routes and rules the kernel refused to add, replace or remove.", nil),
		lateWakeups:       d("vrrp_timer_late_wakeups_total", "VRRP timer expiries run by the backstop thread on another CPU because the timer's own wake-up was over 0.5 ms late (its CPU held by a kernel thread or interrupts).", nil),

		instInfo:       d("vrrp_instance_info", "Always 1; static facts about a VRRP instance as labels.", with(instLabels, "vrrp_version", "family", "sync_group")),
		instState:      d("vrrp_instance_state", "1 for the VRRP instance's current state, 0 for the other states.", with(instLabels, "state")),
		lastTransition: d("vrrp_last_transition_timestamp_seconds", "When the VRRP instance entered its current state, in Unix time.", instLabels),
		effPrio:        d("vrrp_effective_priority", "Priority advertised now: base priority adjusted by tracker weights (0-255).", instLabels),
		basePrio:       d("vrrp_base_priority", "Configured priority of the VRRP instance (1-255).", instLabels),
		advertInt:      d("vrrp_advert_interval_seconds", "Configured advertisement interval.", instLabels),
		vips:           d("vrrp_virtual_addresses", "Number of virtual addresses the VRRP instance manages.", instLabels),
		transitions:    d("vrrp_transitions_total", "State changes of the VRRP instance.", instLabels),
		becameMaster:   d("vrrp_became_master_total", "Times the VRRP instance became MASTER.", instLabels),
		sent:           d("vrrp_adverts_sent_total", "VRRP advertisements sent.", instLabels),
		received:       d("vrrp_adverts_received_total", "VRRP advertisements received and accepted.", instLabels),
		dropped:        d("vrrp_adverts_dropped_total", "VRRP advertisements received and dropped, by reason.", with(instLabels, "reason")),
		prioZeroTx:     d("vrrp_priority_zero_sent_total", "Priority-0 advertisements sent (master resigning).", instLabels),
		prioZeroRx:     d("vrrp_priority_zero_received_total", "Priority-0 advertisements received.", instLabels),
		addrMismatch:   d("vrrp_addr_list_mismatch_total", "Advertisements accepted from a master whose address list differs from ours (a rolling virtual_ipaddress change).", instLabels),
		rivalMaster:    d("vrrp_rival_master", "1 while this MASTER drops the adverts of another master for a difference of configuration (address list, advert_int, version, authentication): both hold the addresses.", instLabels),
		vipsRestored:   d("vrrp_vips_restored_total", "Virtual addresses and routes put back after something else removed them while master.", instLabels),
		routeErrors:    d("vrrp_route_errors_total", "Virtual routes and rules the kernel refused to add, replace or remove.", instLabels),
		vipConflicts:   d("vrrp_vip_conflicts_total", "ARP packets and neighbour advertisements from other hosts announcing a virtual address this master holds.", instLabels),
		vipLeftovers:   d("vrrp_vip_claims_leftover_total", "Claims of a virtual address this master holds read right after another router's last advert, silent since: leftovers of its master period, not conflicts.", instLabels),
		syncState:      d("vrrp_sync_group_state", "1 for the sync group's current state, 0 for the other states.", []string{"sync_group", "state"}),
		trackerUp:      d("vrrp_tracker_up", "Whether a tracked interface, script, file or process is in its good state (1) or failed (0).", trackerLabels),
		trackerWeight:  d("vrrp_tracker_weight", "Configured weight of a tracker (0: failure puts the instance in FAULT).", trackerLabels),

		vsQuorum:      d("virtual_server_quorum_up", "Whether the virtual server has its quorum of healthy real servers.", vsLabels),
		vsActive:      d("virtual_server_active", "Whether the virtual server is installed in the kernel.", vsLabels),
		vsSorry:       d("virtual_server_sorry_server_active", "Whether traffic goes to the sorry server.", vsLabels),
		rsUp:          d("real_server_up", "Whether the real server passes its health checks.", rsLabels),
		rsWeight:      d("real_server_weight", "Weight of the real server in the kernel's scheduler (0 when drained).", rsLabels),
		checkUp:       d("checker_up", "Whether the checker's last result was a success.", checkLabels),
		checkFailures: d("checker_consecutive_failures", "Consecutive failures of the checker.", checkLabels),
		checkLastRun:  d("checker_last_run_timestamp_seconds", "When the checker last ran, in Unix time.", checkLabels),

		hbNode:       d("heartbeat_node_status", "1 for the heartbeat node's current status, 0 for the other statuses.", []string{"node", "status"}),
		hbLastHeard:  d("heartbeat_node_last_heard_timestamp_seconds", "When a heartbeat from the node last arrived on a medium, in Unix time.", []string{"node", "medium"}),
		hbPing:       d("heartbeat_ping_node_reachable", "Whether the ping node answers.", []string{"ping_node"}),
		hbGroupLocal: d("heartbeat_group_local", "Whether the resource group runs on this node.", []string{"group"}),
		hbGroupInfo:  d("heartbeat_group_info", "Always 1; where a resource group lives and its state, as labels.", []string{"group", "home", "owner", "state"}),

		releasedMaster: d("vrrp_released_master_total", "Times the VRRP instance left MASTER.", instLabels),
		masterPrio:     d("vrrp_master_priority", "Priority of the current master as last heard (ours when MASTER).", instLabels),
		lbApplies:      d("lb_reconcile_applies_total", "Successful applies of the desired virtual services to the kernel.", []string{"backend"}),
		lbErrors:       d("lb_reconcile_errors_total", "Failed reads or applies of the kernel's virtual services.", []string{"backend"}),
		lbRepairs:      d("lb_reconcile_repairs_total", "Resyncs that found the kernel differing from the desired state (drift repaired).", []string{"backend"}),
		lbLastApply:    d("lb_reconcile_last_apply_timestamp_seconds", "When the kernel's virtual services were last applied, in Unix time.", []string{"backend"}),

		vsConns:       d("virtual_server_connections_total", "Connections the kernel scheduled for the virtual server (IPVS statistics, or vigil's nftables counters).", vsLabels),
		vsPackets:     d("virtual_server_packets_total", "Packets of the virtual server's connections: in from clients, out from real servers.", with(vsLabels, "direction")),
		vsBytes:       d("virtual_server_bytes_total", "Bytes of the virtual server's connections: in from clients, out from real servers.", with(vsLabels, "direction")),
		rsConns:       d("real_server_connections_total", "Connections the kernel scheduled to the real server.", rsLabels),
		rsPackets:     d("real_server_packets_total", "Packets of the real server's connections: in toward it, out from it.", with(rsLabels, "direction")),
		rsBytes:       d("real_server_bytes_total", "Bytes of the real server's connections: in toward it, out from it.", with(rsLabels, "direction")),
		rsLastChange:  d("real_server_last_change_timestamp_seconds", "When the real server last went up or down, in Unix time.", rsLabels),
		checkDuration: d("checker_last_duration_seconds", "How long the checker's last attempt took.", checkLabels),

		announcements:  d("vrrp_gratuitous_announcements_sent_total", "Gratuitous ARP and unsolicited neighbour advertisements sent for the instance's addresses.", instLabels),
		notifyFailures: d("vrrp_notify_script_failures_total", "Notify scripts of the instance that failed (non-zero exit, killed at the timeout, or not started).", instLabels),
		garpDelay:      d("vrrp_gratuitous_arp_delay_seconds", "Configured delay of the second round of gratuitous ARP after becoming master (garp_master_delay).", instLabels),
		vipsHeld:       d("vrrp_virtual_addresses_held", "Virtual addresses of the instance the kernel holds on this host now.", instLabels),
		routesMissing:  d("vrrp_virtual_routes_missing", "Virtual routes of an instance holding its addresses that the kernel's tables lack now (refused, or removed and not put back).", instLabels),
		peerPrio:       d("vrrp_peer_priority", "Priority in the last advertisement heard from a peer router.", peerLabels),
		peerLast:       d("vrrp_peer_last_advert_timestamp_seconds", "When the last advertisement from a peer router arrived, in Unix time.", peerLabels),
		csUp:           d("conntrack_sync_up", "Whether the supervised conntrackd runs (1) or not (0).", []string{"interface"}),
		csRestarts:     d("conntrack_sync_restarts_total", "Times conntrackd died and was restarted.", []string{"interface"}),
		csLinkUp:       d("conntrack_sync_link_up", "Whether the sync link is up with a carrier.", []string{"interface"}),
		csEntries:      d("conntrack_sync_cache_entries", "Flows in conntrackd's caches: internal (this director's) and external (replicated from the peer).", []string{"interface", "cache"}),
		csLastResync:   d("conntrack_sync_last_resync_timestamp_seconds", "When conntrackd last committed, resynchronised and bulk-sent on becoming MASTER, in Unix time.", []string{"interface"}),
		csErrors:       d("conntrack_sync_channel_errors_total", "Send and receive errors on conntrackd's sync channel, and messages lost.", []string{"interface", "kind"}),
		csCmdFailures:  d("conntrack_sync_command_failures_total", "conntrackd commands run on VRRP transitions that failed or timed out, by flag.", []string{"interface", "command"}),
		csWarning:      d("conntrack_sync_warning", "1 while the connection sync has a warning (conntrackd dead, link down, peer silent).", []string{"interface"}),
	}
}

// NewCollector returns a collector that takes a snapshot on each Collect,
// waiting at most DefaultTimeout for it.
func NewCollector(snap SnapshotFunc) *Collector {
	return &Collector{snap: snap, timeout: DefaultTimeout, d: newDescs()}
}

// Describe sends every descriptor the collector may emit.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

func (d *descs) all() []*prometheus.Desc {
	all := []*prometheus.Desc{d.up, d.buildInfo, d.start, d.reloads, d.lastReload, d.reloadFailures, d.lastReloadOK,
		d.unmatchedDropped, d.naDropped, d.staticRouteErrors, d.lateWakeups,
		d.instInfo, d.instState, d.lastTransition, d.effPrio, d.basePrio, d.advertInt, d.vips,
		d.transitions, d.becameMaster, d.sent, d.received, d.dropped, d.prioZeroTx, d.prioZeroRx, d.addrMismatch, d.rivalMaster, d.vipsRestored, d.vipConflicts, d.vipLeftovers, d.routeErrors,
		d.syncState, d.trackerUp, d.trackerWeight,
		d.vsQuorum, d.vsActive, d.vsSorry, d.rsUp, d.rsWeight, d.checkUp, d.checkFailures, d.checkLastRun,
		d.hbNode, d.hbLastHeard, d.hbPing, d.hbGroupLocal, d.hbGroupInfo,
		d.releasedMaster, d.masterPrio, d.lbApplies, d.lbErrors, d.lbRepairs, d.lbLastApply,
		d.vsConns, d.vsPackets, d.vsBytes, d.rsConns, d.rsPackets, d.rsBytes, d.rsLastChange, d.checkDuration,
		d.announcements, d.notifyFailures, d.garpDelay, d.vipsHeld, d.routesMissing, d.peerPrio, d.peerLast,
		d.csUp, d.csRestarts, d.csLinkUp, d.csEntries, d.csLastResync, d.csErrors, d.csCmdFailures, d.csWarning}
	return append(all, d.bgp.all()...)
}

// Collect takes a snapshot and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collect(ctx, ch)
}

func (c *Collector) collect(ctx context.Context, ch chan<- prometheus.Metric) {
	s, err := c.snap(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.d.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.d.up, prometheus.GaugeValue, 1)
	e := emitter{ch: ch, seen: map[seriesKey]bool{}}
	e.snapshot(&c.d, s)
}

// bound is a Collector tied to one request's context.
type bound struct {
	c   *Collector
	ctx context.Context
}

func (b bound) Describe(ch chan<- *prometheus.Desc) { b.c.Describe(ch) }
func (b bound) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(b.ctx, b.c.timeout)
	defer cancel()
	b.c.collect(ctx, ch)
}

// Handler serves the metrics for Prometheus (the text or protobuf
// exposition format, as negotiated), together with the Go runtime's and the
// process's standard metrics (go_*, process_*). The snapshot is taken with
// the scrape request's context, so a scraper that gives up cancels it.
func Handler(snap SnapshotFunc) http.Handler {
	base := prometheus.NewRegistry()
	base.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c := NewCollector(snap)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics are read-only", http.StatusMethodNotAllowed)
			return
		}
		req := prometheus.NewRegistry()
		req.MustRegister(bound{c: c, ctx: r.Context()})
		promhttp.HandlerFor(prometheus.Gatherers{base, req}, promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// emitter sends const metrics, skipping a series it has already sent (two
// objects with the same labels would make the whole scrape fail).
type emitter struct {
	ch   chan<- prometheus.Metric
	seen map[seriesKey]bool
}

// seriesKey is a series: its descriptor (one per metric name) and its
// label values joined. (Desc.String formats the whole descriptor at each
// call: tens of MB per scrape at 1,000 instances.)
type seriesKey struct {
	d      *prometheus.Desc
	labels string
}

func (e *emitter) emit(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	for i, l := range labels {
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	key := seriesKey{d, strings.Join(labels, "\x00")}
	if e.seen[key] {
		return
	}
	e.seen[key] = true
	e.ch <- prometheus.MustNewConstMetric(d, t, v, labels...)
}

func (e *emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.emit(d, prometheus.GaugeValue, v, labels...)
}

func (e *emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.emit(d, prometheus.CounterValue, float64(v), labels...)
}

func (e *emitter) stamp(d *prometheus.Desc, t time.Time, labels ...string) {
	if t.IsZero() {
		return
	}
	e.gauge(d, float64(t.UnixNano())/1e9, labels...)
}

// oneHot emits 1 for current and 0 for every other value of known; a
// current value outside known gets its own series.
func (e *emitter) oneHot(d *prometheus.Desc, known []string, current string, labels ...string) {
	vals := known
	if !containsFold(known, current) && current != "" {
		vals = append(append([]string(nil), known...), current)
	}
	for _, v := range vals {
		e.gauge(d, b2f(strings.EqualFold(v, current)), append(append([]string(nil), labels...), v)...)
	}
}

func (e *emitter) snapshot(d *descs, s status.Snapshot) {
	e.gauge(d.buildInfo, 1, s.Daemon.Version)
	e.stamp(d.start, s.Daemon.Started)
	e.counter(d.reloads, s.Daemon.Reloads)
	e.stamp(d.lastReload, s.Daemon.LastReload)
	e.counter(d.reloadFailures, s.Daemon.ReloadFailures)
	e.gauge(d.lastReloadOK, b2f(s.Daemon.LastReloadError == ""))
	for _, reason := range sortedKeys(s.Daemon.Dropped) {
		e.counter(d.unmatchedDropped, s.Daemon.Dropped[reason], reason)
	}
	for _, reason := range sortedKeys(s.Daemon.NADropped) {
		e.counter(d.naDropped, s.Daemon.NADropped[reason], reason)
	}
	e.counter(d.staticRouteErrors, s.Daemon.StaticRouteErrors)
	e.counter(d.lateWakeups, s.Daemon.LateTimerWakeups)
	e.bgp(&d.bgp, s.BGP)

	if r := s.Reconciler; r != nil {
		e.counter(d.lbApplies, r.Applies, r.Backend)
		e.counter(d.lbErrors, r.Errors, r.Backend)
		e.counter(d.lbRepairs, r.Repairs, r.Backend)
		e.stamp(d.lbLastApply, r.LastApply, r.Backend)
	}
	if cs := s.ConnSync; cs != nil {
		ifl := cs.Interface
		e.gauge(d.csUp, b2f(cs.Alive), ifl)
		e.counter(d.csRestarts, cs.Restarts, ifl)
		e.gauge(d.csLinkUp, b2f(cs.LinkUp), ifl)
		e.gauge(d.csEntries, float64(cs.Internal), ifl, "internal")
		e.gauge(d.csEntries, float64(cs.External), ifl, "external")
		e.stamp(d.csLastResync, cs.LastResync, ifl)
		e.counter(d.csErrors, cs.SendErrors, ifl, "send")
		e.counter(d.csErrors, cs.RecvErrors, ifl, "recv")
		e.counter(d.csErrors, cs.LostMsgs, ifl, "lost")
		for _, flag := range []string{"-c", "-f", "-R", "-B", "-t", "-n"} {
			e.counter(d.csCmdFailures, cs.CommandFailures[flag], ifl, flag)
		}
		e.gauge(d.csWarning, b2f(len(cs.Warnings) > 0), ifl)
	}
	for _, in := range s.Instances {
		il := []string{in.Name, in.Interface, strconv.Itoa(in.VRID)}
		l := func(more ...string) []string { return append(append([]string(nil), il...), more...) }
		e.gauge(d.instInfo, 1, l(strconv.Itoa(in.Version), in.Family, in.SyncGroup)...)
		e.oneHot(d.instState, States, strings.ToUpper(in.State), il...)
		e.stamp(d.lastTransition, in.Since, il...)
		e.gauge(d.effPrio, float64(in.EffectivePriority), il...)
		e.gauge(d.basePrio, float64(in.BasePriority), il...)
		e.gauge(d.advertInt, time.Duration(in.AdvertInterval).Seconds(), il...)
		e.gauge(d.vips, float64(len(in.VIPs)), il...)
		cn := in.Counters
		e.counter(d.transitions, cn.Transitions, il...)
		e.counter(d.becameMaster, cn.BecameMaster, il...)
		e.counter(d.releasedMaster, cn.ReleasedMaster, il...)
		if in.MasterPriority > 0 {
			e.gauge(d.masterPrio, float64(in.MasterPriority), il...)
		}
		e.counter(d.sent, cn.AdvertsSent, il...)
		e.counter(d.received, cn.AdvertsReceived, il...)
		for _, reason := range sortedKeys(cn.Dropped) {
			e.counter(d.dropped, cn.Dropped[reason], l(reason)...)
		}
		e.counter(d.prioZeroTx, cn.PriorityZeroTx, il...)
		e.counter(d.prioZeroRx, cn.PriorityZeroRx, il...)
		e.counter(d.addrMismatch, cn.AddrMismatch, il...)
		e.gauge(d.rivalMaster, b2f(in.RivalMaster != ""), il...)
		e.counter(d.vipsRestored, cn.VIPsRestored, il...)
		e.counter(d.routeErrors, cn.RouteErrors, il...)
		e.counter(d.vipConflicts, cn.VIPConflicts, il...)
		e.counter(d.vipLeftovers, cn.VIPClaimsLeft, il...)
		e.counter(d.announcements, cn.Announcements, il...)
		e.counter(d.notifyFailures, cn.NotifyFailures, il...)
		e.gauge(d.garpDelay, time.Duration(in.GARPDelay).Seconds(), il...)
		e.gauge(d.vipsHeld, float64(len(in.HeldVIPs)), il...)
		e.gauge(d.routesMissing, float64(len(in.MissingRoutes)), il...)
		for _, p := range in.Peers {
			e.gauge(d.peerPrio, float64(p.Priority), l(p.Addr)...)
			e.stamp(d.peerLast, p.LastHeard, l(p.Addr)...)
		}
		for _, tr := range in.Trackers {
			tl := []string{in.Name, tr.Kind, tr.Name}
			e.gauge(d.trackerUp, b2f(tr.OK), tl...)
			e.gauge(d.trackerWeight, float64(tr.Weight), tl...)
		}
	}
	for _, g := range s.SyncGroups {
		e.oneHot(d.syncState, States, strings.ToUpper(g.State), g.Name)
	}

	for _, vs := range s.VirtualServers {
		vl := vsLabelValues(vs)
		e.gauge(d.vsQuorum, b2f(vs.QuorumUp), vl...)
		e.gauge(d.vsActive, b2f(vs.Active), vl...)
		if vs.Sorry != "" {
			e.gauge(d.vsSorry, b2f(vs.SorryActive), vl...)
		}
		e.kernel(d.vsConns, d.vsPackets, d.vsBytes, vs.Kernel, vl)
		for _, rs := range vs.RealServers {
			rl := with(vl, rs.Addr)
			e.gauge(d.rsUp, b2f(rs.Healthy), rl...)
			e.gauge(d.rsWeight, float64(rs.Weight), rl...)
			e.stamp(d.rsLastChange, rs.Since, rl...)
			e.kernel(d.rsConns, d.rsPackets, d.rsBytes, rs.Kernel, rl)
			for _, ck := range checkerNames(rs.Checkers) {
				cl := with(rl, ck.Kind, strconv.Itoa(ck.index))
				e.gauge(d.checkUp, b2f(ck.OK), cl...)
				e.gauge(d.checkFailures, float64(ck.Failures), cl...)
				e.stamp(d.checkLastRun, ck.LastRun, cl...)
				if !ck.LastRun.IsZero() {
					e.gauge(d.checkDuration, time.Duration(ck.Duration).Seconds(), cl...)
				}
			}
		}
	}

	if hb := s.Heartbeat; hb != nil {
		for _, n := range hb.Nodes {
			e.oneHot(d.hbNode, HeartbeatStatuses, strings.ToLower(n.Status), n.Name)
			for _, m := range sortedKeys(n.LastHeard) {
				e.stamp(d.hbLastHeard, n.LastHeard[m], n.Name, m)
			}
		}
		for _, p := range hb.Pings {
			e.gauge(d.hbPing, b2f(p.Reachable), p.Addr)
		}
		for _, g := range hb.Groups {
			e.gauge(d.hbGroupLocal, b2f(g.Owner != "" && g.Owner == hb.Node), g.Name)
			e.gauge(d.hbGroupInfo, 1, g.Name, g.Home, g.Owner, g.State)
		}
	}
}

type namedChecker struct {
	status.Checker
	index int
}

// checkerNames numbers a real server's checkers within their kind, in
// configuration order: two TCP_CHECKs on different ports are TCP_CHECK 0
// and TCP_CHECK 1.
func checkerNames(cs []status.Checker) []namedChecker {
	n := map[string]int{}
	out := make([]namedChecker, 0, len(cs))
	for _, c := range cs {
		out = append(out, namedChecker{c, n[c.Kind]})
		n[c.Kind]++
	}
	return out
}

// vsLabelValues are a virtual server's vsLabels values.
func vsLabelValues(vs status.VirtualServer) []string {
	port, mark := "", ""
	if vs.VIP != "" {
		port = strconv.Itoa(vs.Port)
	}
	if vs.FWMark != 0 {
		mark = strconv.FormatUint(uint64(vs.FWMark), 10)
	}
	return []string{vs.VIP, port, vs.Protocol, mark, vs.Group}
}

// kernel emits a virtual or real server's kernel counters, when read.
func (e *emitter) kernel(conns, packets, bytes *prometheus.Desc, k *status.Kernel, labels []string) {
	if k == nil {
		return
	}
	e.counter(conns, k.Connections, labels...)
	e.counter(packets, k.PacketsIn, with(labels, "in")...)
	e.counter(packets, k.PacketsOut, with(labels, "out")...)
	e.counter(bytes, k.BytesIn, with(labels, "in")...)
	e.counter(bytes, k.BytesOut, with(labels, "out")...)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
