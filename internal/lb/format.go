package lb

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// Format writes the state as `ipvsadm -Ln` does:
//
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port           Forward Weight
//	TCP  192.168.118.110:80 rr
//	  -> 192.168.118.129:80           Masq    1
func (s State) Format(w io.Writer) error {
	var b strings.Builder
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	b.WriteString("  -> RemoteAddress:Port           Forward Weight\n")
	dests := map[ServiceKey][]DestKey{}
	for dk := range s.Dests {
		dests[dk.Service] = append(dests[dk.Service], dk)
	}
	for _, k := range sortedServiceKeys(s.Services) {
		b.WriteString(serviceLine(k, s.Services[k]))
		b.WriteByte('\n')
		ds := dests[k]
		sortDestKeys(ds)
		for _, dk := range ds {
			d := s.Dests[dk]
			fmt.Fprintf(&b, "  -> %-28s %-7s %d\n", dk.Addr, d.Method.ipvsadm(), d.Weight)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// serviceLine describes a service as ipvsadm -Ln does: "TCP  10.0.0.1:80 rr
// persistent 50 mask 255.255.255.0".
func serviceLine(k ServiceKey, svc Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", k, svc.Scheduler)
	if f := svc.flagString(); f != "" {
		fmt.Fprintf(&b, " (%s)", f)
	}
	if svc.Timeout > 0 {
		fmt.Fprintf(&b, " persistent %d", svc.Timeout)
		if svc.Netmask != FullNetmask(k.Family) {
			if k.Family == IPv6 {
				fmt.Fprintf(&b, " mask %d", svc.Netmask)
			} else {
				m := svc.Netmask
				fmt.Fprintf(&b, " mask %s", netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}))
			}
		}
		if svc.PE != "" {
			fmt.Fprintf(&b, " pe %s", svc.PE)
		}
	}
	return b.String()
}

// String is Format into a string.
func (s State) String() string {
	var b strings.Builder
	_ = s.Format(&b)
	return b.String()
}

func (m Method) ipvsadm() string {
	switch m {
	case NAT:
		return "Masq"
	case DR:
		return "Route"
	case TUN:
		return "Tunnel"
	}
	return "?"
}

func (s Service) flagString() string {
	var f []string
	if s.Flags&FlagOnePacket != 0 {
		f = append(f, "ops")
	}
	switch s.Scheduler {
	case "sh", "mh":
		if s.Flags&FlagSched1 != 0 {
			f = append(f, s.Scheduler+"-fallback")
		}
		if s.Flags&FlagSched2 != 0 {
			f = append(f, s.Scheduler+"-port")
		}
		if s.Flags&FlagSched3 != 0 {
			f = append(f, "flag-3")
		}
	default:
		for i, fl := range []Flags{FlagSched1, FlagSched2, FlagSched3} {
			if s.Flags&fl != 0 {
				f = append(f, fmt.Sprintf("flag-%d", i+1))
			}
		}
	}
	return strings.Join(f, ",")
}

// ShowOptions are what `vigil lb show` adds to Format: each destination's
// state and the kernel's counters.
type ShowOptions struct {
	// Stats are the kernel's counters; nil prints none.
	Stats *Stats
	// DestState names a destination's state ("up", "down", "drained");
	// nil prints none.
	DestState func(DestKey, Dest) string
	// Flows are the flows a data plane remembers per destination (direct
	// routing on nftables); nil prints none, a destination missing from it
	// "-".
	Flows map[DestKey]int
}

// FormatShow writes the state as Format does, every destination (weight 0
// ones included) with its state and, per service and destination, the
// kernel's counters as `ipvsadm -Ln --stats` lists them (connections,
// packets and bytes in and out), in columns.
func (s State) FormatShow(w io.Writer, o ShowOptions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	head := "Prot LocalAddress:Port Scheduler Flags"
	dhead := "  -> RemoteAddress:Port\tForward\tWeight"
	if o.DestState != nil {
		dhead += "\tState"
	}
	if o.Stats != nil {
		dhead += "\tConns\tInPkts\tOutPkts\tInBytes\tOutBytes"
	}
	if o.Flows != nil {
		dhead += "\tFlows"
	}
	flows := func(dks ...DestKey) string {
		if o.Flows == nil {
			return ""
		}
		total, counted := 0, false
		for _, dk := range dks {
			if n, ok := o.Flows[dk]; ok {
				total, counted = total+n, true
			}
		}
		if !counted {
			return "\t-"
		}
		return fmt.Sprintf("\t%d", total)
	}
	fmt.Fprintln(tw, head)
	fmt.Fprintln(tw, dhead)
	counters := func(c Counters, ok bool) string {
		if o.Stats == nil {
			return ""
		}
		if !ok {
			return "\t-\t-\t-\t-\t-"
		}
		return fmt.Sprintf("\t%d\t%d\t%d\t%d\t%d", c.Conns, c.InPkts, c.OutPkts, c.InBytes, c.OutBytes)
	}
	dests := map[ServiceKey][]DestKey{}
	for dk := range s.Dests {
		dests[dk.Service] = append(dests[dk.Service], dk)
	}
	var line strings.Builder
	for _, k := range sortedServiceKeys(s.Services) {
		line.Reset()
		line.WriteString(serviceLine(k, s.Services[k]))
		ds := dests[k]
		sortDestKeys(ds)
		if o.Stats != nil || o.Flows != nil {
			// The service's counters in the destinations' columns.
			line.WriteString("\t\t")
			if o.DestState != nil {
				line.WriteString("\t")
			}
		}
		var sc Counters
		var ok bool
		if o.Stats != nil {
			sc, ok = o.Stats.Services[k]
		}
		fmt.Fprintln(tw, line.String()+counters(sc, ok)+flows(ds...))
		for _, dk := range ds {
			d := s.Dests[dk]
			line.Reset()
			fmt.Fprintf(&line, "  -> %s\t%s\t%d", dk.Addr, d.Method.ipvsadm(), d.Weight)
			if o.DestState != nil {
				line.WriteString("\t" + o.DestState(dk, d))
			}
			var dc Counters
			if o.Stats != nil {
				dc, ok = o.Stats.Dests[dk]
			}
			fmt.Fprintln(tw, line.String()+counters(dc, ok)+flows(dk))
		}
	}
	return tw.Flush()
}
