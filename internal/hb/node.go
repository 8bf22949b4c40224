// Package hb runs heartbeat-style (Linux-HA 3.0, haresources) clusters: the
// Node runtime (its transports over several media, the pinger, the resource
// scripts, the status file) around the pure membership and resource machine
// of internal/hb/machine.
package hb

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vigil-ha/vigil/internal/hb/machine"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/internal/atomicfile"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/hb/hbconf"
	"github.com/vigil-ha/vigil/internal/hb/resource"
	"github.com/vigil-ha/vigil/internal/hb/wire"
	"golang.org/x/net/icmp"
)

// Config is a heartbeat configuration (ha.cf, haresources, authkeys).
type Config = hbconf.Config

// Load reads and checks the heartbeat configuration in dir (for `vigil
// check --ha-dir`).
func Load(dir string) (*Config, diag.Diagnostics) { return hbconf.Load(dir) }

// Options configure a Node.
type Options struct {
	Config *Config
	// NodeName is this node's name; "" means `uname -n`, as heartbeat.
	NodeName string
	Log      *slog.Logger
	// Addrs and ARP default to resource.IPCommand and resource.RawARP.
	Addrs resource.AddressManager
	ARP   resource.Announcer
	// Run runs resource scripts (default os/exec).
	Run resource.Runner
	// InitDir is where LSB scripts live (default /etc/init.d).
	InitDir string
	// StatusFile, when set, receives the JSON status snapshot after every
	// change and keepalive (written atomically).
	StatusFile string
	// GenerationFile keeps the generation across starts (heartbeat's
	// hb_generation, ha.cf `hbgenmethod file`, the default); "" or
	// `hbgenmethod time` take it from the clock. See nextGeneration.
	GenerationFile string
	// StopTimeout bounds the graceful stop (release + goodbye); default 2 min.
	StopTimeout time.Duration
}

// Node is a running heartbeat-compatible cluster member.
//
// Concurrency: Run is called once; Status may be called from any goroutine.
type Node struct {
	opts   Options
	cfg    *Config
	self   string
	uuid   [16]byte
	gen    uint64
	auth   *wire.Auth
	log    *slog.Logger
	m      *machine.Machine
	groups map[string]*resource.Group
	order  []string

	// owned by Run's goroutine
	clock func() time.Time // time.Now; receive and retransmit read it
	seq   uint64
	hist  map[uint64][]byte
	// rexmitFrom starts the second in which rexmitSent answers to
	// NS_rexmit (retransmissions and NAKs) were sent.
	rexmitFrom time.Time
	rexmitSent int
	track      map[string]*seqTrack
	media      []*medium
	uuids      map[string][]byte
	pingUp     int
	pingAll    map[netip.Addr]time.Time

	mu     sync.Mutex
	status Status
	drops  map[string]uint64
}

type seqTrack struct {
	gen     uint64
	last    uint64
	missing map[uint64]bool
}

// Bounds on what a peer (or a forger, with crc authkeys) can make a node
// hold or send. heartbeat keeps fixed arrays for the same purposes.
const (
	// maxMissing bounds the sequence numbers a node waits to have
	// retransmitted per peer; the oldest are given up first.
	maxMissing = 200
	// maxRexmitBatch bounds the packets one NS_rexmit makes a node send.
	maxRexmitBatch = 50
	// maxRexmitPerSecond bounds the answers to NS_rexmit (retransmissions
	// and NAKs) a node sends in a second, however many requests arrive:
	// its whole history once. heartbeat resends one message at most once
	// a second (process_rexmit, lastrexmit), the same bound for
	// retransmissions, but NAKs every sequence number it lacks.
	maxRexmitPerSecond = 200
)

