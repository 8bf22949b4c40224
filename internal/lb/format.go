package lb

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Format writes the state as `ipvsadm -Ln` does:
//
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port           Forward Weight
//	TCP  192.168.118.110:80 rr
//	  -> 192.168.118.129:80           Masq    1
func (s State) Format(w io.Writer) error { return s.FormatFlows(w, nil) }

// FormatFlows is Format with the flows a data plane remembers per
// destination (nftables direct routing): a service with destinations in
// flows shows its total, each destination its own count.
func (s State) FormatFlows(w io.Writer, flows map[DestKey]int) error {
	var b strings.Builder
	b.WriteString("Prot LocalAddress:Port Scheduler Flags\n")
	b.WriteString("  -> RemoteAddress:Port           Forward Weight\n")
	dests := map[ServiceKey][]DestKey{}
	for dk := range s.Dests {
		dests[dk.Service] = append(dests[dk.Service], dk)
	}
	for _, k := range sortedServiceKeys(s.Services) {
		svc := s.Services[k]
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
		ds := dests[k]
		sortDestKeys(ds)
		total, counted := 0, false
		for _, dk := range ds {
			if n, ok := flows[dk]; ok {
				total, counted = total+n, true
			}
		}
		if counted {
			fmt.Fprintf(&b, " flows %d", total)
		}
		b.WriteByte('\n')
		for _, dk := range ds {
			d := s.Dests[dk]
			fmt.Fprintf(&b, "  -> %-28s %-7s %d", dk.Addr, d.Method.ipvsadm(), d.Weight)
			if n, ok := flows[dk]; ok {
				fmt.Fprintf(&b, "      flows %d", n)
			}
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
