// Package dump writes keepalived's data dumps from a status.Snapshot, for the
// tools that already read them (keepalived Prometheus exporters, scripts):
//
//	SIGUSR1          keepalived.data   the VRRP topology as text
//	SIGUSR2          keepalived.stats  per-instance advert and error counters
//	SIGRTMIN+2 (36)  keepalived.json   both, as JSON (keepalived --signum=JSON)
//
// The formats are keepalived 2.2.7's (vrrp_data.c dump_vrrp, vrrp_print.c
// vrrp_print_stats, vrrp_json.c vrrp_json_dump), limited to what a snapshot
// knows: lines and fields about internals vigil does not have (socket fds,
// read timeouts, the sockpool, the interface table) are left out rather than
// invented. Every line and field that the public exporters parse is written
// (mehdy/keepalived-exporter: State, Wantstate, Interface, Virtual Router ID,
// Virtual IP lists, script Status/State, every stats counter;
// gen2brain/keepalived_exporter: the JSON data/stats objects).
//
// The writers are pure (they take the snapshot and the time zone); Paths.Write
// and Run do the file and signal I/O.
package dump

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// Stat is one of keepalived 2.2.7's vrrp_stats error counters, as the
// drop reasons of vigil's engine that keepalived counts there: the labels of
// status.Counters.Dropped (vrrp.DropReason and packet.Reason names) summed.
// Other reasons are vigil's own: they appear in the metrics but have no
// place in keepalived's files.
type Stat []string

var (
	StatPacketLength     = Stat{packet.ReasonTooShort.String(), packet.ReasonTooLong.String()} // "Packet Errors: Length"
	StatTTL              = Stat{vrrp.DropTTL.String()}                                         // "Packet Errors: TTL"
	StatInvalidType      = Stat{packet.ReasonType.String()}                                    // "Packet Errors: Invalid Type"
	StatAdvertInterval   = Stat{vrrp.DropInterval.String()}                                    // "Packet Errors: Advertisement Interval"
	StatAddressList      = Stat{vrrp.DropAddrCount.String(), vrrp.DropAddrList.String()}       // "Packet Errors: Address List"
	StatInvalidAuthType  = Stat{packet.ReasonAuthType.String()}                                // "Authentication Errors: Invalid Type"
	StatAuthTypeMismatch = Stat{vrrp.DropAuthType.String()}                                    // "Authentication Errors: Type Mismatch"
	StatAuthFailure      = Stat{vrrp.DropAuthFailure.String(), vrrp.DropAHSequence.String()}   // "Authentication Errors: Failure"; an AH sequence number already seen too
)

// Of is the counter's value for an instance's counters.
func (s Stat) Of(c status.Counters) uint64 {
	var n uint64
	for _, r := range s {
		n += c.Dropped[r]
	}
	return n
}

// StateNumber is keepalived's numeric VRRP state (vrrp.h VRRP_STATE_*), as
// the JSON dump and the exporters use it. Unknown states are INIT (0).
func StateNumber(state string) int {
	switch strings.ToUpper(state) {
	case "BACKUP":
		return 1
	case "MASTER":
		return 2
	case "FAULT":
		return 3
	case "DELETED":
		return 97
	case "STOP":
		return 98
	}
	return 0
}

// stateText is keepalived's get_state_str: the four states it knows, else
// "unknown".
func stateText(state string) string {
	switch s := strings.ToUpper(state); s {
	case "INIT", "BACKUP", "MASTER", "FAULT":
		return s
	}
	return "unknown"
}

// releasedMaster derives keepalived's release_master (times the instance
// left MASTER) from the counters: every time it became MASTER it has left
// again, except the current stay.
func releasedMaster(in status.Instance) uint64 {
	if in.Counters.ReleasedMaster > 0 {
		return in.Counters.ReleasedMaster
	}
	n := in.Counters.BecameMaster
	if strings.EqualFold(in.State, "MASTER") && n > 0 {
		n--
	}
	return n
}

