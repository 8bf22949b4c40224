package engine

import (
	"net/netip"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/translate"
)

// VirtualServerID is translate.VirtualServerID.
//
// Deprecated: use translate.VirtualServerID.
func VirtualServerID(addr netip.Addr, port uint16, proto config.Protocol) string {
	return translate.VirtualServerID(addr, port, proto)
}