// Status is the node's snapshot.
type Status struct {
	Node       string              `json:"node"`
	Status     machine.NodeStatus  `json:"status"`
	Generation uint64              `json:"generation"`
	Peers      []machine.PeerState `json:"peers"`
	Groups     []GroupStatus       `json:"groups"`
	PingUp     int                 `json:"ping_up"`
	PingNodes  []PingStatus        `json:"ping_nodes,omitempty"`
	Drops      map[string]uint64   `json:"drops,omitempty"`
	Stopped    bool                `json:"stopped,omitempty"`
}

// GroupStatus says where a group runs.
type GroupStatus struct {
	machine.GroupState
	Home  string `json:"home"`
	Owner string `json:"owner"` // node that holds it, as far as we know; "" = nobody
}

// PingStatus is one ping node.
type PingStatus struct {
	Addr      netip.Addr `json:"addr"`
	LastReply time.Time  `json:"last_reply,omitzero"`
}

// NewNode checks the configuration and builds the node; it starts nothing.
func NewNode(o Options) (*Node, error) {
	c := o.Config
	if c == nil || c.Auth == nil {
		return nil, errors.New("hb: configuration without usable authkeys")
	}
	self := o.NodeName
	if self == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("hb: hostname: %w", err)
		}
		self = h
	}
	var me string
	var peers []string
	for _, n := range c.Nodes {
		if strings.EqualFold(n.Name, self) {
			me = NodeName(n.Name)
		} else {
			peers = append(peers, NodeName(n.Name))
		}
	}
	if me == "" {
		return nil, fmt.Errorf("hb: this node %q is not a `node` in ha.cf (nodes: %s); heartbeat names nodes by `uname -n`", self, strings.Join(c.NodeNames(), ", "))
	}
	if len(c.Groups) > 0 && len(peers) != 1 {
		return nil, fmt.Errorf("hb: haresources needs exactly two nodes (have %d): heartbeat's resource groups are a two-node protocol", len(peers)+1)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Addrs == nil {
		o.Addrs = resource.IPCommand{Run: o.Run}
	}
	if o.ARP == nil {
		o.ARP = resource.RawARP{Count: 5, Interval: 200 * time.Millisecond}
	}
	if o.InitDir == "" {
		o.InitDir = "/etc/init.d"
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = 2 * time.Minute
	}
	env := &resource.Env{Addrs: o.Addrs, ARP: o.ARP, Run: o.Run, HaDir: c.Dir, InitDir: o.InitDir, Log: log}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if p, err := execLookPath("systemctl"); err == nil {
			env.Systemctl = p
		}
	}
	n := &Node{opts: o, cfg: c, self: me, log: log, groups: map[string]*resource.Group{}, drops: map[string]uint64{},
		clock: time.Now, hist: map[uint64][]byte{}, track: map[string]*seqTrack{}, uuids: map[string][]byte{}, pingUp: -1}
	n.auth = &wire.Auth{Active: c.Auth.Active, Methods: map[int]wire.Method{}}
	for k, v := range c.Auth.Methods {
		n.auth.Methods[k] = wire.Method{Type: v.Type, Key: v.Key}
	}
	// A stable uuid per node name, so heartbeat's host cache stays valid
	// across vigil restarts.
	n.uuid = md5.Sum([]byte("vigil-hb-node:" + me))
	n.uuid[6] = n.uuid[6]&0x0f | 0x30
	n.uuid[8] = n.uuid[8]&0x3f | 0x80
	mc := machine.Config{Self: me, Peers: peers, Keepalive: c.Keepalive, Deadtime: c.Deadtime, Warntime: c.Warntime, Initdead: c.Initdead,
		AutoFailback: c.FailsBack(), PingNodes: len(c.PingNodes) + len(c.PingGroups)}
	for _, m := range c.Media {
		mc.Media = append(mc.Media, string(m.Kind)+" "+m.Dev)
	}
	for _, g := range c.Groups {
		rg, err := resource.NewGroup(g, env)
		if err != nil {
			return nil, err
		}
		if _, dup := n.groups[rg.Name]; dup {
			return nil, fmt.Errorf("hb: two groups named %s", rg.Name)
		}
		n.groups[rg.Name] = rg
		n.order = append(n.order, rg.Name)
		mc.Groups = append(mc.Groups, machine.GroupSpec{Name: rg.Name, Local: strings.EqualFold(g.Node, me)})
	}
	n.m = machine.New(mc)
	return n, nil
}

