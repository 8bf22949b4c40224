package translate

import (
	"net/netip"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/lb"
)

// VirtualServerID is the ID the director's events carry for the
// virtual_server ADDR PORT PROTOCOL (lb.VirtualServer.ID), so other
// runtimes (BGP) can name a virtual server as the director does.
func VirtualServerID(addr netip.Addr, port uint16, proto config.Protocol) string {
	vs := lb.VirtualServer{Addr: addr, Port: port, Proto: lbProto(proto)}
	return vs.ID()
}
