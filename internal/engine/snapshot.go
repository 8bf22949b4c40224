package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// Snapshot returns the state of every instance, built inside the loop.
func (e *Engine) Snapshot(ctx context.Context) (status.Snapshot, error) {
	var s status.Snapshot
	err := e.do(ctx, func() { s = e.snapshot() })
	return s, err
}

// Ping returns when the engine's loop has run one request: it proves the
// loop turns (the systemd watchdog's question).
func (e *Engine) Ping(ctx context.Context) error {
	return e.do(ctx, func() {})
}

func (e *Engine) snapshot() status.Snapshot {
	s := status.Snapshot{
		Daemon: status.Daemon{
			Version:    e.opts.Version,
			PID:        os.Getpid(),
			Started:    e.started,
			ConfigFile: e.opts.ConfigFile,
			RouterID:   e.spec.RouterID,

			StaticRouteErrors: e.staticErrors.Load(),
		},
		Transitions: e.timeline.List(),
	}
	for _, c := range e.conns {
		for reason, n := range c.stats.dropped {
			if s.Daemon.Dropped == nil {
				s.Daemon.Dropped = map[string]uint64{}
			}
			s.Daemon.Dropped[reason] += n
		}
	}
	s.Daemon.NADropped = e.naDropped()
	if t, ok := e.timer.(*fdTimer); ok {
		s.Daemon.LateTimerWakeups = t.backstops.Load()
	}
	if len(e.insts) > 0 {
		s.Instances = make([]status.Instance, 0, len(e.insts))
	}
	for _, in := range e.insts {
		s.Instances = append(s.Instances, e.instanceStatus(in))
	}
	for _, g := range e.groups {
		sg := status.SyncGroup{Name: g.spec.Name, State: g.g.State().String()}
		for _, in := range g.ins {
			sg.Instances = append(sg.Instances, in.spec.VRRP.Name)
		}
		s.SyncGroups = append(s.SyncGroups, sg)
	}
	return s
}

func (e *Engine) instanceStatus(in *instance) status.Instance {
	st := in.m.Status()
	fam := "inet"
	if in.spec.IPv6 {
		fam = "inet6"
	}
	si := status.Instance{
		Name:              in.spec.VRRP.Name,
		Interface:         in.spec.Interface,
		Family:            fam,
		Version:           int(st.Version),
		VRID:              int(st.VRID),
		State:             st.State.String(),
		BasePriority:      int(st.BasePriority),
		EffectivePriority: int(st.Priority),
		AdvertInterval:    status.Duration(in.spec.VRRP.AdvertInt),
		Since:             st.LastTransition,
		Reason:            st.LastReason,
		Counters: status.Counters{
			AdvertsSent:     st.Counters.AdvertsSent,
			AdvertsReceived: st.Counters.AdvertsReceived,
			Transitions:     in.transitions,
			BecameMaster:    st.Counters.BecomeMaster,
			ReleasedMaster:  st.Counters.ReleaseMaster,
			PriorityZeroRx:  st.Counters.PriorityZeroReceived,
			PriorityZeroTx:  st.Counters.PriorityZeroSent,
			AddrMismatch:    st.Counters.AddrMismatch,
			VIPsRestored:    in.restored,
			VIPConflicts:    in.conflicts,
			VIPClaimsLeft:   in.leftovers,
		},
		AHSequence: st.AHSequence,
	}
	// The address list warning speaks of the master we follow; a MASTER
	// (one that heard a leaving master's priority 0 too) has a rival or
	// nothing to say.
	if st.State == vrrp.StateMaster {
		si.Warning = in.rivalWarning(time.Now(), st.State)
		if si.Warning != "" {
			si.RivalMaster = in.rival.src.String()
		}
	} else {
		si.Warning = in.mismatch
	}
	si.Warning = joinWarnings(si.Warning, oldSumWarning(in, st))
	if st.State == vrrp.StateMaster {
		si.Master = in.src.String()
	} else if st.MasterAddr.IsValid() && !st.MasterAddr.IsUnspecified() {
		si.Master = st.MasterAddr.String()
	}
	if in.group != nil {
		si.SyncGroup = in.group.spec.Name
	}
	for _, v := range in.spec.VIPs {
		si.VIPs = append(si.VIPs, v.Prefix.String())
	}
	for _, v := range in.spec.ExcludedVIPs {
		si.ExcludedVIPs = append(si.ExcludedVIPs, v.Prefix.String())
	}
	si.VIPsHeld = e.kernelHolds(in)
	si.MissingRoutes = e.missingRoutes(in)
	e.vmacStatus(in, &si)
	si.GARPDelay = status.Duration(in.spec.GARP.Delay)
	if st.MasterPriority > 0 {
		si.MasterPriority = int(st.MasterPriority)
	}
	drops := map[string]uint64{}
	for _, r := range vrrp.DropReasons() {
		if n := st.Counters.DroppedFor(r); n > 0 {
			drops[r.String()] = n
		}
	}
	maps.Copy(drops, in.limiter.counts())
	if len(drops) > 0 {
		si.Counters.Dropped = drops
	}
	si.Trackers = e.trackerStatus(in)
	e.opsStatus(in, &si, st)
	return si
}

// oldSumWarning describes an instance that sends the old VRRPv3 unicast
// checksum because an advert used it, not because it was configured to.
func oldSumWarning(in *instance, st vrrp.Status) string {
	if st.TxChecksum != packet.ChecksumMulticastPseudoHeader || in.spec.VRRP.OldUnicastChecksum == vrrp.OldChecksumAlways {
		return ""
	}
	return fmt.Sprintf("sending the old VRRPv3 unicast checksum since an advert from %s at %s used it (peers with old_unicast_checksum never drop our adverts)",
		in.oldSumFrom, in.oldSumAt.UTC().Format(time.TimeOnly))
}

// joinWarnings joins the non-empty warnings with "; ".
func joinWarnings(ws ...string) string {
	var out []string
	for _, w := range ws {
		if w != "" {
			out = append(out, w)
		}
	}
	return strings.Join(out, "; ")
}
