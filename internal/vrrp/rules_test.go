package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

type scenario struct {
	name  string
	cfg   Config
	steps []step
}

func runAll(t *testing.T, scs []scenario) {
	t.Helper()
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc.cfg, sc.steps) })
	}
}

// family is one of the three combinations every general rule runs in.
type family struct {
	name          string
	cfg           func() Config
	higher, lower netip.Addr
}

var families = []family{
	{"v2", v2cfg, higher4, lower4},
	{"v3", v3cfg, higher4, lower4},
	{"v3 IPv6", v6cfg, higher6, lower6},
}

func edit(f func(*Received)) func(*Received) { return f }

func interval(cs uint16) func(*Received) {
	return func(r *Received) { r.Advert.AdvertInt = cs }
}

func TestSkewTimeAndMasterDownInterval(t *testing.T) {
	for _, tc := range []struct {
		name     string
		version  uint8
		prio     uint8
		interval time.Duration
		skew     time.Duration
		mdi      time.Duration
	}{
		// RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 s.
		{"RFC 3768 §6.1 v2 priority 100", 2, 100, time.Second, us(609375), us(3609375)},
		{"RFC 3768 §6.1 v2 skew ignores the interval", 2, 100, 5 * time.Second, us(609375), 15*time.Second + us(609375)},
		{"RFC 3768 §6.1 v2 priority 255", 2, 255, time.Second, us(3906), 3*time.Second + us(3906)},
		{"RFC 3768 §6.1 v2 priority 1", 2, 1, time.Second, us(996093), 3*time.Second + us(996093)},
		// RFC 5798 §6.1: ((256 - Priority) * Master_Adver_Interval) / 256.
		{"RFC 5798 §6.1 v3 priority 100, 100 cs", 3, 100, time.Second, us(609375), us(3609375)},
		{"RFC 5798 §6.1 v3 priority 200, 10 cs", 3, 200, 100 * time.Millisecond, us(21875), 300*time.Millisecond + us(21875)},
		// keepalived VRRP_TIMER_SKEW: microseconds, 60.9375 cs is not cut to 60 cs.
		{"keepalived v3 skew keeps sub-centisecond precision", 3, 100, 500 * time.Millisecond, us(304687), 1500*time.Millisecond + us(304687)},
		{"RFC 5798 §6.1 v3 priority 1, 4095 cs", 3, 1, 40950 * time.Millisecond, us(40790039), 3*40950*time.Millisecond + us(40790039)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SkewTime(tc.version, tc.prio, tc.interval); got != tc.skew {
				t.Errorf("SkewTime = %v, want %v", got, tc.skew)
			}
			if got := MasterDownInterval(tc.version, tc.prio, tc.interval); got != tc.mdi {
				t.Errorf("MasterDownInterval = %v, want %v", got, tc.mdi)
			}
		})
	}
}

