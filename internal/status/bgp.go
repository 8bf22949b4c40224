package status

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// BGP is the state of the BGP speaker: its sessions and what it announces.
type BGP struct {
	RouterID string       `json:"router_id"`
	LocalAS  uint32       `json:"local_as"`
	Sessions []BGPSession `json:"sessions"`
	Routes   []BGPRoute   `json:"routes"`
	// Announcements and Withdrawals count the route changes handed to the
	// speaker (a re-announcement with new attributes counts as one
	// announcement).
	Announcements uint64 `json:"announcements"`
	Withdrawals   uint64 `json:"withdrawals"`
	LastError     string `json:"last_error,omitempty"`
}

// BGPSession is one neighbor's session.
type BGPSession struct {
	Neighbor string `json:"neighbor"`
	RemoteAS uint32 `json:"remote_as"`
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm, established.
	State string `json:"state"`
	// Since is when the session was established (zero when it is not).
	Since            time.Time `json:"since,omitzero"`
	PrefixesSent     uint64    `json:"prefixes_sent"`
	PrefixesReceived uint64    `json:"prefixes_received"`
	HoldTime         Duration  `json:"hold_time"`
	LastError        string    `json:"last_error,omitempty"`
	// BFD is the BFD session's state; empty without BFD.
	BFD string `json:"bfd,omitempty"`
}

// BGPRoute is one prefix vigil may announce, and why it is or is not.
type BGPRoute struct {
	Prefix string `json:"prefix"`
	// State is announced, draining (announced with the GRACEFUL_SHUTDOWN
	// community until Until, then withdrawn) or withdrawn.
	State       string    `json:"state"`
	MED         *uint32   `json:"med,omitempty"`
	Communities []string  `json:"communities,omitempty"`
	Reason      string    `json:"reason"`
	Since       time.Time `json:"since,omitzero"`
	Until       time.Time `json:"until,omitzero"`
}

// writeBGP renders the BGP section of WriteText.
func writeBGP(tw io.Writer, b *BGP) {
	fmt.Fprintf(tw, "\nbgp router id %s  AS %d  %d announcements, %d withdrawals\n", b.RouterID, b.LocalAS, b.Announcements, b.Withdrawals)
	if b.LastError != "" {
		fmt.Fprintf(tw, "  last error: %s\n", b.LastError)
	}
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tUP\tSENT\tRECEIVED\tHOLD\tBFD\tLAST ERROR")
	for _, s := range b.Sessions {
		up := "-"
		if !s.Since.IsZero() {
			up = time.Since(s.Since).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Neighbor, s.RemoteAS, s.State, up, s.PrefixesSent, s.PrefixesReceived,
			time.Duration(s.HoldTime), dash(s.BFD), dash(s.LastError))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "PREFIX\tSTATE\tMED\tCOMMUNITIES\tREASON")
	for _, r := range b.Routes {
		med := "-"
		if r.MED != nil {
			med = fmt.Sprint(*r.MED)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Prefix, r.State, med, dash(strings.Join(r.Communities, " ")), r.Reason)
	}
}