// vipText formats a virtual address as keepalived's format_ipaddress does:
// the address with its prefix unless it is a host prefix (/32, /128), the
// device, the scope, the label, an IPv6 address's preferred lifetime, and
// " set" while the address is installed (the instance is MASTER). A VIP
// given with keepalived options after the address ("192.168.1.100/24 dev
// eth1 label eth1:1") keeps its device, scope, label and lifetime.
func vipText(vip, defDev string, set bool) string {
	f := strings.Fields(vip)
	if len(f) == 0 {
		return ""
	}
	addr := f[0]
	if a, p, ok := strings.Cut(addr, "/"); ok {
		if (strings.Contains(a, ":") && p == "128") || (!strings.Contains(a, ":") && p == "32") {
			addr = a
		}
	}
	dev, label, scope, lft := defDev, "", "global", "forever"
	for i := 1; i+1 < len(f); i++ {
		switch f[i] {
		case "dev":
			dev = f[i+1]
		case "label":
			label = f[i+1]
		case "scope":
			scope = f[i+1]
		case "preferred_lft":
			lft = f[i+1]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s dev %s scope %s", addr, dev, scope)
	if label != "" {
		fmt.Fprintf(&b, " label %s", label)
	}
	if strings.Contains(addr, ":") {
		// IPv6 addresses carry their preferred lifetime; keepalived's
		// default is infinite, and 0 marks the address deprecated.
		if lft == "0" {
			b.WriteString(" deprecated")
		} else {
			fmt.Fprintf(&b, " preferred_lft %s", lft)
		}
	}
	if set {
		b.WriteString(" set")
	}
	return b.String()
}

func vipSet(in status.Instance) bool { return strings.EqualFold(in.State, "MASTER") }

// WriteData writes keepalived.data: the VRRP part of keepalived's SIGUSR1
// dump (dump_data_vrrp), times in the local time zone.
func WriteData(w io.Writer, s status.Snapshot) error { return writeData(w, s, time.Local) }

func writeData(w io.Writer, s status.Snapshot, loc *time.Location) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format+"\n", args...) }

	p("------< Global definitions >------")
	if s.Daemon.RouterID != "" {
		p(" Router ID = %s", s.Daemon.RouterID)
	}
	if len(s.Instances) > 0 {
		p("------< VRRP Topology >------")
	}
	for _, in := range s.Instances {
		p(" VRRP Instance = %s", in.Name)
		p("   VRRP Version = %d", in.Version)
		if in.SyncGroup != "" {
			p("   Sync group = %s", in.SyncGroup)
		}
		if in.Family == "inet6" {
			p("   Using Native IPv6")
		}
		p("   State = %s", stateText(in.State))
		if strings.EqualFold(in.State, "BACKUP") && in.Master != "" {
			p("   Master router = %s", in.Master)
		}
		// keepalived's wantstate differs from state only for a moment
		// inside a transition; a snapshot is taken between events.
		p("   Wantstate = %s", stateText(in.State))
		if !in.Since.IsZero() {
			t := in.Since.In(loc)
			// ctime_us_r: ctime(3) with microseconds before the year.
			p("   Last transition = %d.%06d (%s)", t.Unix(), t.Nanosecond()/1000, t.Format("Mon Jan _2 15:04:05.000000 2006"))
		}
		p("   Interface = %s", in.Interface)
		p("   Virtual Router ID = %d", in.VRID)
		p("   Priority = %d", in.BasePriority)
		p("   Effective priority = %d", in.EffectivePriority)
		ai := time.Duration(in.AdvertInterval)
		if in.Version == 3 {
			p("   Advert interval = %d milli-sec", ai.Milliseconds())
		} else {
			p("   Advert interval = %d sec", int64(ai.Seconds()))
		}
		if len(in.VIPs) > 0 {
			p("   Virtual IP (%d):", len(in.VIPs))
			for _, v := range in.VIPs {
				p("     %s", vipText(v, in.Interface, vipSet(in)))
			}
		}
		var ifs, scripts []status.Tracker
		for _, tr := range in.Trackers {
			switch tr.Kind {
			case "interface":
				ifs = append(ifs, tr)
			case "script":
				scripts = append(scripts, tr)
			}
		}
		if len(ifs) > 0 {
			p("   Tracked interfaces :")
			for _, tr := range ifs {
				p("     %s weight %d", tr.Name, tr.Weight)
			}
		}
		if len(scripts) > 0 {
			p("   Tracked scripts :")
			for _, tr := range scripts {
				p("     %s weight %d", tr.Name, tr.Weight)
			}
		}
	}
	if len(s.SyncGroups) > 0 {
		p("------< VRRP Sync groups >------")
		for _, g := range s.SyncGroups {
			p(" VRRP Sync Group = %s, %s", g.Name, stateText(g.State))
			if len(g.Instances) > 0 {
				p("   VRRP member instances :")
				for _, n := range g.Instances {
					p("     %s", n)
				}
			}
		}
	}
	if scripts := trackedScripts(s); len(scripts) > 0 {
		p("------< VRRP Scripts >------")
		for _, sc := range scripts {
			p(" VRRP Script = %s", sc.name)
			p("   Status = %s", map[bool]string{true: "GOOD", false: "BAD"}[sc.ok])
			p("   Tracking instances :")
			for _, u := range sc.users {
				p("     %s, weight %d", u.instance, u.weight)
			}
			// keepalived reports whether the script is running right now;
			// vigil runs track scripts to completion between snapshots, so
			// between runs it is "idle", which is what exporters expect.
			p("   State = idle")
		}
	}
	return bw.Flush()
}