func TestBackupRules(t *testing.T) {
	const mdi = 3609375 * time.Microsecond // priority 100, 1 s, v2 and v3
	const skew = 609375 * time.Microsecond
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		scs = append(scs,
			scenario{f.name + ": RFC 5798 §6.4.1 start as Backup, §6.4.2 Master_Down_Timer fires: advert, addresses, Master", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup, deadline: mdi},
				{at: mdi - 1, ev: Timeout{}, state: StateBackup, deadline: mdi}, // early: ignored
				{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "master down timer expired: no advert since start")},
					state: StateMaster, deadline: mdi + time.Second},
				// RFC 5798 §6.4.3: Adver_Timer fires: advert, re-arm.
				{at: mdi + time.Second, ev: Timeout{}, want: []Action{send(c, 100)}, state: StateMaster, deadline: mdi + 2*time.Second},
			}},
			scenario{f.name + ": RFC 5798 §6.4.2 higher priority advert resets the Master_Down_Timer", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: 2 * time.Second, ev: rx(c, f.higher, 150), state: StateBackup, deadline: 2*time.Second + mdi},
				{at: 2*time.Second + mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "no advert from master "+f.higher.String())},
					state: StateMaster},
			}},
			scenario{f.name + ": RFC 5798 §6.4.2 equal priority advert resets the timer (>= local)", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: 2 * time.Second, ev: rx(c, f.lower, 100), state: StateBackup, deadline: 2*time.Second + mdi},
			}},
			scenario{f.name + ": RFC 5798 §6.4.2 preempt: lower priority discarded, Backup takes over when the timer fires", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: rx(c, f.higher, 50), want: []Action{dropped(DropLowerPriority, f.higher)}, state: StateBackup, deadline: mdi},
				{at: 2 * time.Second, ev: rx(c, f.higher, 50), want: []Action{dropped(DropLowerPriority, f.higher)}, state: StateBackup, deadline: mdi},
				{at: mdi, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "preempting lower priority master "+f.higher.String()+" (priority 50)")},
					state: StateMaster},
			}},
			scenario{f.name + ": keepalived nopreempt: a lower priority advert resets the timer", with(c, func(c *Config) { c.NoPreempt = true }), []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: rx(c, f.higher, 50), state: StateBackup, deadline: time.Second + mdi},
			}},
			scenario{f.name + ": RFC 5798 §6.4.2 priority 0: Master_Down_Timer = Skew_Time", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: rx(c, f.higher, 150), state: StateBackup, deadline: time.Second + mdi},
				{at: 2 * time.Second, ev: rx(c, f.higher, 0), state: StateBackup, deadline: 2*time.Second + skew},
				{at: 2*time.Second + skew, ev: Timeout{}, want: []Action{send(c, 100), TakeOver{}, trans(StateBackup, StateMaster, "master "+f.higher.String()+" sent priority 0")},
					state: StateMaster, deadline: 3*time.Second + skew},
			}},
		)
	}
	v3 := v3cfg()
	v2 := v2cfg()
	scs = append(scs,
		scenario{"v3: RFC 5798 §6.4.2 Backup learns Master_Adver_Interval, Skew_Time follows it", v3, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v3, higher4, 150, interval(50)), state: StateBackup, deadline: time.Second + 1500*time.Millisecond + us(304687)},
			{at: 2 * time.Second, ev: rx(v3, higher4, 0, interval(50)), state: StateBackup, deadline: 2*time.Second + us(304687)},
		}},
		scenario{"v3 IPv6: RFC 5798 §6.4.2 Backup learns Master_Adver_Interval", v6cfg(), []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v6cfg(), higher6, 150, interval(200)), state: StateBackup, deadline: time.Second + 6*time.Second + us(1218750)},
		}},
		scenario{"v2: RFC 3768 §7.1 and keepalived VRRP_PACKET_DROP: another advert interval from a master we would preempt is dropped, the timer runs on", v2, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v2, higher4, 50, interval(2)), want: []Action{dropped(DropInterval, higher4)}, state: StateBackup, deadline: mdi},
		}},
		scenario{"v2, vigil not RFC 3768 §7.1: a master that keeps us Backup is followed whatever its advert_int (a rolling change), its interval times the Master_Down_Timer", v2, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v2, higher4, 150, interval(2)), want: []Action{IntervalMismatch{Src: higher4, Priority: 150, Theirs: 2 * time.Second, Ours: time.Second}},
				state: StateBackup, deadline: time.Second + 6*time.Second + us(609375)}, // v2 Skew_Time ignores the interval
			{at: 3 * time.Second, ev: rx(v2, higher4, 0, interval(2)), want: []Action{IntervalMismatch{Src: higher4, Priority: 0, Theirs: 2 * time.Second, Ours: time.Second}},
				state: StateBackup, deadline: 3*time.Second + us(609375)},
		}},
		scenario{"keepalived preempt_delay: counted from the first lower priority advert; then discarded", with(v3, func(c *Config) { c.PreemptDelay = 5 * time.Second }), []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v3, higher4, 50), state: StateBackup, deadline: time.Second + mdi},
			{at: 3 * time.Second, ev: rx(v3, higher4, 50), state: StateBackup, deadline: 3*time.Second + mdi},
			{at: 5 * time.Second, ev: rx(v3, higher4, 50), state: StateBackup, deadline: 5*time.Second + mdi},
			// preempt_time = 1 s + 5 s; at 6 s it is no longer in the future.
			{at: 6 * time.Second, ev: rx(v3, higher4, 50), want: []Action{dropped(DropLowerPriority, higher4)}, state: StateBackup, deadline: 5*time.Second + mdi},
			{at: 5*time.Second + mdi, ev: Timeout{}, want: []Action{send(v3, 100), TakeOver{}, trans(StateBackup, StateMaster, "preempting lower priority master")}, state: StateMaster},
		}},
		scenario{"keepalived preempt_delay: an advert at least as good cancels it, the next lower one restarts it", with(v3, func(c *Config) { c.PreemptDelay = 5 * time.Second }), []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v3, higher4, 50), state: StateBackup, deadline: time.Second + mdi},
			{at: 2 * time.Second, ev: rx(v3, higher4, 150), state: StateBackup, deadline: 2*time.Second + mdi},
			{at: 3 * time.Second, ev: rx(v3, higher4, 50), state: StateBackup, deadline: 3*time.Second + mdi},
			{at: 6500 * time.Millisecond, ev: rx(v3, higher4, 50), state: StateBackup, deadline: 6500*time.Millisecond + mdi},
			{at: 8 * time.Second, ev: rx(v3, higher4, 50), want: []Action{dropped(DropLowerPriority, higher4)}, state: StateBackup, deadline: 6500*time.Millisecond + mdi},
		}},
	)
	runAll(t, scs)
}

func TestInitialState(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	var scs []scenario
	for _, f := range families {
		owner := with(f.cfg(), func(c *Config) { c.Priority = 255 })
		scs = append(scs,
			scenario{f.name + ": RFC 5798 §6.4.1 the address owner (priority 255) goes Master at start", owner, []step{
				{at: 0, ev: Start{}, want: []Action{send(owner, 255), TakeOver{}, trans(StateInit, StateMaster, "address owner at startup")},
					state: StateMaster, deadline: time.Second},
				{at: time.Second, ev: Timeout{}, want: []Action{send(owner, 255)}, state: StateMaster, deadline: 2 * time.Second},
			}},
			scenario{f.name + ": keepalived 2.2.7 vrrp_init_state: state MASTER below 255 starts Backup with the full Master_Down_Interval (RFC: no such state)",
				with(f.cfg(), func(c *Config) { c.InitialState = StateMaster }), []step{
					{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup, deadline: mdi},
					{at: time.Second, ev: rx(f.cfg(), f.higher, 150), state: StateBackup, deadline: time.Second + mdi},
				}},
			scenario{f.name + ": keepalived 2.2.7: an owner configured state BACKUP starts Backup (RFC 5798 §6.4.1 would go Master)",
				with(owner, func(c *Config) { c.InitialState = StateBackup }), []step{
					{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "start")}, state: StateBackup, deadline: 3*time.Second + us(3906)},
				}},
		)
	}
	runAll(t, scs)
}

