package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vigil-ha/vigil/internal/diag"
)

// loadString loads one file and fails the test on errors unless allowed.
func loadString(t *testing.T, src string) (*Config, diag.Diagnostics) {
	t.Helper()
	return Load(one(src), "k.conf", Options{ConfigID: "node1"})
}

func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	cfg, ds := loadString(t, src)
	// Keywords vigil parses but does not act on are warned about; the
	// model still records them.
	ds = slices.DeleteFunc(ds, func(d diag.Diagnostic) bool {
		return d.Severity == diag.Warning && (strings.Contains(d.Msg, "is not supported by vigil") ||
			strings.Contains(d.Msg, "accept mode is off"))
	})
	if len(ds) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", dumpDiags(ds))
	}
	return cfg
}

var ignorePos = cmp.Options{cmpopts.IgnoreTypes(diag.Pos{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

var (
	addr   = netip.MustParseAddr
	prefix = netip.MustParsePrefix
)

// minimal is the smallest valid instance.
const minimal = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        192.168.1.1/24
    }
}
`

func TestGlobalDefs(t *testing.T) {
	cfg, ds := loadString(t, `global_defs {
    router_id r1
    script_user ka ka
    enable_script_security
    vrrp_mcast_group4 224.0.0.19
    vrrp_mcast_group6 ff02::13
    vrrp_garp_master_delay 10
    vrrp_garp_master_repeat 2
    vrrp_garp_master_refresh 60
    vrrp_garp_master_refresh_repeat 3
    vrrp_garp_interval 0.001
    vrrp_gna_interval 0.000001
    vrrp_down_timer_adverts 4
    vrrp_version 3
    vrrp_strict
    vrrp_check_unicast_src
    vrrp_skip_check_adv_addr
    vrrp_lower_prio_no_advert
    vrrp_higher_prio_send_advert off
    vrrp_startup_delay 5.5
    vrrp_garp_extra_if all 120
    notify_fifo /run/k.fifo root
    notify_fifo_script "/bin/fifo.sh x" root
    vrrp_notify_priority_changes yes
    default_interface eth9
    dynamic_interfaces allow_if_changes
    nftables vigil
    nftables_priority -5
    vmac_prefix vm
    log_unknown_vrids
    checker_log_all_failures
    rs_init_notifies
    random_seed 42
}
`+minimal)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	want := Global{
		RouterID:                    "r1",
		SMTPConnectTimeout:          30 * time.Second,
		EnableScriptSecurity:        true,
		ScriptUser:                  "ka",
		ScriptGroup:                 "ka",
		NotifyFIFO:                  FIFO{Path: "/run/k.fifo", User: "root", Script: Command{Args: []string{"/bin/fifo.sh", "x"}, User: "root"}},
		VRRPNotifyPriorityChange:    true,
		VRRPMcastGroup4:             addr("224.0.0.19"),
		VRRPMcastGroup6:             addr("ff02::13"),
		VRRPGARPMasterDelay:         10 * time.Second,
		VRRPGARPMasterRepeat:        2,
		VRRPGARPMasterRefresh:       60 * time.Second,
		VRRPGARPMasterRefreshRepeat: 3,
		VRRPGARPLowerPrioDelay:      10 * time.Second,
		VRRPGARPLowerPrioRepeat:     2,
		VRRPGARPInterval:            time.Millisecond,
		VRRPGNAInterval:             time.Microsecond,
		VRRPGARPExtraIf:             120 * time.Second,
		VRRPGARPExtraIfAll:          true,
		VRRPDownTimerAdverts:        4,
		VRRPLowerPrioNoAdvert:       true,
		VRRPVersion:                 3,
		VRRPStrict:                  true,
		VRRPCheckUnicastSrc:         true,
		VRRPSkipCheckAdvAddr:        true,
		VRRPStartupDelay:            5500 * time.Millisecond,
		LogUnknownVRIDs:             true,
		DefaultInterface:            "eth9",
		DynamicInterfaces:           true,
		AllowIfChanges:              true,
		VMACPrefix:                  "vm",
		NFTables:                    "vigil",
		NFTablesPriority:            -5,
		CheckerLogAllFailures:       true,
		RSInitNotifies:              true,
		RandomSeed:                  42,
	}
	if diff := cmp.Diff(want, cfg.Global, ignorePos); diff != "" {
		t.Errorf("global_defs (-want +got):\n%s", diff)
	}
}

func TestGlobalDefaults(t *testing.T) {
	cfg := mustLoad(t, minimal)
	want := Global{
		RouterID:                    "node1", // the config id, as keepalived uses the host name
		SMTPConnectTimeout:          30 * time.Second,
		VRRPMcastGroup4:             addr("224.0.0.18"),
		VRRPMcastGroup6:             addr("ff02::12"),
		VRRPGARPMasterDelay:         5 * time.Second,
		VRRPGARPMasterRepeat:        5,
		VRRPGARPMasterRefreshRepeat: 1,
		VRRPGARPLowerPrioDelay:      5 * time.Second,
		VRRPGARPLowerPrioRepeat:     5,
		VRRPDownTimerAdverts:        3,
		VRRPVersion:                 2,
		DefaultInterface:            "eth0",
		VMACPrefix:                  "vrrp",
	}
	if diff := cmp.Diff(want, cfg.Global, ignorePos); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	cfg = mustLoad(t, "global_defs {\nvrrp_min_garp\n}\n"+minimal)
	if g := cfg.Global; g.VRRPGARPMasterRepeat != 1 || g.VRRPGARPMasterDelay != 0 || g.VRRPGARPMasterRefreshRepeat != 0 {
		t.Errorf("vrrp_min_garp: repeat %d delay %s refresh repeat %d, want 1 0s 0", g.VRRPGARPMasterRepeat, g.VRRPGARPMasterDelay, g.VRRPGARPMasterRefreshRepeat)
	}
}

func TestInstanceDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want VRRPInstance
	}{
		{
			name: "backup",
			src:  minimal,
			want: VRRPInstance{Name: "VI_1", State: Backup, Interface: "eth0", VRID: 1, Priority: 100, AdvertInt: time.Second,
				Version: 2, Family: Inet, Accept: true, McastGroup: addr("224.0.0.18"),
				VirtualIPs:      []Address{{Prefix: prefix("192.168.1.1/24")}},
				GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
				GARPLowerPrioDelay: 5 * time.Second, GARPLowerPrioRepeat: 5, DownTimerAdverts: 3},
		},
		{
			// keepalived 2.2.7: no priority with state MASTER means 255.
			name: "master without priority",
			src:  strings.Replace(minimal, "interface eth0", "state MASTER\ninterface eth0", 1),
			want: VRRPInstance{Name: "VI_1", State: Master, Interface: "eth0", VRID: 1, Priority: 255, AdvertInt: time.Second,
				Version: 2, Family: Inet, Accept: true, McastGroup: addr("224.0.0.18"),
				VirtualIPs:      []Address{{Prefix: prefix("192.168.1.1/24")}},
				GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
				GARPLowerPrioDelay: 5 * time.Second, GARPLowerPrioRepeat: 5, DownTimerAdverts: 3},
		},
		{
			// No state with priority 255 means MASTER.
			name: "owner without state",
			src:  strings.Replace(minimal, "interface eth0", "priority 255\ninterface eth0", 1),
			want: VRRPInstance{Name: "VI_1", State: Master, Interface: "eth0", VRID: 1, Priority: 255, AdvertInt: time.Second,
				Version: 2, Family: Inet, Accept: true, McastGroup: addr("224.0.0.18"),
				VirtualIPs:      []Address{{Prefix: prefix("192.168.1.1/24")}},
				GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
				GARPLowerPrioDelay: 5 * time.Second, GARPLowerPrioRepeat: 5, DownTimerAdverts: 3},
		},
		{
			// IPv6 uses VRRPv3 and ff02::12 (RFC 5798 §5.1.2.2).
			name: "ipv6",
			src:  "vrrp_instance V6 {\ninterface eth0\nvirtual_router_id 2\nvirtual_ipaddress {\nfe80::1\n2001:db8::1/64\n}\n}\n",
			want: VRRPInstance{Name: "V6", State: Backup, Interface: "eth0", VRID: 2, Priority: 100, AdvertInt: time.Second,
				Version: 3, Family: Inet6, Accept: true, McastGroup: addr("ff02::12"),
				VirtualIPs:      []Address{{Prefix: prefix("fe80::1/128")}, {Prefix: prefix("2001:db8::1/64")}},
				GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
				GARPLowerPrioDelay: 5 * time.Second, GARPLowerPrioRepeat: 5, DownTimerAdverts: 3},
		},
		{
			// vrrp_strict: no accept mode below 255, no lower-priority
			// GARPs, lower_prio_no_advert on (keepalived.conf(5)).
			name: "strict",
			src:  "global_defs {\nvrrp_strict\n}\n" + minimal,
			want: VRRPInstance{Name: "VI_1", State: Backup, Interface: "eth0", VRID: 1, Priority: 100, AdvertInt: time.Second,
				Version: 2, Family: Inet, StrictMode: true, McastGroup: addr("224.0.0.18"),
				VirtualIPs:      []Address{{Prefix: prefix("192.168.1.1/24")}},
				GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
				DownTimerAdverts: 3, LowerPrioNoAdvert: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoad(t, tc.src)
			if diff := cmp.Diff(tc.want, cfg.Instances[0], ignorePos); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestInstanceKeywords(t *testing.T) {
	cfg, ds := loadString(t, `global_defs {
    enable_script_security
}
vrrp_script chk {
    script "/bin/chk --fast"
    interval 3
    weight -20 reverse
    fall 2
    rise 4
    user nobody
    init_fail
}
track_file tf {
    file /run/tf
    weight 5 reverse
    init_file 3 overwrite
}
vrrp_track_process proc {
    process haproxy -f /etc/h.cfg
    param_match partial
    weight 10
    quorum 2
    quorum_max 4
    fork_delay 0.25
    terminate_delay 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    dont_track_primary
    track_interface {
        eth1
        eth2 weight -30 reverse
    }
    track_script {
        chk
    }
    track_file {
        tf weight 2 noreverse
    }
    track_process {
        proc
    }
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
        10.0.0.3 min_ttl 250
    }
    unicast_ttl 64
    virtual_router_id 77
    priority 120
    advert_int 3
    nopreempt
    preempt
    preempt_delay 10.5
    no_accept
    skip_check_adv_addr off
    promote_secondaries
    use_vmac vrrp.77 02:00:00:00:01
    vmac_xmit_base
    authentication {
        auth_type PASS
        auth_pass abc
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0 label eth0:vip
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64 dev eth1
    }
    garp_master_delay 1
    garp_master_repeat 2
    garp_master_refresh 30
    garp_master_refresh_repeat 3
    garp_lower_prio_delay 4
    garp_lower_prio_repeat 6
    garp_extra_if 60
    down_timer_adverts 5
    lower_prio_no_advert
    higher_prio_send_advert
    notify_master "/bin/n master" root
    notify_backup /bin/nb
    notify_fault /bin/nf
    notify_stop /bin/ns
    notify_deleted
    notify /bin/n
    notify_master_rx_lower_pri /bin/nl
    notify_priority_changes
}
`)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	wantScript := VRRPScript{Name: "chk", Script: Command{Args: []string{"/bin/chk", "--fast"}, User: "nobody"},
		Interval: 3 * time.Second, Weight: -20, Reverse: true, Rise: 4, Fall: 2, InitFail: true}
	if diff := cmp.Diff(wantScript, cfg.Scripts[0], ignorePos); diff != "" {
		t.Errorf("vrrp_script (-want +got):\n%s", diff)
	}
	wantTF := TrackFile{Name: "tf", File: "/run/tf", Weight: 5, Reverse: true, Init: true, InitValue: 3, InitOverwrite: true}
	if diff := cmp.Diff(wantTF, cfg.TrackFiles[0], ignorePos); diff != "" {
		t.Errorf("track_file (-want +got):\n%s", diff)
	}
	wantTP := TrackProcess{Name: "proc", Process: "haproxy", Params: []string{"-f", "/etc/h.cfg"}, ParamMatch: "partial",
		FullCommand: true, Weight: 10, Quorum: 2, QuorumMax: 4, ForkDelay: 250 * time.Millisecond, TerminateDelay: time.Second}
	if diff := cmp.Diff(wantTP, cfg.TrackProcesses[0], ignorePos); diff != "" {
		t.Errorf("vrrp_track_process (-want +got):\n%s", diff)
	}
	want := VRRPInstance{
		Name: "VI_1", State: Backup, Interface: "eth0", VRID: 77, Priority: 120, AdvertInt: 3 * time.Second,
		Version: 2, Family: Inet, PreemptDelay: 10500 * time.Millisecond,
		DontTrackPrimary: true, SourceIP: addr("10.0.0.1"),
		UnicastPeers:       []UnicastPeer{{Addr: addr("10.0.0.2"), MaxTTL: 255}, {Addr: addr("10.0.0.3"), MinTTL: 250, MaxTTL: 255}},
		Unicast:            true,
		CheckUnicastSrc:    true,
		UnicastTTL:         64,
		Auth:               Auth{Type: AuthPass, Pass: "abc"},
		VirtualIPs:         []Address{{Prefix: prefix("10.0.0.100/24"), Dev: "eth0", Label: "eth0:vip"}},
		ExcludedIPs:        []Address{{Prefix: prefix("2001:db8::100/64"), Dev: "eth1"}},
		PromoteSecondaries: true,
		TrackInterfaces:    []Tracked{{Name: "eth1"}, {Name: "eth2", Weight: -30, Reverse: true, WeightSet: true, ReverseSet: true}},
		TrackScripts:       []Tracked{{Name: "chk", Weight: -20, Reverse: true}},
		TrackFiles:         []Tracked{{Name: "tf", Weight: 2, WeightSet: true, ReverseSet: true}},
		TrackProcesses:     []Tracked{{Name: "proc", Weight: 10}},
		UseVMAC:            true, VMACName: "vrrp.77", VMACAddr: "02:00:00:00:01", VMACXmitBase: true,
		GARPMasterDelay: time.Second, GARPMasterRepeat: 2, GARPMasterRefresh: 30 * time.Second, GARPMasterRefreshRepeat: 3,
		GARPLowerPrioDelay: 4 * time.Second, GARPLowerPrioRepeat: 6, GARPExtraIf: time.Minute,
		DownTimerAdverts: 5, LowerPrioNoAdvert: true, HigherPrioSendAdvert: true,
		NotifyMaster:           Command{Args: []string{"/bin/n", "master"}, User: "root"},
		NotifyBackup:           Command{Args: []string{"/bin/nb"}},
		NotifyFault:            Command{Args: []string{"/bin/nf"}},
		NotifyStop:             Command{Args: []string{"/bin/ns"}},
		NotifyDeletedSet:       true,
		Notify:                 Command{Args: []string{"/bin/n"}},
		NotifyMasterRxLowerPri: Command{Args: []string{"/bin/nl"}},
		NotifyPriorityChanges:  true,
	}
	if diff := cmp.Diff(want, cfg.Instances[0], ignorePos); diff != "" {
		t.Errorf("vrrp_instance (-want +got):\n%s", diff)
	}
}

func TestAddressesRoutesRules(t *testing.T) {
	cfg, ds := loadString(t, `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1/24 brd 10.0.0.255 dev eth1 scope link label eth1:1 no_track
        10.0.0.2 peer 10.0.0.3/24
        10.0.0.4/24 brd +
        10.0.0.5/30 broadcast - home -nodad mngtmpaddr noprefixroute autojoin use_vmac preferred_lft forever
    }
    virtual_routes {
        src 10.0.0.1 to 192.168.0.0/16 via 10.0.0.254 dev eth0 table 100 metric 5 scope link protocol static onlink no_track
        blackhole 192.168.9.0/24 no_track
        default via 10.0.0.254 dev eth0 mtu lock 1400 append
        2001:db8::/32 via fe80::1 dev eth0
    }
    virtual_rules {
        from 10.0.0.0/8 to 192.168.0.0/16 table 100 preference 10 fwmark 7
        from 2001:db8::/32 lookup main priority 20
    }
}
`)
	// The address's use_vmac is parsed and reported (vigil makes no
	// per-address VMAC).
	// autojoin on a unicast address: the kernel refuses the add.
	var autojoin int
	ds = slices.DeleteFunc(ds, func(d diag.Diagnostic) bool {
		if strings.Contains(d.Msg, "autojoin is for multicast addresses: the kernel refuses to add 10.0.0.5/30") {
			autojoin++
			return true
		}
		return strings.Contains(d.Msg, "use_vmac on 10.0.0.5/30 is not supported")
	})
	if autojoin != 1 {
		t.Errorf("%d autojoin warnings for 10.0.0.5/30, want 1", autojoin)
	}
	if len(ds) > 0 {
		t.Fatalf("diagnostics:\n%s", dumpDiags(ds))
	}
	vi := cfg.Instances[0]
	wantVIPs := []Address{
		{Prefix: prefix("10.0.0.1/24"), Broadcast: addr("10.0.0.255"), BroadcastMode: "addr", Dev: "eth1", Scope: "link", Label: "eth1:1", NoTrack: true},
		{Prefix: prefix("10.0.0.2/24"), Peer: addr("10.0.0.3")},
		{Prefix: prefix("10.0.0.4/24"), BroadcastMode: "+"},
		{Prefix: prefix("10.0.0.5/30"), BroadcastMode: "-", Home: true, NoDAD: true, MngTmpAddr: true, NoPrefixRoute: true, AutoJoin: true, UseVMAC: true, PreferredLft: -1, PreferredLftSet: true},
	}
	if diff := cmp.Diff(wantVIPs, vi.VirtualIPs, ignorePos); diff != "" {
		t.Errorf("virtual_ipaddress (-want +got):\n%s", diff)
	}
	wantRoutes := []Route{
		{Dst: prefix("192.168.0.0/16"), Src: addr("10.0.0.1"), Via: addr("10.0.0.254"), Dev: "eth0", Table: "100", Metric: 5, Scope: "link", Protocol: "static", OnLink: true, NoTrack: true, Family: Inet},
		{Type: "blackhole", Dst: prefix("192.168.9.0/24"), NoTrack: true, Family: Inet},
		{Dst: prefix("0.0.0.0/0"), Via: addr("10.0.0.254"), Dev: "eth0", Family: Inet, Options: []string{"mtu", "lock", "1400", "append"}},
		{Dst: prefix("2001:db8::/32"), Via: addr("fe80::1"), Dev: "eth0", Family: Inet6},
	}
	if diff := cmp.Diff(wantRoutes, vi.VirtualRoutes, ignorePos); diff != "" {
		t.Errorf("virtual_routes (-want +got):\n%s", diff)
	}
	wantRules := []Rule{
		{From: prefix("10.0.0.0/8"), To: prefix("192.168.0.0/16"), Table: "100", Preference: 10, Family: Inet, Options: []string{"fwmark", "7"}},
		{From: prefix("2001:db8::/32"), Table: "main", Preference: 20, Family: Inet6},
	}
	if diff := cmp.Diff(wantRules, vi.VirtualRules, ignorePos); diff != "" {
		t.Errorf("virtual_rules (-want +got):\n%s", diff)
	}
}

func TestVirtualServerInheritance(t *testing.T) {
	cfg, ds := loadString(t, `global_defs {
    enable_script_security
}
virtual_server 10.0.0.1 80 {
    delay_loop 20
    lb_algo rr
    lb_kind DR
    protocol TCP
    connect_timeout 7
    retry 4
    weight 3
    inhibit_on_failure
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
    }
    real_server 10.0.0.3 {
        weight 1
        delay_loop 9
        delay_before_retry 2
        inhibit_on_failure off
        alpha
        DNS_CHECK {
            retry 1
        }
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}
virtual_server 10.0.0.1 81 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.4 8080 {
        TCP_CHECK {
        }
        DNS_CHECK {
        }
        MISC_CHECK {
            misc_path /bin/true
        }
        UDP_CHECK {
        }
    }
}
`)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	vs := cfg.VirtualServers[0]
	type eff struct {
		Type                                                CheckerType
		Retry                                               int
		ConnectTimeout, DelayBeforeRetry, DelayLoop, Warmup time.Duration
		Alpha                                               bool
	}
	var got []eff
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, c := range rs.Checkers {
				got = append(got, eff{c.Type, c.Retry, c.ConnectTimeout, c.DelayBeforeRetry, c.DelayLoop, c.Warmup, c.Alpha})
			}
		}
	}
	s := time.Second
	want := []eff{
		// virtual server retry 4, connect_timeout 7, delay_loop 20
		{TCPCheck, 4, 7 * s, 1 * s, 20 * s, 20 * s, false},
		{HTTPGet, 4, 7 * s, 3 * s, 20 * s, 20 * s, false},
		// real server delay_loop 9, delay_before_retry 2, alpha
		{DNSCheck, 1, 7 * s, 2 * s, 9 * s, 9 * s, true},
		{MiscCheck, 4, 0, 2 * s, 9 * s, 9 * s, true},
		// type defaults (keepalived check_api.c queue_checker() and the
		// checkers' handlers): retry 1 (DNS 3, MISC 0), delay_before_retry
		// 1s (DNS: delay_loop), connect_timeout 5s, delay_loop 60s.
		{TCPCheck, 1, 5 * s, 1 * s, 60 * s, 60 * s, false},
		{DNSCheck, 3, 5 * s, 60 * s, 60 * s, 60 * s, false},
		{MiscCheck, 0, 0, 1 * s, 60 * s, 60 * s, false},
		{UDPCheck, 1, 5 * s, 1 * s, 60 * s, 60 * s, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("effective checker settings (-want +got):\n%s", diff)
	}
	if rs := vs.RealServers[0]; rs.Weight != 3 || !rs.InhibitOnFailure || rs.Forwarding.Method != DR || rs.Port != 80 {
		t.Errorf("real server 0: weight %d inhibit %v method %s port %d, want 3 true DR 80", rs.Weight, rs.InhibitOnFailure, rs.Forwarding.Method, rs.Port)
	}
	if rs := vs.RealServers[1]; rs.Weight != 1 || rs.InhibitOnFailure || rs.Port != 80 {
		t.Errorf("real server 1: weight %d inhibit %v port %d, want 1 false 80 (DR takes the virtual server's port)", rs.Weight, rs.InhibitOnFailure, rs.Port)
	}
	if rs := cfg.VirtualServers[1].RealServers[0]; rs.Port != 8080 {
		t.Errorf("NAT real server port %d, want 8080", rs.Port)
	}
	if m := vs.RealServers[1].Checkers[1].Misc; m.Timeout != 20*time.Second {
		t.Errorf("misc_timeout default %s, want the virtual server's delay_loop 20s", m.Timeout)
	}
}

func TestCheckers(t *testing.T) {
	cfg, ds := loadString(t, `track_file tf {
    file /run/tf
    weight 7
}
virtual_server 10.0.0.1 443 {
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 443 {
        SSL_GET {
            connect_ip 10.0.0.9
            connect_port 8443
            bindto 10.0.0.1
            bind_port 5000
            bind_if eth0
            fwmark 9
            warmup 2
            log_all_failures
            virtualhost host.example
            http_protocol 1.0C
            fast_recovery
            enable_sni
            url {
                path /a
                digest 640205B7B0FC66C1EA91C463FAC6334D
                status_code 200 301-302
                virtualhost other.example
                regex "ok|fine"
                regex_no_match
                regex_options caseless multiline
                regex_min_offset 2
                regex_max_offset 100
            }
        }
        SMTP_CHECK {
            helo_name "mail.example"
        }
        DNS_CHECK {
            type aaaa
            name example.org
        }
        UDP_CHECK {
            payload 1 23 ab
            require_reply 4x 56
            max_reply_length 64
        }
        FILE_CHECK {
            track_file tf
        }
        PING_CHECK {
        }
    }
}
`)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	cs := cfg.VirtualServers[0].RealServers[0].Checkers
	if len(cs) != 6 {
		t.Fatalf("%d checkers, want 6", len(cs))
	}
	ssl := cs[0]
	if ssl.ConnectIP != addr("10.0.0.9") || ssl.ConnectPort != 8443 || ssl.BindTo != addr("10.0.0.1") || ssl.BindPort != 5000 ||
		ssl.BindIf != "eth0" || ssl.FWMark != 9 || ssl.Warmup != 2*time.Second || !ssl.LogAllFailures {
		t.Errorf("SSL_GET connection options: %+v", ssl)
	}
	wantHTTP := &HTTPCheck{Protocol: "1.0C", Virtualhost: "host.example", EnableSNI: true, FastRecovery: true, URLs: []URL{{
		Path: "/a", Digest: "640205b7b0fc66c1ea91c463fac6334d", StatusCodes: []StatusRange{{200, 200}, {301, 302}},
		Virtualhost: "other.example", Regex: "ok|fine", RegexNoMatch: true, RegexOptions: []string{"caseless", "multiline"},
		RegexMinOffset: 2, RegexMaxOffset: 100,
	}}}
	if diff := cmp.Diff(wantHTTP, ssl.HTTP, ignorePos); diff != "" {
		t.Errorf("SSL_GET (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&SMTPParam{HeloName: "mail.example"}, cs[1].SMTP); diff != "" {
		t.Errorf("SMTP_CHECK (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&DNSParam{Type: "AAAA", Name: "example.org"}, cs[2].DNS); diff != "" {
		t.Errorf("DNS_CHECK (-want +got):\n%s", diff)
	}
	// keepalived read_hex_str(): "1" is one byte, x is a wildcard nibble.
	wantUDP := &UDPParam{Payload: []byte{0x01, 0x23, 0xab}, RequireReply: true, ReplyData: []byte{0x40, 0x56}, ReplyMask: []byte{0x0f, 0x00}, MaxReplyLength: 64}
	if diff := cmp.Diff(wantUDP, cs[3].UDP); diff != "" {
		t.Errorf("UDP_CHECK (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&FileParam{TrackFile: "tf", Weight: 7}, cs[4].File); diff != "" {
		t.Errorf("FILE_CHECK (-want +got):\n%s", diff)
	}
	if cs[5].Type != PingCheck {
		t.Errorf("checker 5 is %s", cs[5].Type)
	}
}

func TestVirtualServerForms(t *testing.T) {
	cfg, ds := loadString(t, `virtual_server_group G {
    10.0.0.1 80
    10.0.0.10-20 80
    10.0.1.0/30 80
    2001:db8::1-ff 80
    fwmark 5 inet6
}
virtual_server group G {
    lb_algo sh
    sh-port
    lb_kind TUN type gue port 6080 csum
    protocol TCP
    persistence_timeout
    real_server 10.0.0.100 80 {
        TCP_CHECK {
        }
    }
}
virtual_server fwmark 3 {
    lb_algo rr
    lb_kind DR
    sorry_server 10.0.0.99 8080
    sorry_server_lvs_method NAT
    sorry_server_inhibit
    real_server 10.0.0.101 80 {
        TCP_CHECK {
        }
    }
}
`)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	wantG := []VSGroupEntry{
		{First: addr("10.0.0.1"), Last: addr("10.0.0.1"), Port: 80, Family: Inet},
		{First: addr("10.0.0.10"), Last: addr("10.0.0.20"), Port: 80, Family: Inet},
		{First: addr("10.0.1.0"), Last: addr("10.0.1.3"), Port: 80, Family: Inet},
		{First: addr("2001:db8::1"), Last: addr("2001:db8::ff"), Port: 80, Family: Inet6},
		{FWMark: 5, Family: Inet6},
	}
	if diff := cmp.Diff(wantG, cfg.VSGroups[0].Entries, ignorePos); diff != "" {
		t.Errorf("virtual_server_group (-want +got):\n%s", diff)
	}
	g := cfg.VirtualServers[0]
	if g.Group != "G" || g.Scheduler != "sh" || g.PersistenceTimeout != 360*time.Second ||
		g.Forwarding != (Forwarding{Method: TUN, TunnelType: "gue", TunnelPort: 6080, TunnelCsum: "csum"}) ||
		!cmp.Equal(g.SchedFlags, []string{"sh-port"}) {
		t.Errorf("group virtual server: %+v", g)
	}
	fw := cfg.VirtualServers[1]
	wantSorry := &SorryServer{Addr: addr("10.0.0.99"), Port: 8080, Inhibit: true, Forwarding: Forwarding{Method: NAT}}
	if diff := cmp.Diff(wantSorry, fw.SorryServer, ignorePos); diff != "" {
		t.Errorf("sorry_server (-want +got):\n%s", diff)
	}
	if fw.FWMark != 3 || fw.Protocol != "" || fw.RealServers[0].Port != 0 {
		t.Errorf("fwmark virtual server: mark %d protocol %q rs port %d", fw.FWMark, fw.Protocol, fw.RealServers[0].Port)
	}
}

func TestSyncGroup(t *testing.T) {
	cfg, ds := loadString(t, `vrrp_script s {
    script /bin/s
}
vrrp_sync_group G {
    group {
        A B
    }
    track_script {
        s weight 10
    }
    notify_master /bin/m
    notify_priority_changes off
    sync_group_tracking_weight
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        10.0.0.2
    }
}
`)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", dumpDiags(ds))
	}
	want := SyncGroup{Name: "G", Instances: []string{"A", "B"}, TrackScripts: []Tracked{{Name: "s", Weight: 10, WeightSet: true}},
		NotifyMaster: Command{Args: []string{"/bin/m"}}, NotifyPriorityChanges: False, TrackingWeight: true}
	if diff := cmp.Diff(want, cfg.SyncGroups[0], ignorePos); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if cfg.Instances[0].SyncGroup != "G" || cfg.Instances[1].SyncGroup != "G" {
		t.Errorf("instances' sync group: %q %q", cfg.Instances[0].SyncGroup, cfg.Instances[1].SyncGroup)
	}
}

func TestKeywordTables(t *testing.T) {
	kws := Keywords()
	byBlock := map[string]map[string]Keyword{}
	for _, k := range kws {
		if byBlock[k.Block] == nil {
			byBlock[k.Block] = map[string]Keyword{}
		}
		if _, dup := byBlock[k.Block][k.Name]; dup {
			t.Errorf("keyword %s.%s listed twice", k.Block, k.Name)
		}
		byBlock[k.Block][k.Name] = k
		if !k.Supported && k.Unsupported == "" {
			t.Errorf("%s.%s: unsupported without a reason", k.Block, k.Name)
		}
	}
	// Every block of keepalived.conf(5) has a table.
	for _, b := range []string{rootName, "global_defs", "vrrp_instance", "authentication", "vrrp_script", "vrrp_sync_group",
		"track_file", "vrrp_track_process", "garp_group", "track_group", "bfd_instance", "virtual_server", "real_server",
		"TCP_CHECK", "HTTP_GET", "SSL_GET", "url", "MISC_CHECK", "SMTP_CHECK", "host", "DNS_CHECK", "UDP_CHECK",
		"PING_CHECK", "FILE_CHECK", "BFD_CHECK", "SSL"} {
		if byBlock[b] == nil {
			t.Errorf("no keyword table for %s", b)
		}
	}
	for _, want := range []struct{ block, name string }{
		{"global_defs", "vrrp_garp_master_delay"}, {"vrrp_instance", "unicast_peer"}, {"vrrp_instance", "virtual_ipaddress_excluded"},
		{"virtual_server", "sorry_server_inhibit"}, {"real_server", "notify_down"}, {"url", "status_code"},
		{"HTTP_GET", "connect_timeout"}, {"MISC_CHECK", "misc_dynamic"}, {"UDP_CHECK", "require_reply"},
	} {
		if _, ok := byBlock[want.block][want.name]; !ok {
			t.Errorf("%s.%s missing", want.block, want.name)
		}
	}
	uns := Unsupported()
	if len(uns) < 20 {
		t.Errorf("only %d unsupported keywords", len(uns))
	}
	for _, u := range uns {
		if u.Supported {
			t.Errorf("Unsupported() lists supported %s.%s", u.Block, u.Name)
		}
	}
}

func TestJSONRendering(t *testing.T) {
	cfg := mustLoad(t, minimal)
	b, err := cfg.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"advert_int": "1s"`, `"prefix": "192.168.1.1/24"`, `"pos": "k.conf:1:1"`, `"vrrp_mcast_group4": "224.0.0.18"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

// TestVirtualServerRules checks keepalived 2.2.7's virtual-server
// corrections (check_data.c validate_check_config), each reported once, in
// file order, with the value the model then carries.
func TestVirtualServerRules(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		diags []string
		check func(c *Config) string
		want  string
	}{
		{
			name: "quorum above the total weight, hysteresis above the quorum",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n" +
				"    quorum 5\n    hysteresis 9\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:5:5: warning: virtual_server 10.0.0.1:80: quorum 5 exceeds the total weight 1 of the real servers; 1 is used, as keepalived does",
				"k.conf:6:5: warning: virtual_server 10.0.0.1:80: hysteresis 9 must be below quorum 1; 0 is used, as keepalived does",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("quorum %d hysteresis %d", vs.Quorum, vs.Hysteresis)
			},
			want: `quorum 1 hysteresis 0`,
		},
		{
			name: "hysteresis equal to the quorum",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n" +
				"    quorum 3\n    hysteresis 3\n    real_server 10.0.0.2 80 {\n        weight 4\n    }\n}\n",
			diags: []string{
				"k.conf:6:5: warning: virtual_server 10.0.0.1:80: hysteresis 3 must be below quorum 3; 2 is used, as keepalived does",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("quorum %d hysteresis %d", vs.Quorum, vs.Hysteresis)
			},
			want: `quorum 3 hysteresis 2`,
		},
		{
			name: "sorry server duplicating a real server takes its inhibit",
			src: "virtual_server 10.0.0.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    inhibit_on_failure\n" +
				"    sorry_server 10.0.0.2 80\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:7:5: warning: virtual_server 10.0.0.1:80: real_server 10.0.0.2:80 is also the sorry_server, with another inhibit_on_failure; the sorry server takes the real server's (true), as keepalived does",
			},
			check: func(c *Config) string {
				return fmt.Sprintf("sorry inhibit %v", c.VirtualServers[0].SorryServer.Inhibit)
			},
			want: `sorry inhibit true`,
		},
		{
			name: "a group range holding another virtual server's service",
			src: "virtual_server 10.1.1.1 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n" +
				"virtual_server_group g {\n    10.1.1.0-3 80\n}\n" +
				"virtual_server group g {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:11:1: warning: virtual_server group g: service TCP 10.1.1.1:80 is also defined by virtual_server 10.1.1.1:80; this virtual server is ignored",
			},
			check: func(c *Config) string { return fmt.Sprintf("%d virtual servers", len(c.VirtualServers)) },
			want:  `1 virtual servers`,
		},
		{
			name: "fwmark: protocol ignored, DR port cleared, ha_suspend cleared",
			src: "virtual_server fwmark 3 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    ha_suspend\n" +
				"    real_server 10.0.0.2 8080 {\n    }\n}\n",
			diags: []string{
				"k.conf:4:5: warning: virtual_server fwmark 3: protocol is ignored for fwmark services",
				"k.conf:5:5: warning: virtual_server fwmark 3: ha_suspend cannot be used with fwmarks; ignored, as keepalived does",
				"k.conf:6:5: warning: virtual_server fwmark 3: real_server port 8080 is ignored for a fwmark service without NAT",
			},
			check: func(c *Config) string {
				vs := c.VirtualServers[0]
				return fmt.Sprintf("protocol %q port %d ha_suspend %v family %s", vs.Protocol, vs.RealServers[0].Port, vs.HASuspend, vs.Family)
			},
			want: `protocol "" port 0 ha_suspend false family inet`,
		},
		{
			// keepalived 2.2.7 validate_check_config() clears ha_suspend
			// when the group has any fwmark, addresses beside it or not.
			name: "group with an address and a fwmark: ha_suspend cleared",
			src: "virtual_server_group g {\n    10.1.1.1 80\n    fwmark 3\n}\n" +
				"virtual_server group g {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    ha_suspend\n    real_server 10.0.0.2 80 {\n    }\n}\n",
			diags: []string{
				"k.conf:9:5: warning: virtual_server group g: ha_suspend cannot be used with fwmarks; ignored, as keepalived does",
			},
			check: func(c *Config) string { return fmt.Sprintf("ha_suspend %v", c.VirtualServers[0].HASuspend) },
			want:  `ha_suspend false`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ds := loadString(t, tc.src)
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.diags, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if got := tc.check(c); got != tc.want {
				t.Errorf("model: %s, want %s", got, tc.want)
			}
		})
	}
}

// "brd +" sets the host bits, "brd -" clears them (ip-address(8)); both
// reach the kernel as an address.
func TestBroadcastAddr(t *testing.T) {
	c := mustLoad(t, `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.1/24 brd 10.0.0.254
        10.0.0.2/24 brd +
        10.0.0.3/24 brd -
        10.0.0.4/24
    }
}
`)
	var got []string
	for _, a := range c.Instances[0].VirtualIPs {
		got = append(got, fmt.Sprint(a.BroadcastAddr()))
	}
	if diff := cmp.Diff([]string{"10.0.0.254", "10.0.0.255", "10.0.0.0", "invalid IP"}, got); diff != "" {
		t.Errorf("broadcast (-want +got):\n%s", diff)
	}
}
