package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp"
)

// rival is a router that advertises as master beside a MASTER instance and
// whose adverts the instance drops for a difference of configuration
// (vrrp.RivalMaster). Each drops the other's adverts, so both hold the
// addresses: status shows it while its adverts keep coming, and the log
// says it once when it begins.
type rival struct {
	src    netip.Addr
	prio   uint8
	reason vrrp.DropReason
	detail string
	since  time.Time
	last   time.Time
}

// rivalQuiet is how long after its last advert a rival is still reported:
// three of our intervals, and at least a v2 peer's longest usual advert_int
// a few times over.
func rivalQuiet(advertInt time.Duration) time.Duration {
	return max(3*advertInt, 10*time.Second)
}

// current reports whether r is heard as of now by an instance advertising
// every advertInt.
func (r *rival) current(now time.Time, advertInt time.Duration) bool {
	return r.src.IsValid() && now.Sub(r.last) <= rivalQuiet(advertInt)
}

// rivalMaster records a vrrp.RivalMaster; a new rival (another router,
// another reason, or one heard again after a silence) is logged.
func (e *Engine) rivalMaster(now time.Time, in *instance, a vrrp.RivalMaster) {
	r := &in.rival
	fresh := r.src != a.Src || r.reason != a.Reason || !r.current(now, in.spec.VRRP.AdvertInt)
	if fresh {
		*r = rival{src: a.Src, reason: a.Reason, since: now}
	}
	r.prio, r.detail, r.last = a.Priority, a.Detail, now
	if !fresh {
		return
	}
	log, name, msg := e.log, in.spec.VRRP.Name, r.describe()
	e.fx.later(func() {
		log.Warn("another router advertises as MASTER too and drops our adverts: both hold the virtual addresses",
			"instance", name, "peer", a.Src, "priority", a.Priority, "cause", msg)
	})
}

// describe names the difference and what the other router does with our
// adverts, in keepalived 2.2.7's words where it logs them.
func (r *rival) describe() string {
	who := fmt.Sprintf("%v (priority %d) advertises as master too", r.src, r.prio)
	switch r.reason {
	case vrrp.DropAddrCount:
		return fmt.Sprintf(`%s: its virtual_ipaddress list differs (%s); keepalived drops adverts whose address count differs ("received an unexpected ip number count"), so both hold the addresses until the lists agree (a rolling change, or another cluster on this virtual_router_id)`, who, r.detail)
	case vrrp.DropAddrList:
		return fmt.Sprintf(`%s: its virtual_ipaddress list differs (%s); keepalived drops adverts without its addresses ("ip address associated with VRID not present in MASTER advert"), so both hold the addresses until the lists agree (a rolling change, or another cluster on this virtual_router_id)`, who, r.detail)
	case vrrp.DropInterval:
		return fmt.Sprintf(`%s: its advert_int differs (%s); keepalived drops adverts whose interval differs ("advertisement interval mismatch"), so both hold the addresses until the intervals agree`, who, r.detail)
	case vrrp.DropVersion:
		return fmt.Sprintf("%s: its VRRP version differs (%s); each drops the other's adverts, so both hold the addresses until the versions agree", who, r.detail)
	default:
		return fmt.Sprintf("%s: its authentication differs (%s: auth_type or auth_pass; or another cluster uses this virtual_router_id); each drops the other's adverts, so both hold the addresses until they agree", who, r.reason)
	}
}

// rivalWarning is the status warning of a MASTER instance with a current
// rival, "" otherwise.
func (in *instance) rivalWarning(now time.Time, st vrrp.State) string {
	if st != vrrp.StateMaster || !in.rival.current(now, in.spec.VRRP.AdvertInt) {
		return ""
	}
	return in.rival.describe()
}