func TestMasterRules(t *testing.T) {
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		up, mdi := toMaster(c)
		at := mdi + 100*time.Millisecond
		backupMDI := at + mdi
		scs = append(scs,
			scenario{f.name + ": RFC 5798 §6.4.3 higher priority advert: release, Backup", c, concat(up, []step{
				{at: at, ev: rx(c, f.lower, 150), want: []Action{send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher priority advert from "+f.lower.String()+" (150 > 100)")},
					state: StateBackup, deadline: backupMDI},
			})},
			scenario{f.name + ": RFC 5798 §6.4.3 equal priority from a greater primary address: Backup", c, concat(up, []step{
				{at: at, ev: rx(c, f.higher, 100), want: []Action{send(c, 100), Release{}, trans(StateMaster, StateBackup, "equal priority 100 advert from higher address "+f.higher.String())},
					state: StateBackup, deadline: backupMDI},
			})},
			scenario{f.name + ": RFC 9568 §6.4.3 and keepalived: equal priority from a smaller address: stay Master, answer at once", c, concat(up, []step{
				{at: at, ev: rx(c, f.lower, 100), want: []Action{send(c, 100), LowerPriorityAdvert{Src: f.lower, Priority: 100}},
					state: StateMaster, deadline: at + time.Second},
			})},
			scenario{f.name + ": keepalived vrrp_state_master_rx, RFC 9568 §6.4.3 (RFC 5798 only discards): lower priority answered at once, Adver_Timer re-armed", c, concat(up, []step{
				{at: at, ev: rx(c, f.higher, 50), want: []Action{send(c, 100), LowerPriorityAdvert{Src: f.higher, Priority: 50}},
					state: StateMaster, deadline: at + time.Second},
			})},
			scenario{f.name + ": keepalived lower_prio_no_advert: lower priority not answered", with(c, func(c *Config) { c.LowerPrioNoAdvert = true }), concat(up, []step{
				{at: at, ev: rx(c, f.higher, 50), want: []Action{LowerPriorityAdvert{Src: f.higher, Priority: 50}},
					state: StateMaster, deadline: mdi + time.Second},
			})},
			scenario{f.name + ": keepalived (RFC 5798 §6.4.3) with lower_prio_no_advert (vrrp_strict sets it): no advert before going Backup", with(c, func(c *Config) { c.LowerPrioNoAdvert = true }), concat(up, []step{
				{at: at, ev: rx(c, f.lower, 150), want: []Action{Release{}, trans(StateMaster, StateBackup, "higher priority")},
					state: StateBackup, deadline: backupMDI},
			})},
			scenario{f.name + ": keepalived higher_prio_send_advert: advert before going Backup, even with lower_prio_no_advert", with(c, func(c *Config) { c.HigherPrioSendAdvert, c.LowerPrioNoAdvert = true, true }), concat(up, []step{
				{at: at, ev: rx(c, f.lower, 150), want: []Action{send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher priority")},
					state: StateBackup, deadline: backupMDI},
			})},
			scenario{f.name + ": RFC 5798 §6.4.3 priority 0: send an advert, reset the Adver_Timer", c, concat(up, []step{
				{at: at, ev: rx(c, f.higher, 0), want: []Action{send(c, 100)}, state: StateMaster, deadline: at + time.Second},
			})},
			scenario{f.name + ": keepalived: equal priority from our own address is dropped", c, concat(up, []step{
				{at: at, ev: rx(c, c.Source, 100), want: []Action{dropped(DropOwnAddress, c.Source)}, state: StateMaster, deadline: mdi + time.Second},
			})},
			scenario{f.name + ": vigil (keepalived re-arms on any packet): an invalid advert does not re-arm the Adver_Timer", c, concat(up, []step{
				{at: at, ev: rx(c, f.higher, 150, edit(func(r *Received) { r.TTL = 1 })), want: []Action{dropped(DropTTL, f.higher)},
					state: StateMaster, deadline: mdi + time.Second},
				{at: mdi + time.Second, ev: Timeout{}, want: []Action{send(c, 100)}, state: StateMaster, deadline: mdi + 2*time.Second},
			})},
		)
	}
	v3 := v3cfg()
	up, mdi := toMaster(v3)
	scs = append(scs, scenario{"v3: RFC 5798 §6.4.3 a master going Backup takes the new master's interval", v3, concat(up, []step{
		{at: mdi, ev: rx(v3, higher4, 150, interval(50)), want: []Action{send(v3, 100), Release{}, trans(StateMaster, StateBackup, "")},
			state: StateBackup, deadline: mdi + 1500*time.Millisecond + us(304687)},
	})})
	owner := with(v3, func(c *Config) { c.Priority = 255 })
	scs = append(scs, scenario{"keepalived vrrp_state_master_rx: two address owners, the one that hears the other drops to 254 and goes Backup (RFC 5798 §7.1 would discard)", owner, []step{
		{at: 0, ev: Start{}, want: []Action{send(owner, 255), TakeOver{}, trans(StateInit, StateMaster, "")}, state: StateMaster, deadline: time.Second},
		{at: 500 * time.Millisecond, ev: rx(owner, lower4, 255), want: []Action{Release{}, trans(StateMaster, StateBackup, "address owner conflict with 192.168.1.104: priority lowered to 254")},
			state: StateBackup, deadline: 500*time.Millisecond + 3*time.Second + us(7812)},
	}})
	runAll(t, scs)
}

func TestOwnerConflictLowersPriority(t *testing.T) {
	owner := with(v3cfg(), func(c *Config) { c.Priority = 255 })
	inst, _ := New(owner)
	inst.Step(t0, Start{})
	inst.Step(t0, rx(owner, lower4, 255))
	if s := inst.Status(); s.Priority != 254 || s.BasePriority != 254 || s.MasterAddr != lower4 || s.MasterPriority != 255 {
		t.Errorf("after owner conflict: %+v", s)
	}
	// No longer an owner, tracking now applies (keepalived sets base_priority too).
	inst.Step(t0, PriorityChanged{Priority: 200})
	if p := inst.Status().Priority; p != 200 {
		t.Errorf("priority after PriorityChanged: %d", p)
	}
}

func TestDrops(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	start := step{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi}
	// dropIn: in Backup, r is dropped for reason and the timer runs on.
	dropIn := func(c Config, r Received, reason DropReason) []step {
		return []step{start, {at: time.Second, ev: r, want: []Action{dropped(reason, r.Src.Unmap())}, state: StateBackup, deadline: mdi}}
	}
	acceptIn := func(c Config, r Received) []step {
		return []step{start, {at: time.Second, ev: r, state: StateBackup, deadline: time.Second + mdi}}
	}
	ttl := func(n int) func(*Received) { return func(r *Received) { r.TTL = n } }
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		scs = append(scs,
			scenario{f.name + ": RFC 3768 §7.1, RFC 5798 §5.1.1.3 (TTL) and §5.1.2.3 (hop limit): not 255 is dropped", c, dropIn(c, rx(c, f.higher, 150, ttl(254)), DropTTL)},
			scenario{f.name + ": a TTL the socket did not report is not checked", c, acceptIn(c, rx(c, f.higher, 150, ttl(-1)))},
			scenario{f.name + ": RFC 5798 §7.1 VRID not ours is dropped", c, dropIn(c, rx(c, f.higher, 150, edit(func(r *Received) { r.Advert.VRID = 56 })), DropVRID)},
			scenario{f.name + ": RFC 3768 / RFC 5798 §7.1: address count differs from a lower priority master, dropped (the backup preempts)", c,
				dropIn(c, rx(c, f.higher, 50, edit(func(r *Received) {
					r.Advert.Addrs = append(r.Advert.Addrs, r.Advert.Addrs[0].Next())
					r.Advert.CountIPAddrs++
				})), DropAddrCount)},
			scenario{f.name + ": RFC 3768 / RFC 5798 §7.1: one of our VIPs missing from a lower priority master, dropped", c,
				dropIn(c, rx(c, f.higher, 50, edit(func(r *Received) {
					r.Advert.Addrs = []netip.Addr{r.Advert.Addrs[0].Next(), r.Advert.Addrs[0]}[:len(r.Advert.Addrs)]
				})), DropAddrList)},
			scenario{f.name + ": keepalived: a unicast advert on a multicast instance is dropped", c, dropIn(c, rx(c, f.higher, 150, edit(func(r *Received) { r.Unicast = true })), DropCastMismatch)},
			scenario{f.name + ": keepalived vrrp_dispatcher_read: adverts are ignored before Start", c, []step{
				{at: 0, ev: rx(c, f.higher, 150), want: []Action{dropped(DropInactive, f.higher)}, state: StateInit, deadline: noTimer},
			}},
		)
	}
	v2, v3, v6 := v2cfg(), v3cfg(), v6cfg()
	scs = append(scs,
		scenario{"v3: RFC 5798 §7.1 a VRRPv2 advert on a VRRPv3 instance is dropped", v3, dropIn(v3, rx(v2, higher4, 150), DropVersion)},
		scenario{"v2: RFC 5798 §7.1 a VRRPv3 advert on a VRRPv2 instance is dropped", v2, dropIn(v2, rx(v3, higher4, 150), DropVersion)},
		scenario{"v3: IPv6 source on an IPv4 instance is dropped", v3, dropIn(v3, rx(v3, higher6, 150), DropFamily)},
		scenario{"v2: RFC 2338 §7.1 PASS: wrong password", v2, dropIn(v2, rx(v2, higher4, 150, edit(func(r *Received) { r.Advert.AuthData[0] = '2' })), DropAuthFailure)},
		scenario{"v2: RFC 2338 §7.1 auth type differs from ours", v2, dropIn(v2, rx(v2, higher4, 150, edit(func(r *Received) {
			r.Advert.AuthType, r.Advert.AuthData = packet.AuthNone, [8]byte{}
		})), DropAuthType)},
		scenario{"v2: keepalived vrrp_check_packet: auth type AH on a PASS instance", v2, dropIn(v2, rx(v2, higher4, 150, edit(func(r *Received) { r.Advert.AuthType = packet.AuthAH })), DropAuthType)},
		scenario{"v2: no authentication configured, none received", with(v2, func(c *Config) { c.AuthType, c.AuthPass = 0, [8]byte{} }),
			acceptIn(v2, rx(with(v2, func(c *Config) { c.AuthType, c.AuthPass = 0, [8]byte{} }), higher4, 150))},
		scenario{"v3: RFC 9568 erratum 8301 (vigil; keepalived 2.2.7 accepts): interval 0 is dropped", v3, dropIn(v3, rx(v3, higher4, 150, interval(0)), DropZeroInterval)},
		scenario{"v3 IPv6: RFC 9568 erratum 8301: interval 0 is dropped", v6, dropIn(v6, rx(v6, higher6, 150, interval(0)), DropZeroInterval)},
	)

	// keepalived skip_check_adv_addr: the address list is not checked on
	// adverts from the master already known.
	skip := with(v3, func(c *Config) { c.SkipCheckAdvAddr = true })
	badList := edit(func(r *Received) { r.Advert.Addrs = []netip.Addr{lower4}; r.Advert.CountIPAddrs = 1 })
	scs = append(scs, scenario{"keepalived skip_check_adv_addr: list checked on a new master, not on the known one", skip, []step{
		start,
		{at: time.Second, ev: rx(skip, higher4, 150, badList), want: []Action{mismatchOf(higher4, 150, []netip.Addr{lower4}, 1)}, state: StateBackup, deadline: time.Second + mdi},
		{at: 2 * time.Second, ev: rx(skip, higher4, 150), state: StateBackup, deadline: 2*time.Second + mdi},
		{at: 3 * time.Second, ev: rx(skip, higher4, 150, badList), state: StateBackup, deadline: 3*time.Second + mdi},
		{at: 4 * time.Second, ev: rx(skip, lower4, 50, badList), want: []Action{dropped(DropAddrList, lower4)}, state: StateBackup, deadline: 3*time.Second + mdi},
	}})

	// Unicast.
	uni := with(v3, func(c *Config) {
		c.Unicast = true
		c.Peers = []Peer{{Addr: higher4}}
	})
	checked := with(uni, func(c *Config) {
		c.CheckUnicastSrc = true
		c.Peers = []Peer{{Addr: higher4, MinTTL: 250}}
	})
	scs = append(scs,
		scenario{"keepalived: unicast adverts' TTL is not checked (routed peers)", uni, acceptIn(uni, rx(uni, higher4, 150, ttl(64)))},
		scenario{"keepalived 2.2.7: without check_unicast_src an advert from a non-peer is accepted (reported once per source)", uni, []step{start,
			{at: time.Second, ev: rx(uni, lower4, 150), want: []Action{NonPeerAdvert{Src: lower4}}, state: StateBackup, deadline: time.Second + mdi},
			{at: 2 * time.Second, ev: rx(uni, lower4, 150), state: StateBackup, deadline: 2*time.Second + mdi},
			{at: 3 * time.Second, ev: rx(uni, higher4, 150), state: StateBackup, deadline: 3*time.Second + mdi},
			{at: 4 * time.Second, ev: rx(uni, lower4, 150), state: StateBackup, deadline: 4*time.Second + mdi}}},
		scenario{"keepalived check_unicast_src: an advert from a non-peer is dropped", checked, dropIn(checked, rx(checked, lower4, 150), DropNotPeer)},
		scenario{"keepalived check_unicast_src: a peer's TTL outside min_ttl..max_ttl is dropped", checked, dropIn(checked, rx(checked, higher4, 150, ttl(249)), DropTTL)},
		scenario{"keepalived check_unicast_src: a peer within its TTL range is accepted", checked, acceptIn(checked, rx(checked, higher4, 150, ttl(250)))},
		scenario{"keepalived: a multicast advert on a unicast instance is dropped", uni, dropIn(uni, rx(uni, higher4, 150, edit(func(r *Received) { r.Unicast = false })), DropCastMismatch)},
	)
	runAll(t, scs)
}