// NodeName is a node's name as heartbeat holds it: add_node lowers the
// case of ha.cf's `node` names (g_strdown), as heartbeat does its own
// uname, and heartbeat finds the node of a message by its src (and dest)
// exactly, so a node written "HA1" in ha.cf goes by "ha1" on the wire:
// heartbeat drops a message from "HA1" ("bad node [HA1] in message") and
// declares that node dead.
func NodeName(name string) string { return strings.ToLower(name) }

type rxPacket struct {
	data  []byte
	media []int
	from  netip.AddrPort
}

type rscOp struct {
	group   string
	acquire bool
}

// Run runs the node until ctx ends, then stops gracefully: it releases its
// groups (in reverse order), tells the peer (t=resource info=shutdown,
// t=shutdone) and returns once every goroutine it started has exited.
// With ha.cf's watchdog it writes the device with every status heartbeat
// and disarms it with the magic close only after a graceful stop that
// finished (see watchdog).
func (n *Node) Run(ctx context.Context) error {
	genFile := n.opts.GenerationFile
	if n.cfg.GenTime {
		genFile = ""
	}
	n.gen = nextGeneration(genFile, time.Now(), n.log)
	n.log.Info("hb: generation", "generation", n.gen)
	media, listeners, err := openMedia(ctx, n.cfg.Media)
	if err != nil {
		return err
	}
	n.media = media
	var wg sync.WaitGroup
	rx := make(chan rxPacket, 64)
	for _, l := range listeners {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			buf := make([]byte, wire.MaxMsg+1)
			for {
				k, from, err := l.conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				rx <- rxPacket{data: append([]byte(nil), buf[:k]...), media: l.media, from: from}
			}
		}(l)
	}
	pingCtx, stopPing := context.WithCancel(context.Background())
	pingCh := make(chan int, 4)
	if len(n.cfg.PingNodes)+len(n.cfg.PingGroups) > 0 {
		conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			n.closeAll(media, listeners)
			stopPing()
			return fmt.Errorf("hb: ping socket: %w", err)
		}
		p := &pinger{interval: n.cfg.Keepalive, deadping: n.cfg.Deadping, id: newPingID()}
		for _, pn := range n.cfg.PingNodes {
			p.nodes = append(p.nodes, pn.Addr)
		}
		for _, g := range n.cfg.PingGroups {
			p.groups = append(p.groups, g.Addrs)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.run(pingCtx, conn, pingCh, func(m map[netip.Addr]time.Time) {
				n.mu.Lock()
				n.pingAll = m
				n.mu.Unlock()
			})
		}()
	}
	ops := make(chan rscOp, 64)
	dones := make(chan machine.Done, 64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for op := range ops {
			g := n.groups[op.group]
			var err error
			start := time.Now()
			if op.acquire {
				n.log.Info("acquiring resource group", "group", op.group)
				err = g.Start(context.Background())
			} else {
				n.log.Info("releasing resource group", "group", op.group)
				err = g.Stop(context.Background())
			}
			took := time.Since(start).Round(time.Millisecond)
			switch {
			case err != nil:
				n.log.Error("resource group", "group", op.group, "acquire", op.acquire, "took", took, "err", err)
			case op.acquire:
				n.log.Info("resource group acquired", "group", op.group, "took", took)
			default:
				n.log.Info("resource group released", "group", op.group, "took", took)
			}
			dones <- machine.Done{Group: op.group, Acquire: op.acquire, Err: err}
		}
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	stopped := false
	var wd *watchdog
	var stopDeadline <-chan time.Time
	apply := func(as []machine.Action) {
		if len(as) == 0 {
			// Nothing changed (a dropped packet, a peer's routine
			// heartbeat): no snapshot. Writing the status file for every
			// packet let a flood of packets nobody can authenticate
			// hold the loop ~150 µs each, and the peer's own heartbeats,
			// queued behind them, overflowed the sockets. The snapshot
			// follows at the next keepalive.
			return
		}
		for _, a := range as {
			switch a := a.(type) {
			case machine.SendStatus:
				f := []wire.Field{{Name: wire.FType, Value: []byte(wire.TStatus)}, {Name: wire.FStatus, Value: []byte(a.Status)},
					{Name: wire.FDeadtime, Value: []byte(strconv.FormatInt(n.cfg.Deadtime.Milliseconds(), 16))}, {Name: wire.FProtocol, Value: []byte("1")}}
				if n.pingUp >= 0 {
					f = append(f, wire.Field{Name: FieldPingUp, Value: []byte(strconv.Itoa(n.pingUp))})
				}
				n.send(f, "")
				wd.tickle()
			case machine.SendStarting:
				n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TStarting)}}, "")
			case machine.SendResources:
				f := []wire.Field{{Name: wire.FType, Value: []byte(wire.TResources)}, {Name: wire.FRsc, Value: []byte(a.Holds.String())},
					{Name: wire.FRType, Value: []byte("full")}, {Name: wire.FStable, Value: []byte(map[bool]string{true: "1", false: "0"}[a.Stable])}}
				if a.Info != "" {
					f = append(f, wire.Field{Name: wire.FComment, Value: []byte(a.Info)})
				}
				n.send(f, "")
			case machine.SendAsk:
				n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TAskResources)}, {Name: wire.FRsc, Value: []byte(a.Rsc.String())}, {Name: wire.FComment, Value: []byte(a.Info)}}, "")
			case machine.SendShutdone:
				n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TShutdone)}}, "")
			case machine.Acquire:
				ops <- rscOp{group: a.Group, acquire: true}
			case machine.Release:
				ops <- rscOp{group: a.Group}
			case machine.NodeChanged:
				n.log.Info("node status", "node", a.Node, "status", a.Status)
			case machine.LinkChanged:
				n.log.Info("link", "node", a.Node, "medium", a.Medium, "up", a.Up)
			case machine.Log:
				if a.Warn {
					n.log.Warn(a.Msg)
				} else {
					n.log.Info(a.Msg)
				}
			case machine.Stopped:
				stopped = true
			}
		}
		n.snapshot(stopped)
	}
	wd = openWatchdog(n.cfg.Watchdog, n.log)
	apply(n.m.Step(time.Now(), machine.Start{}))
	done := ctx.Done()
	timedOut := false
	for !stopped {
		if d := n.m.Deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
		select {
		case <-done:
			done = nil
			stopDeadline = time.After(n.opts.StopTimeout)
			n.log.Info("stopping: releasing resources")
			apply(n.m.Step(time.Now(), machine.Stop{}))
		case <-stopDeadline:
			n.log.Error("graceful stop timed out")
			stopped, timedOut = true, true
		case <-timer.C:
			apply(n.m.Step(time.Now(), machine.Tick{}))
		case p := <-rx:
			apply(n.receive(p))
		case c := <-pingCh:
			n.pingUp = c
			apply(n.m.Step(time.Now(), machine.PingChanged{Up: c}))
		case d := <-dones:
			apply(n.m.Step(time.Now(), d))
		}
	}
	if timedOut {
		wd.abandon() // resources may still be held: let the kernel reset the node
	} else {
		wd.stop()
	}
	n.snapshot(true)
	stopPing()
	close(ops)
	n.closeAll(media, listeners)
	go func() {
		for range rx {
		}
	}()
	go func() {
		for range dones {
		}
	}()
	wg.Wait()
	return nil
}

