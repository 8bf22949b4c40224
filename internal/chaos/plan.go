// Package chaos runs seeded random faults against a cluster of VRRP nodes
// (vigil, and keepalived 2.2.7 for mixed clusters) in a lab of network
// namespaces, records every virtual address added or removed on every node
// and every client request, and checks the invariants an HA pair must keep:
//
//   - outside a partition, loss, link or stopped/killed process, never two
//     holders of an address for longer than one advert interval;
//   - after each fault (or group of overlapping faults) heals, exactly one
//     holder within Master_Down_Interval + 100 ms;
//   - a client request fails only inside a fault window;
//   - no daemon crashes (panic, unexpected exit);
//   - nothing is left behind at the end (addresses, nftables rules,
//     processes).
//
// The schedule (Plan) and the checks (Check) are pure: a seed gives the same
// schedule, and recorded timelines are checked without root. Run executes a
// schedule in namespaces (root). Soak runs many instances on a pair for a
// long time and counts false failovers.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of fault.
type Kind string

// The fault kinds.
const (
	Kill       Kind = "kill"        // kill -9 of a daemon, restarted when the fault heals
	Stop       Kind = "stop"        // SIGSTOP, SIGCONT when it heals
	Link       Kind = "link"        // the node's front cable unplugged (switch port down)
	Loss       Kind = "loss"        // random loss both ways on the node's front interface (nftables numgen)
	OneWay     Kind = "oneway"      // the node hears nothing on its front interface, others still hear it
	Partition  Kind = "partition"   // the LANs split between two groups of nodes
	ReloadVIPs Kind = "reload-vips" // rolling reload adding or removing a VIP
	ReloadPrio Kind = "reload-prio" // rolling reload with the priorities shuffled
	VIPDelete  Kind = "vip-delete"  // `ip addr del` of the VIP on its holder
	RSFlap     Kind = "rs-flap"     // a real server stops answering, then comes back
	CPUHog     Kind = "cpu-hog"     // two busy loops inside a node's namespace
	Handover   Kind = "handover"    // `vigil handover` on the holder, `--reclaim` when it heals
)

// AllKinds lists every fault kind in table order.
var AllKinds = []Kind{Kill, Stop, Link, Loss, OneWay, Partition, ReloadVIPs, ReloadPrio, VIPDelete, RSFlap, CPUHog, Handover}