func TestChecksumVariants(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	start := step{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi}
	mode := func(m packet.ChecksumMode) func(*Received) { return func(r *Received) { r.Advert.ChecksumMode = m } }
	v3 := v3cfg()
	asV2 := with(v3, func(c *Config) { c.V3ChecksumAsV2 = true })
	uni := with(v3, func(c *Config) { c.Unicast = true; c.Peers = []Peer{{Addr: higher4}} })
	never := with(uni, func(c *Config) { c.OldUnicastChecksum = OldChecksumNever })
	always := with(uni, func(c *Config) { c.OldUnicastChecksum = OldChecksumAlways })
	up, mdiU := toMaster(uni)
	checkedUni := with(uni, func(c *Config) { c.CheckUnicastSrc = true })
	upC, mdiC := toMaster(checkedUni)
	runAll(t, []scenario{
		{"keepalived 2.2.7 default: a no-pseudo-header checksum (RFC 9568 §5.2.8) is dropped", v3, []step{start,
			{at: time.Second, ev: rx(v3, higher4, 150, mode(packet.ChecksumNoPseudoHeader)), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateBackup, deadline: mdi}}},
		{"keepalived v3_checksum_as_v2: no-pseudo-header accepted, pseudo-header dropped", asV2, []step{start,
			{at: time.Second, ev: rx(asV2, higher4, 150, mode(packet.ChecksumNoPseudoHeader)), state: StateBackup, deadline: time.Second + mdi},
			{at: 2 * time.Second, ev: rx(asV2, higher4, 150), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateBackup, deadline: time.Second + mdi},
			{at: time.Second + mdi, ev: Timeout{}, want: []Action{sendMode(asV2, 100, packet.ChecksumNoPseudoHeader), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
		}},
		{"keepalived CHKSUM_COMPATIBILITY_AUTO: a unicast peer's 224.0.0.18 checksum switches us to it, both ways", uni, concat(up, []step{
			{at: mdiU + 100*time.Millisecond, ev: rx(uni, higher4, 50), want: []Action{send(uni, 100), LowerPriorityAdvert{Src: higher4, Priority: 50}}, state: StateMaster},
			{at: mdiU + 200*time.Millisecond, ev: rx(uni, higher4, 50, mode(packet.ChecksumMulticastPseudoHeader)),
				want: []Action{ChecksumFallback{Src: higher4}, sendMode(uni, 100, packet.ChecksumMulticastPseudoHeader), LowerPriorityAdvert{Src: higher4, Priority: 50}}, state: StateMaster},
			{at: mdiU + 300*time.Millisecond, ev: rx(uni, higher4, 50), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateMaster},
		})},
		{"vigil, not keepalived: a non-peer's 224.0.0.18 checksum is dropped before it can switch ours", checkedUni, concat(upC, []step{
			{at: mdiC + 100*time.Millisecond, ev: rx(checkedUni, lower4, 50, mode(packet.ChecksumMulticastPseudoHeader)),
				want: []Action{dropped(DropNotPeer, lower4)}, state: StateMaster},
			{at: mdiC + 200*time.Millisecond, ev: rx(checkedUni, higher4, 50), want: []Action{send(checkedUni, 100), LowerPriorityAdvert{Src: higher4, Priority: 50}}, state: StateMaster},
		})},
		{"keepalived old_unicast_checksum never: no fallback", never, []step{start,
			{at: time.Second, ev: rx(never, higher4, 150, mode(packet.ChecksumMulticastPseudoHeader)), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateBackup, deadline: mdi}}},
		{"keepalived old_unicast_checksum: send and accept only 224.0.0.18 pseudo-headers", always, []step{start,
			{at: time.Second, ev: rx(always, higher4, 150), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateBackup, deadline: mdi},
			{at: 2 * time.Second, ev: rx(always, higher4, 150, mode(packet.ChecksumMulticastPseudoHeader)), state: StateBackup, deadline: 2*time.Second + mdi},
			{at: 2*time.Second + mdi, ev: Timeout{}, want: []Action{sendMode(always, 100, packet.ChecksumMulticastPseudoHeader), TakeOver{}, trans(StateBackup, StateMaster, "")}, state: StateMaster},
		}},
		{"v2: only the message checksum exists", v2cfg(), []step{start,
			{at: time.Second, ev: rx(v2cfg(), higher4, 150, mode(packet.ChecksumNoPseudoHeader)), want: []Action{dropped(DropChecksumMode, higher4)}, state: StateBackup, deadline: mdi}}},
	})
}

func TestFault(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		up, m := toMaster(c)
		scs = append(scs,
			scenario{f.name + ": keepalived down_instance: a master whose interface goes down sends priority 0 (once; keepalived twice), releases, FAULT", c, concat(up, []step{
				{at: m + time.Second/2, ev: LinkChanged{Up: false}, want: []Action{send(c, 0), Release{}, trans(StateMaster, StateFault, "fault: interface down")},
					state: StateFault, deadline: noTimer},
				{at: m + time.Second, ev: rx(c, f.higher, 150), want: []Action{dropped(DropInactive, f.higher)}, state: StateFault, deadline: noTimer},
				{at: m + 2*time.Second, ev: Timeout{}, state: StateFault, deadline: noTimer},
			})},
			scenario{f.name + ": keepalived down_instance: a Backup with a failing weight-0 tracker goes FAULT, no timer", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: FaultChanged{Fault: true, Reason: "track_script chk_nginx failed"}, want: []Action{trans(StateBackup, StateFault, "fault: track_script chk_nginx failed")},
					state: StateFault, deadline: noTimer},
			}},
			scenario{f.name + ": keepalived 2.2.7 try_up_instance: leaving FAULT goes Backup with Master_Down_Interval", c, []step{
				{at: 0, ev: LinkChanged{Up: false}, state: StateInit, deadline: noTimer},
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateFault, "fault at start: interface down")}, state: StateFault, deadline: noTimer},
				{at: time.Second, ev: LinkChanged{Up: true}, want: []Action{trans(StateFault, StateBackup, "fault cleared: interface up")}, state: StateBackup, deadline: time.Second + mdi},
			}},
		)
		owner := with(c, func(c *Config) { c.Priority = 255 })
		scs = append(scs, scenario{f.name + ": keepalived 2.2.7 try_up_instance: the address owner too leaves FAULT as Backup (wantstate was FAULT), not Master", owner, []step{
			{at: 0, ev: Start{}, want: []Action{send(owner, 255), TakeOver{}, trans(StateInit, StateMaster, "")}, state: StateMaster, deadline: time.Second},
			{at: time.Second / 2, ev: FaultChanged{Fault: true}, want: []Action{send(owner, 0), Release{}, trans(StateMaster, StateFault, "fault: tracker failed")}, state: StateFault, deadline: noTimer},
			{at: time.Second, ev: FaultChanged{Fault: false}, want: []Action{trans(StateFault, StateBackup, "fault cleared: trackers recovered")},
				state: StateBackup, deadline: time.Second + 3*time.Second + us(3906)},
		}})
	}
	v3 := v3cfg()
	scs = append(scs,
		scenario{"interface and tracker faults must both clear", v3, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: LinkChanged{Up: false}, want: []Action{trans(StateBackup, StateFault, "interface down")}, state: StateFault, deadline: noTimer},
			{at: 2 * time.Second, ev: FaultChanged{Fault: true, Reason: "chk"}, state: StateFault, deadline: noTimer},
			{at: 3 * time.Second, ev: LinkChanged{Up: true}, state: StateFault, deadline: noTimer},
			{at: 4 * time.Second, ev: FaultChanged{Fault: false}, want: []Action{trans(StateFault, StateBackup, "")}, state: StateBackup, deadline: 4*time.Second + mdi},
		}},
		scenario{"keepalived vrrp_state_leave_fault: a v3 Backup forgets the learned interval in FAULT", v3, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v3, higher4, 150, interval(50)), state: StateBackup, deadline: time.Second + 1500*time.Millisecond + us(304687)},
			{at: 2 * time.Second, ev: LinkChanged{Up: false}, want: []Action{trans(StateBackup, StateFault, "")}, state: StateFault, deadline: noTimer},
			{at: 3 * time.Second, ev: LinkChanged{Up: true}, want: []Action{trans(StateFault, StateBackup, "")}, state: StateBackup, deadline: 3*time.Second + mdi},
		}},
	)
	runAll(t, scs)
}