// FieldPingUp is vigil's extra status field: how many ping nodes/groups
// the sender reaches (heartbeat ignores unknown fields), for ipfail between
// vigil nodes.
const FieldPingUp = "vigil_ping"

func (n *Node) closeAll(ms []*medium, ls []*listener) {
	for _, m := range ms {
		m.conn.Close()
	}
	for _, l := range ls {
		l.conn.Close()
	}
}

func (n *Node) drop(reason string) {
	n.mu.Lock()
	n.drops[reason]++
	c := n.drops[reason]
	n.mu.Unlock()
	if c&(c-1) == 0 { // rate-limited: 1, 2, 4, 8, ...
		n.log.Warn("dropped heartbeat packet", "reason", reason, "count", c)
	}
}

// send signs a message as heartbeat's add_control_msg_fields +
// msg2wirefmt do and sends it on every medium. dest names one node (NS_
// messages); seq'd messages are kept for retransmission.
func (n *Node) send(fields []wire.Field, dest string) {
	m := &wire.Message{Fields: append([]wire.Field(nil), fields...)}
	typ := m.Value(wire.FType)
	noseq := strings.HasPrefix(typ, wire.NoSeqPrefix)
	if dest != "" {
		m.Set(wire.FTo, dest)
		if u, ok := n.uuids[dest]; ok {
			m.SetBinary(wire.FToUUID, u)
		}
	}
	m.Set(wire.FOrig, n.self)
	m.SetBinary(wire.FOrigUUID, n.uuid[:])
	var seq uint64
	if !noseq {
		n.seq++
		seq = n.seq
		m.Set(wire.FSeq, strconv.FormatUint(seq, 16))
	}
	m.Set(wire.FGen, strconv.FormatUint(n.gen, 16))
	m.Set(wire.FTime, strconv.FormatInt(time.Now().Unix(), 16))
	if !noseq {
		m.Set(wire.FLoad, loadavg())
	}
	m.Set(wire.FTTL, "3")
	b, err := wire.Marshal(m, n.auth)
	if err != nil {
		n.log.Error("cannot encode heartbeat message", "type", typ, "err", err)
		return
	}
	if !noseq {
		n.hist[seq] = b
		delete(n.hist, seq-200) // heartbeat keeps MAXMSGHIST (200)
	}
	n.transmit(b)
}