// ParseKinds parses a comma-separated list of kinds ("all" for every kind).
func ParseKinds(s string) ([]Kind, error) {
	if s == "" || s == "all" {
		return slices.Clone(AllKinds), nil
	}
	var out []Kind
	for _, f := range strings.Split(s, ",") {
		k := Kind(strings.TrimSpace(f))
		if !slices.Contains(AllKinds, k) {
			return nil, fmt.Errorf("chaos: unknown fault kind %q (want one of %v)", k, AllKinds)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// splits reports whether the kind lets two nodes hold an address at once
// (the nodes cannot hear each other, or one cannot act).
func (k Kind) splits() bool {
	switch k {
	case Kill, Stop, Link, Loss, OneWay, Partition:
		return true
	}
	return false
}

// Fault is one planned fault. Offsets are from the start of the schedule.
type Fault struct {
	N    int
	Kind Kind
	At   time.Duration // when it starts
	Dur  time.Duration // how long until it heals (0: instantaneous)
	// Node is the target node (index), or -1 for the VIP's holder at the
	// time the fault starts (vip-delete, handover).
	Node int
	// Side is one side of a partition (node indices); ClientWithSide puts
	// the client and the real servers on that side.
	Side           []int
	ClientWithSide bool
	Loss           int   // percent, for loss
	Prio           []int // new priorities per node, for reload-prio
	Step           time.Duration
	RS             int // real server index, for rs-flap
}

// End is when the fault heals, as planned.
func (f Fault) End() time.Duration { return f.At + f.Dur }

func (f Fault) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s at %.2fs for %.2fs", f.N, f.Kind, f.At.Seconds(), f.Dur.Seconds())
	switch f.Kind {
	case Partition:
		fmt.Fprintf(&b, " side %v client-with-side %v", nodeNames(f.Side), f.ClientWithSide)
	case Loss:
		fmt.Fprintf(&b, " r%d %d%%", f.Node+1, f.Loss)
	case ReloadPrio:
		fmt.Fprintf(&b, " priorities %v", f.Prio)
	case RSFlap:
		fmt.Fprintf(&b, " rs%d", f.RS+1)
	case ReloadVIPs:
	default:
		if f.Node >= 0 {
			fmt.Fprintf(&b, " r%d", f.Node+1)
		} else {
			b.WriteString(" holder")
		}
	}
	return b.String()
}

func nodeNames(idx []int) []string {
	var s []string
	for _, i := range idx {
		s = append(s, fmt.Sprintf("r%d", i+1))
	}
	return s
}

// PlanOptions shape a schedule.
type PlanOptions struct {
	Seed   uint64
	Faults int
	Kinds  []Kind
	Nodes  int           // 3
	Advert time.Duration // advert_int
	// Overlap is the chance that a fault starts while the previous one is
	// still active (0.25 when zero; negative for never).
	Overlap float64
	// Cover makes the first len(Kinds) faults a seeded permutation of
	// Kinds, so a short run has every kind at least once.
	Cover bool
	// Quiet is the least time between the end of a group of overlapping
	// faults and the next fault (Settle when zero).
	Quiet time.Duration
}

// Settle is the quiet time after a group of faults: long enough for the
// one-holder bound (Master_Down_Interval + 100 ms), a real server's health
// check to recover, and a steady stretch to be seen.
func Settle(adv time.Duration) time.Duration {
	return max(4*adv+100*time.Millisecond+RSRecovery, time.Second+8*adv)
}

// RSRecovery is how long after a real server returns the directors may
// still fail requests to it (the checker's delay_loop and retry; see
// labConf).
const RSRecovery = 1500 * time.Millisecond

// rsBusy offsets the real servers among the targets of Plan.
const rsBusy = 100

// Plan returns a seeded schedule: the same options give the same faults.
func Plan(o PlanOptions) []Fault {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if len(o.Kinds) == 0 {
		o.Kinds = AllKinds
	}
	if o.Overlap == 0 {
		o.Overlap = 0.25
	}
	if o.Quiet == 0 {
		o.Quiet = Settle(o.Advert)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x76696769)) // "vigi"
	// Durations are drawn in units of the advert interval so a run at
	// advert_int 1 is the run at 0.1 slowed down ten times.
	u := func(lo, hi float64) time.Duration {
		return time.Duration((lo + r.Float64()*(hi-lo)) * float64(o.Advert))
	}
	var out []Fault
	at := 2 * time.Second
	groupEnd := time.Duration(0)
	busy := map[int]time.Duration{} // node (real server: rsBusy + index) -> end of the last fault on it
	var cover []int
	if o.Cover {
		cover = r.Perm(len(o.Kinds))
	}
	for i := range o.Faults {
		f := Fault{N: i + 1, Kind: o.Kinds[r.IntN(len(o.Kinds))], Node: -1}
		if i < len(cover) {
			f.Kind = o.Kinds[cover[i]]
		}
		switch f.Kind {
		case Kill:
			f.Dur = u(3, 25)
		case Stop:
			f.Dur = u(2, 15)
		case Link, OneWay:
			f.Dur = u(3, 20)
		case Loss:
			f.Dur = u(10, 30)
			f.Loss = 20 + 10*r.IntN(6)
		case Partition:
			f.Dur = u(5, 25)
			perm := r.Perm(o.Nodes)
			f.Side = perm[:1+r.IntN(o.Nodes-1)]
			slices.Sort(f.Side)
			f.ClientWithSide = r.IntN(2) == 0
		case ReloadVIPs, ReloadPrio:
			f.Step = u(1, 5)
			f.Dur = time.Duration(o.Nodes-1) * f.Step
			if f.Kind == ReloadPrio {
				for _, p := range r.Perm(o.Nodes) {
					f.Prio = append(f.Prio, 100-10*p)
				}
			}
		case VIPDelete:
		case RSFlap:
			f.Dur = u(5, 30)
			f.RS = r.IntN(2)
		case CPUHog:
			f.Dur = u(10, 30)
		case Handover:
			f.Dur = u(5, 20)
		}
		switch f.Kind {
		case Kill, Stop, Link, Loss, OneWay, CPUHog:
			f.Node = r.IntN(o.Nodes)
		}
		if i > 0 && groupEnd > at && r.Float64() < o.Overlap {
			// Start inside the group of faults under way.
			prev := out[len(out)-1]
			at = prev.At + time.Duration(r.Float64()*float64(max(prev.Dur, o.Advert)))
			if f.Node >= 0 && busy[f.Node] > at {
				// Never two faults on one node at once: another node.
				for n := range o.Nodes {
					if busy[n] <= at {
						f.Node = n
						break
					}
				}
				if busy[f.Node] > at {
					at = busy[f.Node]
				}
			}
		} else if i > 0 {
			at = max(groupEnd, at) + o.Quiet + time.Duration(r.Float64()*float64(o.Quiet))
		}
		if f.Kind == RSFlap && busy[rsBusy+f.RS] > at {
			// One flap per real server at a time: the other one, or later.
			f.RS = 1 - f.RS
			at = max(at, busy[rsBusy+f.RS])
		}
		f.At = at
		if f.Node >= 0 {
			busy[f.Node] = f.End()
		}
		if f.Kind == RSFlap {
			busy[rsBusy+f.RS] = f.End()
		}
		groupEnd = max(groupEnd, f.End())
		out = append(out, f)
	}
	return out
}