func TestPriorityChanged(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	v3 := v3cfg()
	up, m := toMaster(v3)
	runAll(t, []scenario{
		{"keepalived vrrp_set_effective_priority: a Backup's deadline moves by the change of the down interval", v3, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: PriorityChanged{Priority: 200}, state: StateBackup, deadline: 3*time.Second + us(218750)},
		}},
		{"keepalived: after an ignored advert ms_down_timer is the time left, so a priority change re-counts from that advert", v3, []step{
			{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
			{at: time.Second, ev: rx(v3, higher4, 50), want: []Action{dropped(DropLowerPriority, higher4)}, state: StateBackup, deadline: mdi},
			{at: 2 * time.Second, ev: PriorityChanged{Priority: 200}, state: StateBackup, deadline: time.Second + 3*time.Second + us(218750)},
		}},
		{"vigil (not keepalived): a master advertises a new priority at once and re-arms its Adver_Timer", v3, concat(up, []step{
			{at: m + time.Second/2, ev: PriorityChanged{Priority: 150}, want: []Action{send(v3, 150)}, state: StateMaster, deadline: m + time.Second/2 + time.Second},
			{at: m + time.Second/2 + time.Second, ev: Timeout{}, want: []Action{send(v3, 150)}, state: StateMaster},
		})},
		{"an unchanged effective priority sends nothing extra", v3, concat(up, []step{
			{at: m + time.Second/2, ev: PriorityChanged{Priority: 300}, want: []Action{send(v3, 254)}, state: StateMaster},
			{at: m + time.Second/2 + time.Millisecond, ev: PriorityChanged{Priority: 260}, state: StateMaster, deadline: m + time.Second/2 + time.Second},
		})},
	})
	inst, _ := New(v3)
	for _, tc := range []struct{ in, want int }{{300, 254}, {-5, 1}, {0, 1}, {255, 254}, {120, 120}} {
		inst.Step(t0, PriorityChanged{Priority: tc.in})
		if p := inst.Status().Priority; int(p) != tc.want {
			t.Errorf("keepalived clamps %d to %d, got %d", tc.in, tc.want, p)
		}
	}
	owner, _ := New(with(v3, func(c *Config) { c.Priority = 255 }))
	owner.Step(t0, PriorityChanged{Priority: 100})
	if p := owner.Status().Priority; p != 255 {
		t.Errorf("keepalived: the address owner ignores tracking, got priority %d", p)
	}
}