func (n *Node) transmit(b []byte) {
	for _, md := range n.media {
		if _, err := md.conn.WriteToUDP(b, md.dst); err != nil {
			n.drop("send-" + md.cfg.Dev)
		}
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "0.00 0.00 0.00 1/1 1"
	}
	return strings.TrimSpace(string(b))
}

// receive authenticates and dispatches one packet (heartbeat.c
// process_clustermsg / should_drop_message).
func (n *Node) receive(p rxPacket) []machine.Action {
	pk, err := wire.Parse(p.data)
	if err != nil {
		n.drop("malformed")
		return nil
	}
	if err := wire.Verify(pk, n.auth); err != nil {
		n.drop("auth")
		return nil
	}
	msg := &pk.Msg
	from := msg.Value(wire.FOrig)
	typ := msg.Value(wire.FType)
	if from == "" || typ == "" {
		n.drop("no-src-or-type")
		return nil
	}
	if strings.EqualFold(from, n.self) {
		return nil // our own broadcast/multicast
	}
	var peer string
	for _, x := range n.cfg.Nodes {
		if strings.EqualFold(x.Name, from) {
			peer = NodeName(x.Name)
		}
	}
	if peer == "" {
		n.drop("unknown-node")
		return nil
	}
	if u, ok := msg.Get(wire.FOrigUUID); ok && len(u) == 16 {
		n.uuids[peer] = []byte(u)
	}
	now := n.clock()
	dest := msg.Value(wire.FTo)
	toUs := dest == "" || strings.EqualFold(dest, n.self)
	var out []machine.Action
	heard := func(status machine.NodeStatus) {
		ping := -1
		if v, ok := msg.Get(FieldPingUp); ok {
			if k, err := strconv.Atoi(v); err == nil {
				ping = k
			}
		}
		for _, md := range p.media {
			out = append(out, n.m.Step(now, machine.Heard{Node: peer, Medium: md, Status: status, PingUp: ping})...)
		}
	}
	if strings.HasPrefix(typ, wire.NoSeqPrefix) {
		heard("")
		if typ == wire.TRexmit && toUs {
			n.retransmit(peer, msg)
		}
		return out
	}
	seq, ok1 := msg.Hex(wire.FSeq)
	gen, _ := msg.Hex(wire.FGen)
	if !ok1 || seq == 0 {
		n.drop("bad-seq")
		return nil
	}
	t := n.track[peer]
	if t == nil {
		t = &seqTrack{missing: map[uint64]bool{}}
		n.track[peer] = t
	}
	fresh := false
	switch {
	case gen < t.gen:
		n.drop("replay")
		return nil
	case gen > t.gen:
		// heartbeat restarted on that node: sequence starts over.
		t.gen, t.last, t.missing = gen, seq, map[uint64]bool{}
		fresh = true
	case seq == t.last+1:
		t.last, fresh = seq, true
	case seq > t.last+1:
		// lost packets: ask for them (heartbeat request_msg_rexmit).
		if seq-t.last-1 <= 100 {
			for k := t.last + 1; k < seq; k++ {
				t.missing[k] = true
			}
			n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TRexmit)}, {Name: wire.FFirstSeq, Value: []byte(strconv.FormatUint(t.last+1, 16))}, {Name: wire.FLastSeq, Value: []byte(strconv.FormatUint(seq-1, 16))}}, peer)
		}
		t.last, fresh = seq, true
		t.forget()
	case t.missing[seq]:
		delete(t.missing, seq)
		fresh = true
	}
	if fresh && seq%10 == 0 {
		// heartbeat.c send_ack_if_needed: flow-control acks every
		// ACK_MSG_DIV (10) messages.
		n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TAck)}, {Name: wire.FAckSeq, Value: []byte(strconv.FormatUint(seq, 16))}}, peer)
	}
	if typ == wire.TStatus && fresh {
		heard(machine.NodeStatus(msg.Value(wire.FStatus)))
		return out
	}
	heard("")
	if !fresh || !toUs {
		return out
	}
	switch typ {
	case wire.TReqNodes:
		// heartbeat.c HBDoMsg_T_REQNODES: a heartbeat node with flow
		// control waits for this reply before its comm is "up" (it then
		// turns active and starts resource management).
		var nl strings.Builder
		for _, x := range n.cfg.Nodes {
			nl.WriteString(NodeName(x.Name) + " ")
		}
		n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TRepNodes)}, {Name: wire.FNodeList, Value: []byte(nl.String())}, {Name: wire.FDelNodeList, Value: []byte(" ")}}, peer)
	case wire.TStarting:
		out = append(out, n.m.Step(now, machine.PeerStarting{Node: peer})...)
	case wire.TResources:
		r, ok := machine.ParseRsc(msg.Value(wire.FRsc))
		if !ok {
			n.drop("bad-rsc_hold")
			return out
		}
		st, has := msg.Get(wire.FStable)
		out = append(out, n.m.Step(now, machine.PeerResources{Node: peer, Holds: r, Stable: st == "1", HasStable: has, Info: msg.Value(wire.FComment)})...)
	case wire.TAskResources:
		r, ok := machine.ParseRsc(msg.Value(wire.FRsc))
		if !ok {
			r = machine.RscAll
		}
		out = append(out, n.m.Step(now, machine.AskResources{Node: peer, Info: msg.Value(wire.FComment), Rsc: r})...)
	case wire.TShutdone:
		out = append(out, n.m.Step(now, machine.PeerShutdone{Node: peer})...)
	}
	return out
}

