// Package connsync replicates the connection tracking table of a NAT
// director to its peer with conntrackd (the netfilter project's state
// replication daemon), following the VRRP state of the director: it
// writes conntrackd's configuration, runs it as a supervised child and,
// on each transition, runs the commands conntrackd's own primary-backup
// script runs, in the same order.
//
// vigil does not replicate flows itself: conntrackd's FTFW protocol
// (acknowledged, resent) and its external cache, committed into the
// kernel on takeover, are the engine made for it.
package connsync

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Spec is one conntrackd: what the configuration writer and the
// supervisor need. Plain values only.
type Spec struct {
	// Interface is the sync link; Peer (unicast UDP) or McastGroup names
	// where flow states go, Source the link's own address (required here:
	// the supervisor fills it from the interface when the configuration
	// names none).
	Interface  string
	Peer       netip.Addr
	McastGroup netip.Addr
	Source     netip.Addr
	Port       uint16
	// Conntrackd is the daemon's path; Dir the run directory holding its
	// configuration, control socket and lock file.
	Conntrackd string
	Dir        string
	// Timeout bounds each conntrackd command.
	Timeout time.Duration
	// Protocols are conntrackd protocol names (TCP, UDP, SCTP); empty
	// means TCP and UDP.
	Protocols []string
	// Accept, when not empty, replicates only flows whose original or
	// reply source is one of these addresses: for a DNAT'ed flow the
	// reply comes from the real server. Empty replicates every flow but
	// Ignore's.
	Accept []netip.Addr
	// Ignore lists addresses whose flows are never replicated (loopback,
	// the sync link's own addresses).
	Ignore []netip.Addr
	// Follow names the VRRP instance or sync group whose state conntrackd
	// follows (for status and logs).
	Follow string
}

// ConfPath, SocketPath and LockPath are conntrackd's files in Dir.
func (s Spec) ConfPath() string   { return filepath.Join(s.Dir, "conntrackd.conf") }
func (s Spec) SocketPath() string { return filepath.Join(s.Dir, "conntrackd.ctl") }
func (s Spec) LockPath() string   { return filepath.Join(s.Dir, "conntrackd.lock") }

// Check reports what conntrackd could not read in a Spec.
func (s Spec) Check() error {
	switch {
	case s.Interface == "":
		return fmt.Errorf("connsync: no sync interface")
	case !s.Source.IsValid():
		return fmt.Errorf("connsync: no source address on %s", s.Interface)
	case !s.Peer.IsValid() && !s.McastGroup.IsValid():
		return fmt.Errorf("connsync: no peer and no multicast group")
	}
	return nil
}

// Render writes conntrackd's configuration: FTFW mode, the external
// cache (the default), one UDP or multicast channel, the control socket
// and lock file in Dir, and the event filter.
func Render(s Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	fam := "IPv4"
	if s.Source.Is6() {
		fam = "IPv6"
	}
	w("# written by vigil (conntrack_sync): do not edit, vigil rewrites it at start")
	w("Sync {")
	w("\tMode FTFW {")
	w("\t\tDisableExternalCache off")
	w("\t}")
	if s.McastGroup.IsValid() {
		w("\tMulticast {")
		w("\t\t%s_address %s", fam, s.McastGroup)
		w("\t\tGroup %d", s.Port)
		w("\t\t%s_interface %s", fam, s.Source)
	} else {
		w("\tUDP {")
		w("\t\t%s_address %s", fam, s.Source)
		w("\t\t%s_Destination_Address %s", fam, s.Peer)
		w("\t\tPort %d", s.Port)
	}
	w("\t\tInterface %s", s.Interface)
	w("\t\tChecksum on")
	w("\t}")
	w("}")
	w("General {")
	w("\tHashSize 32768")
	w("\tHashLimit 131072")
	w("\tLogFile off")
	w("\tSyslog off")
	w("\tLockFile %s", s.LockPath())
	w("\tUNIX {")
	w("\t\tPath %s", s.SocketPath())
	w("\t}")
	w("\tFilter From Userspace {")
	w("\t\tProtocol Accept {")
	protos := s.Protocols
	if len(protos) == 0 {
		protos = []string{"TCP", "UDP"}
	}
	for _, p := range protos {
		w("\t\t\t%s", p)
	}
	w("\t\t}")
	addrs, action := s.Ignore, "Ignore"
	if len(s.Accept) > 0 {
		addrs, action = s.Accept, "Accept"
	}
	if len(addrs) > 0 {
		w("\t\tAddress %s {", action)
		for _, a := range addrs {
			if a.Is4() {
				w("\t\t\tIPv4_address %s", a)
			} else {
				w("\t\t\tIPv6_address %s", a)
			}
		}
		w("\t\t}")
	}
	w("\t}")
	w("}")
	return b.String()
}