func TestStop(t *testing.T) {
	const mdi = 3609375 * time.Microsecond
	var scs []scenario
	for _, f := range families {
		c := f.cfg()
		up, m := toMaster(c)
		scs = append(scs,
			scenario{f.name + ": RFC 5798 §6.4.3 Shutdown: a master sends priority 0 and releases", c, concat(up, []step{
				{at: m + time.Second/2, ev: Stop{}, want: []Action{send(c, 0), Release{}, trans(StateMaster, StateStopped, "stop")}, state: StateStopped, deadline: noTimer},
				{at: m + time.Second, ev: rx(c, f.higher, 150), want: []Action{dropped(DropInactive, f.higher)}, state: StateStopped, deadline: noTimer},
			})},
			scenario{f.name + ": RFC 5798 §6.4.2 Shutdown: a Backup cancels its timer; Start runs it again", c, []step{
				{at: 0, ev: Start{}, want: []Action{trans(StateInit, StateBackup, "")}, state: StateBackup, deadline: mdi},
				{at: time.Second, ev: Stop{}, want: []Action{trans(StateBackup, StateStopped, "stop")}, state: StateStopped, deadline: noTimer},
				{at: 2 * time.Second, ev: Start{}, want: []Action{trans(StateStopped, StateBackup, "start")}, state: StateBackup, deadline: 2*time.Second + mdi},
			}},
		)
	}
	runAll(t, scs)
}