// forget gives up the oldest missing sequence numbers beyond maxMissing
// and any that fell more than maxMissing behind the last one seen: the
// peer no longer holds them (it keeps 200 messages of history).
func (t *seqTrack) forget() {
	for k := range t.missing {
		if t.last-k > maxMissing {
			delete(t.missing, k)
		}
	}
	for len(t.missing) > maxMissing {
		oldest := t.last
		for k := range t.missing {
			oldest = min(oldest, k)
		}
		delete(t.missing, oldest)
	}
}

// retransmit answers NS_rexmit from our history, or NS_nak_rexmit
// (heartbeat.c process_rexmit / nak_rexmit).
func (n *Node) retransmit(peer string, msg *wire.Message) {
	first, ok1 := msg.Hex(wire.FFirstSeq)
	last, ok2 := msg.Hex(wire.FLastSeq)
	if !ok1 || !ok2 || last < first || last-first > 200 {
		n.drop("bad-rexmit")
		return
	}
	if now := n.clock(); now.Sub(n.rexmitFrom) >= time.Second {
		n.rexmitFrom, n.rexmitSent = now, 0
	}
	for s, sent := first, 0; s <= last; s, sent = s+1, sent+1 {
		if sent == maxRexmitBatch {
			n.drop("rexmit-batch")
			return
		}
		if n.rexmitSent == maxRexmitPerSecond {
			n.drop("rexmit-rate")
			return
		}
		n.rexmitSent++
		if b, ok := n.hist[s]; ok {
			n.transmit(b)
			continue
		}
		n.send([]wire.Field{{Name: wire.FType, Value: []byte(wire.TNakRexmit)}, {Name: wire.FFirstSeq, Value: []byte(strconv.FormatUint(s, 16))}}, peer)
	}
}

