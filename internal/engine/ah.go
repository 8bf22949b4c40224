package engine

import (
	"sync"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// IPsec AH (`auth_type AH`, VRRPv2 over IPv4): the instance's adverts go
// through a conn of IP protocol 51 (vrrpnet.ProtocolAH), shared only with
// other AH instances, as keepalived keys its sockets by protocol. The state
// machine owns the sequence number and checks what arrives (vrrp/ah.go);
// the engine splits and seals datagrams (packet/ah.go).

// usesAH reports whether the instance authenticates with AH.
func usesAH(in *instance) bool { return specAH(in.spec) }

func specAH(s *runspec.InstanceSpec) bool { return s.VRRP.AuthType == packet.AuthAH }

// openAH returns the VRRP message of a received packet and, on an AH conn,
// the datagram it came in.
func openAH(c *conn, pkt vrrpnet.Packet) ([]byte, *packet.Datagram, error) {
	if !c.key.ah {
		return pkt.Payload, nil, nil
	}
	d, msg, err := packet.ParseDatagram(pkt.Payload)
	if err != nil {
		return nil, nil, err
	}
	return msg, &d, nil
}

// ahSeal returns the seal of the instance's AH adverts: the ICV with
// auth_pass over the IPv4 header the conn builds (the TTL is left out of
// it for unicast, as keepalived does). The seal and its HMAC state are
// built once per auth_pass and mode and kept on the instance; a seal may
// run on whatever goroutine writes the batch, so it locks its state.
func ahSeal(in *instance) vrrpnet.Seal {
	key, unicast := in.spec.VRRP.AuthPass, in.spec.VRRP.Unicast
	if s := in.ah; s != nil && s.key == key && s.unicast == unicast {
		return s.seal
	}
	s := &ahSealer{key: key, unicast: unicast, mac: packet.NewAHMAC(key)}
	s.seal = s.sealOne
	in.ah = s
	return s.seal
}

// ahSealer is an instance's kept AH seal.
type ahSealer struct {
	key     [packet.AHKeyLen]byte
	unicast bool
	seal    vrrpnet.Seal // sealOne, made once

	mu  sync.Mutex
	mac *packet.AHMAC
}

func (s *ahSealer) sealOne(h, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mac.Seal(h, p, s.unicast)
}