type scriptUse struct {
	instance string
	weight   int
}

type script struct {
	name  string
	ok    bool
	users []scriptUse
}

// trackedScripts gathers the track scripts of all instances, sorted by name
// (keepalived lists them in configuration order, which a snapshot does not
// keep across instances).
func trackedScripts(s status.Snapshot) []script {
	by := map[string]*script{}
	for _, in := range s.Instances {
		for _, tr := range in.Trackers {
			if tr.Kind != "script" {
				continue
			}
			sc := by[tr.Name]
			if sc == nil {
				sc = &script{name: tr.Name, ok: tr.OK}
				by[tr.Name] = sc
			}
			sc.users = append(sc.users, scriptUse{in.Name, tr.Weight})
		}
	}
	out := make([]script, 0, len(by))
	for _, sc := range by {
		out = append(out, *sc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// WriteStats writes keepalived.stats, keepalived's SIGUSR2 dump
// (vrrp_print_stats).
func WriteStats(w io.Writer, s status.Snapshot) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format+"\n", args...) }
	for _, in := range s.Instances {
		c := in.Counters
		p("VRRP Instance: %s", in.Name)
		p("  Advertisements:")
		p("    Received: %d", c.AdvertsReceived)
		p("    Sent: %d", c.AdvertsSent)
		p("  Became master: %d", c.BecameMaster)
		p("  Released master: %d", releasedMaster(in))
		p("  Packet Errors:")
		p("    Length: %d", StatPacketLength.Of(c))
		p("    TTL: %d", StatTTL.Of(c))
		p("    Invalid Type: %d", StatInvalidType.Of(c))
		p("    Advertisement Interval: %d", StatAdvertInterval.Of(c))
		p("    Address List: %d", StatAddressList.Of(c))
		p("  Authentication Errors:")
		p("    Invalid Type: %d", StatInvalidAuthType.Of(c))
		p("    Type Mismatch: %d", StatAuthTypeMismatch.Of(c))
		p("    Failure: %d", StatAuthFailure.Of(c))
		p("  Priority Zero:")
		p("    Received: %d", c.PriorityZeroRx)
		p("    Sent: %d", c.PriorityZeroTx)
	}
	return bw.Flush()
}