func (n *Node) snapshot(stopped bool) {
	st := Status{Node: n.self, Generation: n.gen, Peers: n.m.Peers(), PingUp: n.pingUp, Stopped: stopped}
	st.Status = n.m.Status()
	var peer *machine.PeerState
	if len(st.Peers) > 0 {
		peer = &st.Peers[0]
	}
	for i, g := range n.m.Groups() {
		gs := GroupStatus{GroupState: g, Home: n.cfg.Groups[i].Node}
		switch {
		case g.Held:
			gs.Owner = n.self
		case peer != nil && peer.Status != machine.StatusDead:
			if machine.PeerHolds(*peer, g) {
				gs.Owner = peer.Name
			}
		}
		st.Groups = append(st.Groups, gs)
	}
	n.mu.Lock()
	for _, pn := range n.cfg.PingNodes {
		st.PingNodes = append(st.PingNodes, PingStatus{Addr: pn.Addr, LastReply: n.pingAll[pn.Addr]})
	}
	st.Drops = map[string]uint64{}
	for k, v := range n.drops {
		st.Drops[k] = v
	}
	n.status = st
	n.mu.Unlock()
	if n.opts.StatusFile != "" {
		b, _ := json.MarshalIndent(st, "", "  ")
		if err := writeStatusFile(n.opts.StatusFile, b); err != nil {
			n.log.Debug("cannot write the status file", "err", err)
		}
	}
}

// writeStatusFile replaces path with b (mode 0644) through atomicfile: a
// reader never sees half a file, and a symlink planted in a world-writable
// directory, at path or at a guessed temporary name, is not followed. No
// fsync: the file is rewritten at every change and means nothing after a
// reboot.
func writeStatusFile(path string, b []byte) error {
	return atomicfile.WriteFile(path, b, atomicfile.Options{Perm: 0o644})
}

// Status returns the latest snapshot.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

var _ = net.IPv4len
var _ = filepath.Join