func TestConfigNormalisation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want func(Config) bool
	}{
		{"keepalived: no state and priority 255 means MASTER", with(v3cfg(), func(c *Config) { c.Priority = 255 }),
			func(c Config) bool { return c.InitialState == StateMaster }},
		{"keepalived: no state below 255 means BACKUP", v3cfg(), func(c Config) bool { return c.InitialState == StateBackup }},
		{"keepalived: nopreempt is incompatible with priority 255", with(v3cfg(), func(c *Config) { c.Priority, c.NoPreempt, c.InitialState = 255, true, StateBackup }),
			func(c Config) bool { return !c.NoPreempt }},
		{"keepalived: nopreempt and preempt_delay will not work with state MASTER", with(v3cfg(), func(c *Config) {
			c.InitialState, c.NoPreempt, c.PreemptDelay = StateMaster, true, time.Second
		}), func(c Config) bool { return !c.NoPreempt && c.PreemptDelay == 0 }},
		{"down_timer_adverts defaults to 3", v3cfg(), func(c Config) bool { return c.DownTimerAdverts == 3 }},
		{"handover timeout defaults to the lowest priority's Master_Down_Interval plus an interval", v3cfg(),
			func(c Config) bool { return c.HandoverTimeout == 4*time.Second+us(996093) }},
		{"IPv4-mapped addresses are unmapped", with(v3cfg(), func(c *Config) { c.VIPs = []netip.Addr{netip.AddrFrom16(vip4.As16())} }),
			func(c Config) bool { return c.VIPs[0] == vip4 }},
		{"zones are dropped from VIPs and peers, kept on the source", with(v6cfg(), func(c *Config) {
			c.Source = self6.WithZone("eth0")
			c.VIPs = []netip.Addr{vip6ll.WithZone("eth0"), vip6}
			c.Peers = []Peer{{Addr: higher6.WithZone("eth0")}}
		}), func(c Config) bool {
			return c.VIPs[0] == vip6ll && c.Peers[0].Addr == higher6 && c.Source.Zone() == "eth0"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(inst.Config()) {
				t.Errorf("normalised: %+v", inst.Config())
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"VRID 0", with(v3cfg(), func(c *Config) { c.VRID = 0 }), "virtual_router_id 0"},
		{"priority 0", with(v3cfg(), func(c *Config) { c.Priority = 0 }), "priority 0"},
		{"no source", with(v3cfg(), func(c *Config) { c.Source = netip.Addr{} }), "no source address"},
		{"version 4", with(v3cfg(), func(c *Config) { c.Version = 4 }), "version 4"},
		{"v2 fractional interval", with(v2cfg(), func(c *Config) { c.AdvertInt = 1500 * time.Millisecond }), "whole seconds"},
		{"v2 interval 256 s", with(v2cfg(), func(c *Config) { c.AdvertInt = 256 * time.Second }), "whole seconds"},
		{"v3 interval 5 ms", with(v3cfg(), func(c *Config) { c.AdvertInt = 5 * time.Millisecond }), "centiseconds"},
		{"v3 interval 41 s", with(v3cfg(), func(c *Config) { c.AdvertInt = 41 * time.Second }), "centiseconds"},
		{"v3 with auth", with(v3cfg(), func(c *Config) { c.AuthType = packet.AuthPass }), "no authentication"},
		{"v2 AH over IPv6", with(v2cfg(), func(c *Config) { c.AuthType, c.Source, c.VIPs = packet.AuthAH, self6, []netip.Addr{vip6} }), "no authentication"},
		{"v3 without VIP", with(v3cfg(), func(c *Config) { c.VIPs = nil }), "at least one virtual address"},
		{"VIP of the other family", with(v3cfg(), func(c *Config) { c.VIPs = []netip.Addr{vip6} }), "not of the family"},
		{"peer of the other family", with(v3cfg(), func(c *Config) { c.Peers = []Peer{{Addr: higher6}} }), "unicast peer"},
		{"peer TTL range", with(v3cfg(), func(c *Config) { c.Peers = []Peer{{Addr: higher4, MinTTL: 200, MaxTTL: 100}} }), "TTL range"},
		{"down_timer_adverts 101", with(v3cfg(), func(c *Config) { c.DownTimerAdverts = 101 }), "down_timer_adverts"},
		{"initial state FAULT", with(v3cfg(), func(c *Config) { c.InitialState = StateFault }), "initial state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "vrrp: instance ") {
				t.Fatalf("New: %v, want an error containing %q", err, tc.msg)
			}
		})
	}
}

func TestDropReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		s := r.String()
		if seen[s] || strings.HasPrefix(s, "drop_") {
			t.Errorf("%d: %q duplicate or unnamed", r, s)
		}
		seen[s] = true
	}
	if len(seen) != int(dropReasonEnd)-1 {
		t.Errorf("%d names for %d reasons", len(seen), dropReasonEnd-1)
	}
}

func TestStatusAndCounters(t *testing.T) {
	c := v3cfg()
	inst, _ := New(c)
	inst.Step(t0, Start{})
	inst.Step(t0.Add(time.Second), rx(c, higher4, 150))
	inst.Step(t0.Add(2*time.Second), rx(c, higher4, 150, edit(func(r *Received) { r.TTL = 1 })))
	inst.Step(t0.Add(3*time.Second), rx(c, higher4, 0))
	s := inst.Status()
	if s.State != StateBackup || s.MasterAddr != higher4 || s.MasterPriority != 150 || s.Priority != 100 ||
		s.Counters.AdvertsReceived != 2 || s.Counters.PriorityZeroReceived != 1 || s.Counters.DroppedFor(DropTTL) != 1 ||
		!s.Deadline.Equal(t0.Add(3*time.Second+us(609375))) || s.LastReason != "start" || !s.LinkUp {
		t.Fatalf("status after backup traffic: %+v", s)
	}
	inst.Step(s.Deadline, Timeout{})
	inst.Step(s.Deadline, Stop{})
	s = inst.Status()
	if s.State != StateStopped || s.Counters.BecomeMaster != 1 || s.Counters.ReleaseMaster != 1 ||
		s.Counters.AdvertsSent != 2 || s.Counters.PriorityZeroSent != 1 || s.VIPsHeld || s.MasterAddr != self4 {
		t.Fatalf("status after master and stop: %+v", s)
	}
}

// IPv6 link-local sources arrive with the interface as zone; configuration
// may carry zones too. Neither may break the tie-break or the peer check.
func TestIPv6Zones(t *testing.T) {
	c := with(v6cfg(), func(c *Config) {
		c.Source = self6.WithZone("eth0")
		c.Unicast, c.CheckUnicastSrc = true, true
		c.Peers = []Peer{{Addr: higher6.WithZone("eth0")}, {Addr: lower6}}
	})
	up, m := toMaster(c)
	runScenario(t, c, concat(up, []step{
		{at: m + time.Second/2, ev: rx(c, lower6.WithZone("eth0"), 100), want: []Action{send(c, 100), LowerPriorityAdvert{Src: lower6, Priority: 100}}, state: StateMaster},
		{at: m + time.Second, ev: rx(c, higher6.WithZone("eth0"), 100), want: []Action{send(c, 100), Release{}, trans(StateMaster, StateBackup, "higher address fe80::106")}, state: StateBackup},
	}))
}

// An IPv6 advert that crossed a router says "hop limit" in the drop's
// detail (operators grep for the IPv6 word), an IPv4 one "TTL".
func TestTTLDropDetailNamesTheFamily(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		src  netip.Addr
		want string
	}{
		{v3cfg(), higher4, "TTL 64, want 255"},
		{v6cfg(), higher6, "hop limit 64, want 255"},
	} {
		i, err := New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		i.Step(t0, Start{})
		var got string
		hop64 := func(r *Received) { r.TTL = 64 }
		for _, a := range i.Step(t0.Add(time.Millisecond), rx(c.cfg, c.src, 150, hop64)) {
			if d, ok := a.(Dropped); ok && d.Reason == DropTTL {
				got = d.Detail
			}
		}
		if got != c.want {
			t.Errorf("%s: drop detail %q, want %q", c.cfg.Name, got, c.want)
		}
	}
}
