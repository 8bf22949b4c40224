package config

import (
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/inet"
)

// The model below is the normalised form of a keepalived.conf: every value
// is typed, every default keepalived 2.2.7 would apply is applied and
// written down in the field's comment, inheritance (virtual server -> real
// server -> checker) is resolved, and every node keeps the position it was
// read from. The values are plain (slices of structs, a few pointers to
// optional sub-structs that belong to their parent alone), so two models can
// be compared with Equal, which ignores positions.

// Config is a whole keepalived.conf with its includes.
type Config struct {
	// ConfigID is the id "@ID" conditional lines were matched against.
	ConfigID string `json:"config_id,omitempty"`
	// Files lists every file read, the main file first.
	Files []string `json:"files"`

	Global Global `json:"global"`

	// Static addresses, routes and rules, and track groups: parsed, not
	// managed by vigil (see Unsupported).
	TrackGroups     []TrackGroup `json:"track_groups,omitempty"`
	StaticAddresses []Address    `json:"static_ipaddress,omitempty"`
	StaticRoutes    []Route      `json:"static_routes,omitempty"`
	StaticRules     []Rule       `json:"static_rules,omitempty"`

	LinkbeatInterfaces []LinkbeatInterface `json:"linkbeat_interfaces,omitempty"`
	InterfaceDelays    []InterfaceDelay    `json:"interface_up_down_delays,omitempty"`
	GARPGroups         []GARPGroup         `json:"garp_groups,omitempty"`
	BFDInstances       []BFDInstance       `json:"bfd_instances,omitempty"`

	Scripts        []VRRPScript   `json:"vrrp_scripts,omitempty"`
	TrackFiles     []TrackFile    `json:"track_files,omitempty"`
	TrackProcesses []TrackProcess `json:"track_processes,omitempty"`
	SyncGroups     []SyncGroup    `json:"sync_groups,omitempty"`
	Instances      []VRRPInstance `json:"vrrp_instances,omitempty"`

	SSL            *SSL                 `json:"ssl,omitempty"`
	VSGroups       []VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	VirtualServers []VirtualServer      `json:"virtual_servers,omitempty"`

	// BGP is vigil's bgp extension block; nil when absent.
	BGP *BGP `json:"bgp,omitempty"`
	// ConntrackSync is vigil's conntrack_sync block (nil: none).
	ConntrackSync *ConntrackSync `json:"conntrack_sync,omitempty"`
}

// Instance returns the VRRP instance with the given name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}

// Script returns the vrrp_script with the given name, or nil.
func (c *Config) Script(name string) *VRRPScript {
	for i := range c.Scripts {
		if c.Scripts[i].Name == name {
			return &c.Scripts[i]
		}
	}
	return nil
}

