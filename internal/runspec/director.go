package runspec

import (
	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/script"
)

// DirectorSpec is the virtual-server half of a configuration: what the
// director installs in the kernel's load balancer and how it checks the
// real servers.
type DirectorSpec struct {
	// Backend is lvs_backend: "auto", "nftables" or "ipvs".
	Backend  string
	LVSFlush bool
	// LVSFlushOnStop is global_defs lvs_flush_on_stop: "", "ALL" (at exit
	// the IPVS backend removes every service in the kernel, not only its
	// own) or "VS". With either, omega runs no real server's notify_down
	// at stop (lb.PolicyOptions.FlushOnStop).
	LVSFlushOnStop string
	// SyncedConntrack is set with conntrack_sync: the nftables NAT data
	// plane then holds back a TCP packet that would start a connection
	// without SYN (see nft.Options.SyncedConntrack).
	SyncedConntrack bool
	RSInitNotifies  bool
	VirtualServers  []lb.VirtualServer // as corrected by internal/config
	// Checks are the real servers with their checkers, by lb.RealID.
	Checks []RealCheck
	// Scripts are the quorum_up/down and notify_up/down scripts, by the
	// command text the lb specs carry.
	Scripts map[string]*script.Prepared
}

// RealCheck is one real server of one virtual server and its checkers.
type RealCheck struct {
	ID       lb.RealID
	Weight   int
	Checkers []CheckerSpec
}

// CheckerSpec is one checker, ready to run. Name identifies it in status;
// Key is its configuration, for reload equality (the Checker value holds
// functions and cannot be compared).
type CheckerSpec struct {
	Name    string
	Key     string
	Policy  check.Policy
	Checker check.Checker `json:"-"`
}

// CheckerKey names one checker of one real server across a reload.
type CheckerKey struct {
	Real lb.RealID
	Key  string // CheckerSpec.Key
}

// CheckerKeys lists the spec's checkers by real server and configuration:
// two specs with equal keys run the same checkers.
func (s DirectorSpec) CheckerKeys() []CheckerKey {
	var out []CheckerKey
	for _, rc := range s.Checks {
		for _, c := range rc.Checkers {
			out = append(out, CheckerKey{rc.ID, c.Key})
		}
	}
	return out
}