// JSONInstance is one element of keepalived.json, in keepalived 2.2.7's
// field order (vrrp_json.c). Exporters decode it into structs of their own
// with the same keys.
type JSONInstance struct {
	Data  JSONData  `json:"data"`
	Stats JSONStats `json:"stats"`
}

// JSONData is the "data" object, limited to what a snapshot knows.
type JSONData struct {
	IName             string   `json:"iname"`
	IfpIfname         string   `json:"ifp_ifname"`
	LastTransition    Fixed6   `json:"last_transition"` // Unix time, "%f"
	VRID              int      `json:"vrid"`
	BasePriority      int      `json:"base_priority"`
	EffectivePriority int      `json:"effective_priority"`
	VIPSet            bool     `json:"vipset"`
	AdvertInt         G        `json:"adver_int"` // seconds, "%g"
	State             int      `json:"state"`
	WantState         int      `json:"wantstate"`
	Version           int      `json:"version"`
	VIPs              []string `json:"vips,omitempty"`
	TrackIfp          []string `json:"track_ifp,omitempty"`
}

// JSONStats is the "stats" object: every counter keepalived has.
type JSONStats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthType   uint64 `json:"invalid_authtype"`
	AuthTypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
}

// Fixed6 is a number written with six decimals, as C's "%f".
type Fixed6 float64

// MarshalJSON writes the number as printf("%f").
func (f Fixed6) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(f), 'f', 6, 64)), nil
}

// G is a number written as C's "%g" (six significant digits; whole numbers
// without a decimal point, which integer-typed exporter fields need).
type G float64

// MarshalJSON writes the number as printf("%g").
func (g G) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(g), 'g', 6, 64)), nil
}

// JSON returns the keepalived.json content for a snapshot.
func JSON(s status.Snapshot) []JSONInstance {
	out := make([]JSONInstance, 0, len(s.Instances))
	for _, in := range s.Instances {
		c := in.Counters
		d := JSONData{
			IName:             in.Name,
			IfpIfname:         in.Interface,
			VRID:              in.VRID,
			BasePriority:      in.BasePriority,
			EffectivePriority: in.EffectivePriority,
			VIPSet:            vipSet(in),
			AdvertInt:         G(time.Duration(in.AdvertInterval).Seconds()),
			State:             StateNumber(in.State),
			WantState:         StateNumber(in.State),
			Version:           in.Version,
		}
		if !in.Since.IsZero() {
			d.LastTransition = Fixed6(float64(in.Since.UnixMicro()) / 1e6)
		}
		for _, v := range in.VIPs {
			d.VIPs = append(d.VIPs, vipText(v, in.Interface, d.VIPSet))
		}
		for _, tr := range in.Trackers {
			if tr.Kind == "interface" {
				d.TrackIfp = append(d.TrackIfp, tr.Name)
			}
		}
		out = append(out, JSONInstance{Data: d, Stats: JSONStats{
			AdvertRcvd:        c.AdvertsReceived,
			AdvertSent:        c.AdvertsSent,
			BecomeMaster:      c.BecameMaster,
			ReleaseMaster:     releasedMaster(in),
			PacketLenErr:      StatPacketLength.Of(c),
			AdvertIntervalErr: StatAdvertInterval.Of(c),
			IPTTLErr:          StatTTL.Of(c),
			InvalidTypeRcvd:   StatInvalidType.Of(c),
			AddrListErr:       StatAddressList.Of(c),
			InvalidAuthType:   StatInvalidAuthType.Of(c),
			AuthTypeMismatch:  StatAuthTypeMismatch.Of(c),
			AuthFailure:       StatAuthFailure.Of(c),
			PriZeroRcvd:       c.PriorityZeroRx,
			PriZeroSent:       c.PriorityZeroTx,
		}})
	}
	return out
}

// WriteJSON writes keepalived.json: one compact line, as keepalived's
// json_writer (pretty printing off) followed by a newline.
func WriteJSON(w io.Writer, s status.Snapshot) error {
	b, err := json.Marshal(JSON(s))
	if err != nil {
		return fmt.Errorf("dump: json: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