// Command is a program to run: a notify script, a vrrp_script, a
// MISC_CHECK. Args[0] is the program; quoting and escapes are resolved
// as keepalived does (shell-like, with single and double quotes).
type Command struct {
	Pos  diag.Pos `json:"pos"`
	Args []string `json:"args"`
	// User and Group run the program; empty means global_defs script_user
	// (and keepalived's default, keepalived_script or root).
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

// IsSet reports whether a command was configured.
func (c Command) IsSet() bool { return len(c.Args) > 0 }

// FIFO is a notify FIFO with an optional script that reads it.
type FIFO struct {
	Pos   diag.Pos `json:"pos"`
	Path  string   `json:"path"`
	User  string   `json:"user,omitempty"`
	Group string   `json:"group,omitempty"`
	// Script, when set, is run with the FIFO path as last argument.
	Script Command `json:"script,omitzero"`
}

// Family is an address family (internal/inet); JSON spells it as the
// configuration does, "inet" or "inet6". The zero Family is unset.
type Family = inet.Family

// The families as ip_family names them.
const (
	Inet  = inet.IPv4
	Inet6 = inet.IPv6
)

// Global is the global_defs block and the root-level process keywords.
type Global struct {
	Pos diag.Pos `json:"pos"`

	// RouterID identifies the machine in notifications. Default: the
	// config id (the short host name), as keepalived uses the host name.
	RouterID string `json:"router_id"`

	NotificationEmail     []string `json:"notification_email,omitempty"`
	NotificationEmailFrom string   `json:"notification_email_from,omitempty"`
	// SMTPServer is an address or a host name; SMTPPort defaults to 25.
	SMTPServer         string        `json:"smtp_server,omitempty"`
	SMTPPort           uint16        `json:"smtp_port,omitempty"`
	SMTPHeloName       string        `json:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout time.Duration `json:"smtp_connect_timeout"` // default 30s
	// SMTPAlert, SMTPAlertVRRP and SMTPAlertChecker are the defaults of
	// the smtp_alert of instances, groups, virtual and real servers.
	SMTPAlert             OptBool `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP         OptBool `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker      OptBool `json:"smtp_alert_checker,omitempty"`
	NoEmailFaults         bool    `json:"no_email_faults,omitempty"`
	CheckerLogAllFailures bool    `json:"checker_log_all_failures,omitempty"`

	EnableScriptSecurity bool   `json:"enable_script_security,omitempty"`
	ScriptUser           string `json:"script_user,omitempty"`
	ScriptGroup          string `json:"script_group,omitempty"`

	NotifyFIFO               FIFO `json:"notify_fifo,omitzero"`
	VRRPNotifyFIFO           FIFO `json:"vrrp_notify_fifo,omitzero"`
	LVSNotifyFIFO            FIFO `json:"lvs_notify_fifo,omitzero"`
	VRRPNotifyPriorityChange bool `json:"vrrp_notify_priority_changes,omitempty"`
	FIFOWriteStatesOnReload  bool `json:"fifo_write_vrrp_states_on_reload,omitempty"`

	// VRRPMcastGroup4 default 224.0.0.18, VRRPMcastGroup6 default ff02::12
	// (RFC 5798 §5.1.1.2, §5.1.2.2).
	VRRPMcastGroup4 netip.Addr `json:"vrrp_mcast_group4"`
	VRRPMcastGroup6 netip.Addr `json:"vrrp_mcast_group6"`

	// Gratuitous ARP / unsolicited NA defaults for every instance:
	// delay 5s, repeat 5, refresh 0 (off), refresh repeat 1, lower
	// priority delay and repeat default to the master ones, intervals 0.
	VRRPGARPMasterDelay         time.Duration `json:"vrrp_garp_master_delay"`
	VRRPGARPMasterRepeat        int           `json:"vrrp_garp_master_repeat"`
	VRRPGARPMasterRefresh       time.Duration `json:"vrrp_garp_master_refresh"`
	VRRPGARPMasterRefreshRepeat int           `json:"vrrp_garp_master_refresh_repeat"`
	VRRPGARPLowerPrioDelay      time.Duration `json:"vrrp_garp_lower_prio_delay"`
	VRRPGARPLowerPrioRepeat     int           `json:"vrrp_garp_lower_prio_repeat"`
	VRRPGARPInterval            time.Duration `json:"vrrp_garp_interval"`
	VRRPGNAInterval             time.Duration `json:"vrrp_gna_interval"`
	// VRRPMinGARP sends one GARP/NA and no second burst (repeat 1, delay 0).
	VRRPMinGARP bool `json:"vrrp_min_garp,omitempty"`
	// VRRPGARPExtraIf is the periodic GARP interval on extra interfaces
	// (0 = off); VRRPGARPExtraIfAll sends on every interface.
	VRRPGARPExtraIf    time.Duration `json:"vrrp_garp_extra_if,omitempty"`
	VRRPGARPExtraIfAll bool          `json:"vrrp_garp_extra_if_all,omitempty"`

	VRRPDownTimerAdverts     int  `json:"vrrp_down_timer_adverts"` // default 3
	VRRPLowerPrioNoAdvert    bool `json:"vrrp_lower_prio_no_advert,omitempty"`
	VRRPHigherPrioSendAdvert bool `json:"vrrp_higher_prio_send_advert,omitempty"`
	VRRPVersion              int  `json:"vrrp_version"` // default 2
	VRRPStrict               bool `json:"vrrp_strict,omitempty"`
	VRRPCheckUnicastSrc      bool `json:"vrrp_check_unicast_src,omitempty"`
	VRRPSkipCheckAdvAddr     bool `json:"vrrp_skip_check_adv_addr,omitempty"`
	// VRRPStartupDelay delays the start of every instance.
	VRRPStartupDelay time.Duration `json:"vrrp_startup_delay,omitempty"`
	LogUnknownVRIDs  bool          `json:"log_unknown_vrids,omitempty"`

	// DefaultInterface is used for static addresses without dev; default
	// "eth0".
	DefaultInterface  string `json:"default_interface"`
	DynamicInterfaces bool   `json:"dynamic_interfaces,omitempty"`
	AllowIfChanges    bool   `json:"allow_if_changes,omitempty"`
	DisableLocalIGMP  bool   `json:"disable_local_igmp,omitempty"`

	// VMACPrefix names generated VMAC interfaces; default "vrrp".
	VMACPrefix     string `json:"vmac_prefix"`
	VMACAddrPrefix string `json:"vmac_addr_prefix,omitempty"`

	// NFTables is the nftables table vigil uses for no_accept/VMAC rules
	// (keepalived's "nftables [TABLE]"; default table "keepalived" when
	// the keyword has no name).
	NFTables         string `json:"nftables,omitempty"`
	NFTablesPriority int    `json:"nftables_priority,omitempty"`
	NFTablesCounters bool   `json:"nftables_counters,omitempty"`
	NFTablesIfindex  bool   `json:"nftables_ifindex,omitempty"`

	LVSSyncDaemon *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty"`
	LVSTimeouts   LVSTimeouts    `json:"lvs_timeouts,omitzero"`
	LVSFlush      bool           `json:"lvs_flush,omitempty"`
	// LVSBackend is vigil's lvs_backend: "auto" (default; IPVS when the
	// kernel has it, else nftables), "nftables" or "ipvs".
	LVSBackend string `json:"lvs_backend,omitempty"`
	// LVSFlushOnStop is "", "ALL" (lvs_flush_on_stop) or "VS".
	LVSFlushOnStop string `json:"lvs_flush_on_stop,omitempty"`

	// IncludeCheck is the include_check setting at the end of global_defs.
	IncludeCheck []string `json:"include_check,omitempty"`
	// RandomSeed is random_seed (vigil seeds ${_RANDOM} from Options).
	RandomSeed uint64 `json:"random_seed,omitempty"`
	// RSInitNotifies and NoCheckerEmails are the checker notification
	// switches.
	RSInitNotifies  bool `json:"rs_init_notifies,omitempty"`
	NoCheckerEmails bool `json:"no_checker_emails,omitempty"`

	// MaxAutoPriority is max_auto_priority with keepalived 2.2.7's
	// meaning (lib/process.c, lib/scheduler.c): when a process finds a
	// timer more than MinAutoPriorityDelay overdue it switches itself to
	// SCHED_RR realtime scheduling, raising the realtime priority one
	// step at each such finding, never above MaxAutoPriority. 0 (the
	// default, and -1 "disable") never raises it; the keyword without a
	// value is the highest SCHED_RR priority, 99. The realtime
	// scheduling itself (shared with vrrp_rt_priority and
	// checker_rt_priority) is applied by the daemon, which reads this
	// field: see AutoPriority.
	MaxAutoPriority int `json:"max_auto_priority,omitempty"`
	// MinAutoPriorityDelay is min_auto_priority_delay (keepalived: given
	// in microseconds); 0 stands for keepalived's default, 1s.
	MinAutoPriorityDelay time.Duration `json:"min_auto_priority_delay,omitempty"`
	// Scheduling of the VRRP and checker processes (keepalived runs one
	// process each; vigil is one process: see internal/sched for how the
	// two sets combine). RT priorities are SCHED_RR 1..99 (0: not set),
	// Nice levels -20..19, NoSwap locks memory (mlockall).
	VRRPRTPriority    int  `json:"vrrp_rt_priority,omitempty"`
	CheckerRTPriority int  `json:"checker_rt_priority,omitempty"`
	VRRPNice          int  `json:"vrrp_priority,omitempty"`
	CheckerNice       int  `json:"checker_priority,omitempty"`
	VRRPNoSwap        bool `json:"vrrp_no_swap,omitempty"`
	CheckerNoSwap     bool `json:"checker_no_swap,omitempty"`

	// Other holds the keywords vigil reads but does not act on (process
	// tuning, SNMP, D-Bus...); each was reported as unsupported.
	Other []Setting `json:"other,omitempty"`
}

// Setting is a keyword vigil does not model, kept verbatim.
type Setting struct {
	Pos     diag.Pos `json:"pos"`
	Keyword string   `json:"keyword"`
	Args    []string `json:"args,omitempty"`
}

// OptBool is a tri-state: unset, true or false.
type OptBool string

const (
	Unset OptBool = ""
	True  OptBool = "true"
	False OptBool = "false"
)

// Or returns the value, or def when unset.
func (b OptBool) Or(def bool) bool {
	switch b {
	case True:
		return true
	case False:
		return false
	}
	return def
}

// LVSSyncDaemon is global_defs lvs_sync_daemon (or the deprecated
// vrrp_instance lvs_sync_daemon_interface).
type LVSSyncDaemon struct {
	Pos       diag.Pos   `json:"pos"`
	Interface string     `json:"interface"`
	Instance  string     `json:"instance,omitempty"`
	SyncID    int        `json:"sync_id"` // default: the instance's VRID, else 0
	MaxLen    int        `json:"maxlen,omitempty"`
	Port      int        `json:"port,omitempty"`
	TTL       int        `json:"ttl,omitempty"`
	Group     netip.Addr `json:"group,omitzero"`
}

// LVSTimeouts is global_defs lvs_timeouts; zero leaves a timeout as it is.
type LVSTimeouts struct {
	TCP    time.Duration `json:"tcp,omitempty"`
	TCPFin time.Duration `json:"tcpfin,omitempty"`
	UDP    time.Duration `json:"udp,omitempty"`
}

// TrackGroup is a track_group block (static addresses/routes/rules).
type TrackGroup struct {
	Pos       diag.Pos `json:"pos"`
	Name      string   `json:"name"`
	Instances []string `json:"group"`
}

// LinkbeatInterface is one line of linkbeat_interfaces.
type LinkbeatInterface struct {
	Pos  diag.Pos `json:"pos"`
	Name string   `json:"name"`
	Type string   `json:"type,omitempty"` // MII, ETHTOOL or IOCTL
}

// InterfaceDelay is one line of interface_up_down_delays.
type InterfaceDelay struct {
	Pos       diag.Pos      `json:"pos"`
	Interface string        `json:"interface"`
	Down      time.Duration `json:"down_delay"`
	Up        time.Duration `json:"up_delay"` // default: 0, as keepalived 2.2.7 does
}

// GARPGroup is a garp_group block.
type GARPGroup struct {
	Pos          diag.Pos      `json:"pos"`
	GARPInterval time.Duration `json:"garp_interval,omitempty"`
	GNAInterval  time.Duration `json:"gna_interval,omitempty"`
	Interfaces   []string      `json:"interfaces"`
}

// BFDInstance is a bfd_instance block (not supported by vigil; kept so
// references can be checked).
type BFDInstance struct {
	Pos      diag.Pos  `json:"pos"`
	Name     string    `json:"name"`
	Settings []Setting `json:"settings,omitempty"`
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Pos    diag.Pos `json:"pos"`
	Name   string   `json:"name"`
	Script Command  `json:"script"`
	// Interval between runs; default 1s (integer seconds).
	Interval time.Duration `json:"interval"`
	// Timeout of one run; default 0 = the interval (keepalived 2.2.7
	// kills a script still running when the next run is due).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Weight in [-253, 253]; default 0 (failure means FAULT).
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`
	Rise    int  `json:"rise"` // default 1
	Fall    int  `json:"fall"` // default 1
	// InitFail starts the script in the failed state.
	InitFail bool `json:"init_fail,omitempty"`
}

// TrackFile is a track_file (or deprecated vrrp_track_file) block.
type TrackFile struct {
	Pos  diag.Pos `json:"pos"`
	Name string   `json:"name"`
	File string   `json:"file"`
	// Weight multiplies the value read; default 1. 0 makes any non-zero
	// value a failure.
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`
	// Init, when set, creates the file with InitValue at start
	// (overwriting it when InitOverwrite).
	Init          bool `json:"init_file,omitempty"`
	InitValue     int  `json:"init_value,omitempty"`
	InitOverwrite bool `json:"init_overwrite,omitempty"`
}

// TrackProcess is a vrrp_track_process block.
type TrackProcess struct {
	Pos  diag.Pos `json:"pos"`
	Name string   `json:"name"`
	// Process is the program name (or path) and Params its parameters.
	Process string   `json:"process"`
	Params  []string `json:"params,omitempty"`
	// ParamMatch is "" (no parameters given), "exact", "initial" or
	// "partial".
	ParamMatch string `json:"param_match,omitempty"`
	// FullCommand matches /proc/PID/cmdline rather than the name; set
	// by parameters or param_match too.
	FullCommand bool `json:"full_command,omitempty"`
	Weight      int  `json:"weight"`
	Reverse     bool `json:"reverse,omitempty"`
	// Quorum default 1; QuorumMax default unlimited (-1).
	Quorum         int           `json:"quorum"`
	QuorumMax      int           `json:"quorum_max"`
	ForkDelay      time.Duration `json:"fork_delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty"`
}

// Tracked is one entry of a track_interface, track_script, track_file,
// track_process or track_bfd block: a name and a weight.
type Tracked struct {
	Pos  diag.Pos `json:"pos"`
	Name string   `json:"name"`
	// Weight is the effective weight: the one on the line, else the
	// tracked object's own weight (track_script, track_file,
	// track_process), else 0.
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`
	// WeightSet reports whether the line gave a weight.
	WeightSet bool `json:"weight_set,omitempty"`
	// ReverseSet reports whether the line said reverse or noreverse; if
	// not, Reverse is the tracked object's own (keepalived 2.2.7).
	ReverseSet bool `json:"-"`
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Pos       diag.Pos `json:"pos"`
	Name      string   `json:"name"`
	Instances []string `json:"group"`

	TrackInterfaces []Tracked `json:"track_interface,omitempty"`
	TrackScripts    []Tracked `json:"track_script,omitempty"`
	TrackFiles      []Tracked `json:"track_file,omitempty"`
	TrackProcesses  []Tracked `json:"track_process,omitempty"`
	TrackBFDs       []Tracked `json:"track_bfd,omitempty"`

	NotifyMaster          Command `json:"notify_master,omitzero"`
	NotifyBackup          Command `json:"notify_backup,omitzero"`
	NotifyFault           Command `json:"notify_fault,omitzero"`
	NotifyStop            Command `json:"notify_stop,omitzero"`
	Notify                Command `json:"notify,omitzero"`
	NotifyPriorityChanges OptBool `json:"notify_priority_changes,omitempty"`
	SMTPAlert             bool    `json:"smtp_alert,omitempty"`
	// TrackingWeight lets member instances keep weighted trackers
	// (sync_group_tracking_weight, or the deprecated global_tracking).
	TrackingWeight bool `json:"sync_group_tracking_weight,omitempty"`
}

// State is a VRRP initial state.
type State string

const (
	Master State = "MASTER"
	Backup State = "BACKUP"
)

// AuthType is a VRRPv2 authentication type (RFC 2338 §5.3.6).
type AuthType string

const (
	AuthNone AuthType = ""
	AuthPass AuthType = "PASS"
	AuthAH   AuthType = "AH"
)

// Auth is the authentication block.
type Auth struct {
	Pos  diag.Pos `json:"pos"`
	Type AuthType `json:"auth_type,omitempty"`
	// Pass is at most 8 bytes: keepalived truncates longer passwords
	// (and vigil warns).
	Pass string `json:"auth_pass,omitempty"`
}

// UnicastPeer is one line of unicast_peer.
type UnicastPeer struct {
	Pos  diag.Pos   `json:"pos"`
	Addr netip.Addr `json:"addr"`
	// MinTTL and MaxTTL bound the TTL/hop limit of received adverts;
	// defaults 0 and 255. Setting either turns on CheckUnicastSrc.
	MinTTL int `json:"min_ttl"`
	MaxTTL int `json:"max_ttl"`
}

// BroadcastAddr is the IPv4 broadcast address the kernel is given: the
// address after "brd", or for "brd +" the prefix with its host bits set and
// for "brd -" with them cleared (ip-address(8), as keepalived 2.2.7
// vrrp_ipaddress.c applies them); zero for none.
func (a Address) BroadcastAddr() netip.Addr {
	switch a.BroadcastMode {
	case "addr":
		return a.Broadcast
	case "+":
		return lastAddr(a.Prefix)
	case "-":
		return a.Prefix.Masked().Addr()
	}
	return netip.Addr{}
}

// Address is a virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress line ("ip address add" options).
type Address struct {
	Pos diag.Pos `json:"pos"`
	// Prefix is the address with its prefix length; default /32 or
	// /128.
	Prefix    netip.Prefix `json:"prefix"`
	Broadcast netip.Addr   `json:"brd,omitzero"`
	// BroadcastMode is "" (none), "addr" (Broadcast), "+" or "-".
	BroadcastMode string     `json:"brd_mode,omitempty"`
	Dev           string     `json:"dev,omitempty"` // default: the instance's interface
	Scope         string     `json:"scope,omitempty"`
	Label         string     `json:"label,omitempty"`
	Peer          netip.Addr `json:"peer,omitzero"`
	Home          bool       `json:"home,omitempty"`
	NoDAD         bool       `json:"nodad,omitempty"`
	MngTmpAddr    bool       `json:"mngtmpaddr,omitempty"`
	NoPrefixRoute bool       `json:"noprefixroute,omitempty"`
	AutoJoin      bool       `json:"autojoin,omitempty"`
	NoTrack       bool       `json:"no_track,omitempty"`
	UseVMAC       bool       `json:"use_vmac,omitempty"`
	// PreferredLft is -1 for "forever"; set only when given (IPv6
	// default: 0 for a /128, forever otherwise).
	PreferredLft    int64  `json:"preferred_lft,omitempty"`
	PreferredLftSet bool   `json:"preferred_lft_set,omitempty"`
	TrackGroup      string `json:"track_group,omitempty"`
}

// Route is a virtual_routes / static_routes line ("ip route add" syntax).
type Route struct {
	Pos diag.Pos `json:"pos"`
	// Type is "" (unicast) or blackhole, unreachable, prohibit, throw...
	Type     string       `json:"type,omitempty"`
	Dst      netip.Prefix `json:"to"`
	Src      netip.Addr   `json:"src,omitzero"`
	From     netip.Prefix `json:"from,omitzero"`
	Via      netip.Addr   `json:"via,omitzero"`
	Or       netip.Addr   `json:"or,omitzero"`
	Dev      string       `json:"dev,omitempty"`
	Table    string       `json:"table,omitempty"`
	Metric   int64        `json:"metric,omitempty"`
	Scope    string       `json:"scope,omitempty"`
	Protocol string       `json:"protocol,omitempty"`
	OnLink   bool         `json:"onlink,omitempty"`
	NoTrack  bool         `json:"no_track,omitempty"`
	Family   Family       `json:"family"`
	// Options holds the other "ip route" options, verbatim, in order
	// (mtu, advmss, nexthop ..., realms, ...).
	Options    []string `json:"options,omitempty"`
	TrackGroup string   `json:"track_group,omitempty"`
}

// Rule is a virtual_rules / static_rules line ("ip rule add" syntax).
type Rule struct {
	Pos        diag.Pos     `json:"pos"`
	From       netip.Prefix `json:"from,omitzero"`
	To         netip.Prefix `json:"to,omitzero"`
	Table      string       `json:"table,omitempty"`
	Preference int64        `json:"preference,omitempty"`
	NoTrack    bool         `json:"no_track,omitempty"`
	Family     Family       `json:"family"`
	// Options holds the other "ip rule" options, verbatim.
	Options    []string `json:"options,omitempty"`
	TrackGroup string   `json:"track_group,omitempty"`
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	Pos  diag.Pos `json:"pos"`
	Name string   `json:"name"`

	// State is the initial state; default MASTER when priority is 255,
	// else BACKUP.
	State State `json:"state"`
	// Interface may be empty only with unicast peers.
	Interface string `json:"interface,omitempty"`
	// InterfacePos is where Interface was named (not in the JSON model:
	// the instance's Pos places it).
	InterfacePos diag.Pos `json:"-"`
	VRF          string   `json:"vrf,omitempty"`
	// VRID is virtual_router_id, 1..255 (required).
	VRID int `json:"virtual_router_id"`
	// Priority 1..255; default 255 with state MASTER, else 100
	// (keepalived 2.2.7 vrrp_complete_instance()).
	Priority int `json:"priority"`
	// AdvertInt default 1s; VRRPv2 rounds to whole seconds (1..255),
	// VRRPv3 to centiseconds (0.01..40.95).
	AdvertInt time.Duration `json:"advert_int"`
	// Version is 2 or 3: version, else global vrrp_version (2), but 3
	// for IPv6.
	Version int `json:"version"`
	// Family of the adverts: the family of the source address, peers
	// or first VIP; default inet.
	Family Family `json:"family"`

	Nopreempt    bool          `json:"nopreempt,omitempty"`
	PreemptDelay time.Duration `json:"preempt_delay,omitempty"` // 0..1000s
	// Accept is accept mode (RFC 5798 §6.1); default: true, but false
	// in strict mode unless priority is 255.
	Accept bool `json:"accept"`
	// StrictMode default: global vrrp_strict.
	StrictMode       bool `json:"strict_mode,omitempty"`
	SkipCheckAdvAddr bool `json:"skip_check_adv_addr,omitempty"`
	DontTrackPrimary bool `json:"dont_track_primary,omitempty"`

	// SourceIP is mcast_src_ip or unicast_src_ip.
	SourceIP      netip.Addr `json:"src_ip,omitzero"`
	TrackSourceIP bool       `json:"track_src_ip,omitempty"`
	// McastGroup is mcast_dst_ip, default the global group of the
	// family (unused with unicast peers).
	McastGroup   netip.Addr    `json:"mcast_dst_ip,omitzero"`
	UnicastPeers []UnicastPeer `json:"unicast_peer,omitempty"`
	// Unicast is set when unicast peers are configured.
	Unicast            bool `json:"unicast,omitempty"`
	UnicastFaultNoPeer bool `json:"unicast_fault_no_peer,omitempty"`
	CheckUnicastSrc    bool `json:"check_unicast_src,omitempty"`
	// OldUnicastChecksum is "" (automatic fallback, keepalived's default),
	// "always" (old_unicast_checksum) or "never".
	OldUnicastChecksum string `json:"old_unicast_checksum,omitempty"`
	// UnicastTTL is the TTL of sent unicast adverts; default 255 for
	// IPv4, the kernel's default (0 here) for IPv6.
	UnicastTTL int `json:"unicast_ttl,omitempty"`

	Auth Auth `json:"authentication,omitzero"`

	VirtualIPs         []Address `json:"virtual_ipaddress,omitempty"`
	ExcludedIPs        []Address `json:"virtual_ipaddress_excluded,omitempty"`
	VirtualRoutes      []Route   `json:"virtual_routes,omitempty"`
	VirtualRules       []Rule    `json:"virtual_rules,omitempty"`
	PromoteSecondaries bool      `json:"promote_secondaries,omitempty"`

	TrackInterfaces []Tracked `json:"track_interface,omitempty"`
	TrackScripts    []Tracked `json:"track_script,omitempty"`
	TrackFiles      []Tracked `json:"track_file,omitempty"`
	TrackProcesses  []Tracked `json:"track_process,omitempty"`
	TrackBFDs       []Tracked `json:"track_bfd,omitempty"`

	// VMAC: use_vmac [NAME] [MAC].
	UseVMAC      bool   `json:"use_vmac,omitempty"`
	VMACName     string `json:"vmac_name,omitempty"`
	VMACAddr     string `json:"vmac_addr,omitempty"`
	UseVMACAddr  bool   `json:"use_vmac_addr,omitempty"`
	VMACXmitBase bool   `json:"vmac_xmit_base,omitempty"`
	UseIPVLAN    bool   `json:"use_ipvlan,omitempty"`

	// Gratuitous ARP / NA; defaults are the global vrrp_garp_* values.
	GARPMasterDelay         time.Duration `json:"garp_master_delay"`
	GARPMasterRepeat        int           `json:"garp_master_repeat"`
	GARPMasterRefresh       time.Duration `json:"garp_master_refresh"`
	GARPMasterRefreshRepeat int           `json:"garp_master_refresh_repeat"`
	GARPLowerPrioDelay      time.Duration `json:"garp_lower_prio_delay"`
	GARPLowerPrioRepeat     int           `json:"garp_lower_prio_repeat"`
	GARPExtraIf             time.Duration `json:"garp_extra_if,omitempty"`
	GARPExtraIfAll          bool          `json:"garp_extra_if_all,omitempty"`
	// DownTimerAdverts default 3 (RFC 5798 §6.1: 3 * advert + skew).
	DownTimerAdverts     int  `json:"down_timer_adverts"`
	LowerPrioNoAdvert    bool `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert bool `json:"higher_prio_send_advert,omitempty"`

	NotifyMaster           Command `json:"notify_master,omitzero"`
	NotifyBackup           Command `json:"notify_backup,omitzero"`
	NotifyFault            Command `json:"notify_fault,omitzero"`
	NotifyStop             Command `json:"notify_stop,omitzero"`
	NotifyDeleted          Command `json:"notify_deleted,omitzero"`
	NotifyDeletedSet       bool    `json:"notify_deleted_set,omitempty"`
	Notify                 Command `json:"notify,omitzero"`
	NotifyMasterRxLowerPri Command `json:"notify_master_rx_lower_pri,omitzero"`
	NotifyPriorityChanges  bool    `json:"notify_priority_changes,omitempty"`
	SMTPAlert              bool    `json:"smtp_alert,omitempty"`

	Debug              int  `json:"debug,omitempty"`
	KernelRxBufSize    int  `json:"kernel_rx_buf_size,omitempty"`
	LinkbeatUsePolling bool `json:"linkbeat_use_polling,omitempty"`

	// SyncGroup is the name of the vrrp_sync_group the instance is in.
	SyncGroup string `json:"sync_group,omitempty"`
}

// Protocol is a virtual service's layer 4 protocol.
type Protocol string

const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// Method is an LVS forwarding method.
type Method string

const (
	NAT Method = "NAT"
	DR  Method = "DR"
	TUN Method = "TUN"
)

// Forwarding is lb_kind / lvs_method with the tunnel options.
type Forwarding struct {
	Method Method `json:"method"`
	// TunnelType is ipip (default), gue or gre; TunnelPort is needed by
	// gue; TunnelCsum is nocsum (default), csum or remcsum.
	TunnelType string `json:"tunnel_type,omitempty"`
	TunnelPort uint16 `json:"tunnel_port,omitempty"`
	TunnelCsum string `json:"tunnel_csum,omitempty"`
}

// Scheduler is an LVS scheduler name: rr, wrr, lc, wlc, lblc, sh, mh, dh,
// fo, ovf, lblcr, sed, nq, twos.
type Scheduler string

// VSGroupEntry is one line of a virtual_server_group: an address range
// with a port, or a firewall mark.
type VSGroupEntry struct {
	Pos diag.Pos `json:"pos"`
	// First and Last bound an address range (equal for one address).
	First netip.Addr `json:"first,omitzero"`
	Last  netip.Addr `json:"last,omitzero"`
	Port  uint16     `json:"port,omitempty"`
	// FWMark, when not zero, makes the entry a firewall mark with an
	// optional family.
	FWMark uint32 `json:"fwmark,omitempty"`
	Family Family `json:"family,omitempty"`
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     diag.Pos       `json:"pos"`
	Name    string         `json:"name"`
	Entries []VSGroupEntry `json:"entries"`
}

// VirtualServer is a virtual_server block: "IP [PORT]", "fwmark N" or
// "group NAME".
type VirtualServer struct {
	Pos diag.Pos `json:"pos"`

	Addr   netip.Addr `json:"addr,omitzero"`
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty"`
	// Family: of the address, of a group's addresses, ip_family, or of
	// the real servers; default inet.
	Family Family `json:"family"`
	// Protocol is required for address virtual servers (keepalived
	// would default to UDP); empty for fwmark services.
	Protocol Protocol `json:"protocol,omitempty"`

	// Scheduler default wlc. SchedFlags: flag-1..3, sh-port, sh-fallback,
	// mh-port, mh-fallback.
	Scheduler  Scheduler  `json:"lb_algo"`
	SchedFlags []string   `json:"sched_flags,omitempty"`
	OPS        bool       `json:"ops,omitempty"`
	Forwarding Forwarding `json:"lb_kind"` // default NAT

	PersistenceEngine string `json:"persistence_engine,omitempty"`
	// PersistenceTimeout 0 = not persistent; "persistence_timeout" alone
	// is 360s.
	PersistenceTimeout time.Duration `json:"persistence_timeout,omitempty"`
	// PersistenceGranularity is a netmask (IPv4) or prefix length (IPv6).
	PersistenceGranularity string `json:"persistence_granularity,omitempty"`

	HASuspend   bool   `json:"ha_suspend,omitempty"`
	Alpha       bool   `json:"alpha,omitempty"`
	Omega       bool   `json:"omega,omitempty"`
	Virtualhost string `json:"virtualhost,omitempty"`
	SNMPName    string `json:"snmp_name,omitempty"`
	SMTPAlert   bool   `json:"smtp_alert,omitempty"`

	// Quorum default 1 (reduced to the total weight when larger);
	// Hysteresis default 0.
	Quorum     int     `json:"quorum"`
	Hysteresis int     `json:"hysteresis,omitempty"`
	QuorumUp   Command `json:"quorum_up,omitzero"`
	QuorumDown Command `json:"quorum_down,omitzero"`

	// Defaults for the real servers and their checkers: delay_loop 60s,
	// connect_timeout 5s. retry, delay_before_retry and warmup given here
	// are applied to the checkers (see Checker).
	DelayLoop        time.Duration `json:"delay_loop"`
	ConnectTimeout   time.Duration `json:"connect_timeout"`
	InhibitOnFailure bool          `json:"inhibit_on_failure,omitempty"`
	// Weight is the default real server weight; default 1.
	Weight int `json:"weight"`

	SorryServer *SorryServer `json:"sorry_server,omitempty"`
	RealServers []RealServer `json:"real_servers"`
}

// Installed reports whether keepalived installs the virtual server: it
// ignores one without real servers (check_data.c validate_check_config;
// the configuration says so where the virtual server is declared).
func (vs *VirtualServer) Installed() bool { return len(vs.RealServers) > 0 }

// SorryServer is the server used when the quorum is lost.
type SorryServer struct {
	Pos        diag.Pos   `json:"pos"`
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port,omitempty"`
	Inhibit    bool       `json:"inhibit,omitempty"`
	Forwarding Forwarding `json:"lvs_method"`
}

// RealServer is a real_server block.
type RealServer struct {
	Pos  diag.Pos   `json:"pos"`
	Addr netip.Addr `json:"addr"`
	// Port: the virtual server's port when omitted (and, except for
	// NAT, forced to it); 0 for fwmark services.
	Port uint16 `json:"port,omitempty"`
	// Weight default: the virtual server's weight (1).
	Weight     int        `json:"weight"`
	Forwarding Forwarding `json:"lvs_method"`
	UThreshold int        `json:"uthreshold,omitempty"`
	LThreshold int        `json:"lthreshold,omitempty"`
	// InhibitOnFailure and Alpha default to the virtual server's.
	InhibitOnFailure bool    `json:"inhibit_on_failure,omitempty"`
	Alpha            bool    `json:"alpha,omitempty"`
	NotifyUp         Command `json:"notify_up,omitzero"`
	NotifyDown       Command `json:"notify_down,omitzero"`
	// SMTPAlert default true (keepalived's backward-compatible default)
	// unless global smtp_alert(_checker) says otherwise.
	SMTPAlert   bool   `json:"smtp_alert"`
	Virtualhost string `json:"virtualhost,omitempty"`
	SNMPName    string `json:"snmp_name,omitempty"`

	Checkers []Checker `json:"checkers,omitempty"`
}

// CheckerType names a health checker block.
type CheckerType string

const (
	TCPCheck  CheckerType = "TCP_CHECK"
	HTTPGet   CheckerType = "HTTP_GET"
	SSLGet    CheckerType = "SSL_GET"
	MiscCheck CheckerType = "MISC_CHECK"
	SMTPCheck CheckerType = "SMTP_CHECK"
	DNSCheck  CheckerType = "DNS_CHECK"
	UDPCheck  CheckerType = "UDP_CHECK"
	PingCheck CheckerType = "PING_CHECK"
	FileCheck CheckerType = "FILE_CHECK"
	BFDCheck  CheckerType = "BFD_CHECK"
)

// Checker is a health checker of a real server. The effective values
// follow keepalived 2.2.7 validate_check_config(): each is the checker's
// own, else the real server's, else the virtual server's, else the
// checker type's default.
type Checker struct {
	Pos  diag.Pos    `json:"pos"`
	Type CheckerType `json:"type"`

	// Connection (not MISC_CHECK, FILE_CHECK, BFD_CHECK): an invalid
	// ConnectIP and a zero ConnectPort mean the real server's address and
	// port.
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitzero"`
	BindPort    uint16     `json:"bind_port,omitempty"`
	BindIf      string     `json:"bind_if,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"`
	// ConnectTimeout default 5s (from the virtual server).
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`

	// Retry: additional attempts before a failure counts; default 1,
	// 3 for DNS_CHECK, 0 for MISC_CHECK.
	Retry int `json:"retry"`
	// DelayBeforeRetry default 1s, 3s for HTTP_GET/SSL_GET, DelayLoop
	// for DNS_CHECK.
	DelayBeforeRetry time.Duration `json:"delay_before_retry"`
	// DelayLoop default 60s.
	DelayLoop time.Duration `json:"delay_loop"`
	// Warmup is the maximum random delay before the first check;
	// default DelayLoop.
	Warmup         time.Duration `json:"warmup"`
	Alpha          bool          `json:"alpha,omitempty"`
	LogAllFailures bool          `json:"log_all_failures,omitempty"`

	HTTP *HTTPCheck `json:"http,omitempty"` // HTTP_GET and SSL_GET
	SMTP *SMTPParam `json:"smtp,omitempty"`
	DNS  *DNSParam  `json:"dns,omitempty"`
	UDP  *UDPParam  `json:"udp,omitempty"`
	Misc *MiscParam `json:"misc,omitempty"`
	File *FileParam `json:"file,omitempty"`
	// BFDName is BFD_CHECK's name.
	BFDName string `json:"bfd_name,omitempty"`
}

// HTTPCheck is the HTTP_GET / SSL_GET part of a checker.
type HTTPCheck struct {
	// Protocol is 1.0, 1.0C or 1.1 (default 1.0).
	Protocol     string `json:"http_protocol"`
	Virtualhost  string `json:"virtualhost,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	FastRecovery bool   `json:"fast_recovery,omitempty"`
	URLs         []URL  `json:"urls"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// URL is a url block of an HTTP_GET / SSL_GET.
type URL struct {
	Pos  diag.Pos `json:"pos"`
	Path string   `json:"path"`
	// Digest is the lower-case hex MD5 of the body (genhash).
	Digest string `json:"digest,omitempty"`
	// StatusCodes default 200-299.
	StatusCodes    []StatusRange `json:"status_code"`
	Virtualhost    string        `json:"virtualhost,omitempty"`
	Regex          string        `json:"regex,omitempty"`
	RegexNoMatch   bool          `json:"regex_no_match,omitempty"`
	RegexOptions   []string      `json:"regex_options,omitempty"`
	RegexMinOffset int           `json:"regex_min_offset,omitempty"`
	RegexMaxOffset int           `json:"regex_max_offset,omitempty"`
}

// SMTPParam is the SMTP_CHECK part of a checker.
type SMTPParam struct {
	// HeloName default: the local host name (empty here).
	HeloName string `json:"helo_name,omitempty"`
	// Hosts are the deprecated host{} sub-blocks: extra connection
	// targets, each a checker of its own in keepalived.
	Hosts []Checker `json:"hosts,omitempty"`
}

// DNSParam is the DNS_CHECK part of a checker.
type DNSParam struct {
	Type string `json:"type"` // default SOA
	Name string `json:"name"` // default "." (the root)
}

// UDPParam is the UDP_CHECK part of a checker.
type UDPParam struct {
	// Payload is sent (random when empty).
	Payload []byte `json:"payload,omitempty"`
	// RequireReply: a reply must come; ReplyData/ReplyMask check its
	// start (mask bits 1 = don't care).
	RequireReply   bool   `json:"require_reply,omitempty"`
	ReplyData      []byte `json:"reply_data,omitempty"`
	ReplyMask      []byte `json:"reply_mask,omitempty"`
	MinReplyLength int    `json:"min_reply_length"` // default 0
	MaxReplyLength int    `json:"max_reply_length"` // default 255
}

// MiscParam is the MISC_CHECK part of a checker.
type MiscParam struct {
	Path Command `json:"misc_path"`
	// Timeout default: the virtual server's delay_loop.
	Timeout time.Duration `json:"misc_timeout"`
	Dynamic bool          `json:"misc_dynamic,omitempty"`
}

// FileParam is the FILE_CHECK part of a checker.
type FileParam struct {
	TrackFile string `json:"track_file"`
	// Weight defaults to the track_file's weight.
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`
	Dynamic bool `json:"dynamic,omitempty"`
}

// SSL is the SSL block (client certificate for SSL_GET).
type SSL struct {
	Pos         diag.Pos `json:"pos"`
	Password    string   `json:"password,omitempty"`
	CA          string   `json:"ca,omitempty"`
	Certificate string   `json:"certificate,omitempty"`
	Key         string   `json:"key,omitempty"`
}

// maxRTPriority is sched_get_priority_max(SCHED_RR) on Linux.
const maxRTPriority = 99

// AutoPriority is the hook for max_auto_priority: given the realtime
// priority a process runs at now (0: not realtime) and how late its
// earliest timer fired, it returns the realtime priority the process
// should switch to, or cur when it should stay as it is (keepalived 2.2.7
// scheduler.c / process.c increment_process_priority()). It is pure; the
// caller measures the lateness and applies the result with
// sched_setscheduler(SCHED_RR).
func (g *Global) AutoPriority(cur int, late time.Duration) int {
	minLate := g.MinAutoPriorityDelay
	if minLate == 0 {
		minLate = time.Second
	}
	if g.MaxAutoPriority <= 0 || late <= minLate || cur >= g.MaxAutoPriority {
		return cur
	}
	return cur + 1
}
