package engine

import (
	"errors"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/vrrp"
	"github.com/vigil-ha/vigil/internal/vrrp/packet"
	"github.com/vigil-ha/vigil/internal/vrrpnet"
)

// IPsec AH (`auth_type AH`, VRRPv2 over IPv4): the instance's adverts go
// through a conn of IP protocol 51 (vrrpnet.ProtocolAH), shared only with
// other AH instances, as keepalived keys its sockets by protocol. The state
// machine owns the sequence number and checks what arrives (vrrp/ah.go);
// the engine splits and seals datagrams (packet/ah.go).

// sealedWriter is the write side of an AH conn (vrrpnet.Conn.WriteSealed).
type sealedWriter interface {
	WriteSealed(payload []byte, src, dst netip.Addr, seal vrrpnet.Seal) error
}

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

var errNoSeal = errors.New("engine: the VRRP socket cannot send AH")

// sendAH sends one AH advert to dst: AH header with the instance's
// sequence number, the VRRP message, sealed with auth_pass over the IPv4
// header the conn builds (the TTL is left out of the ICV for unicast, as
// keepalived does).
func (e *Engine) sendAH(in *instance, sa vrrp.SendAdvert, src, dst netip.Addr) {
	name := in.spec.VRRP.Name
	payload, err := sa.Advert.Append(packet.NewAH(src, sa.AHSeq).Append(make([]byte, 0, packet.AHLen+sa.Advert.Len(false))), src, dst)
	if err != nil {
		e.log.Error("cannot encode advert", "instance", name, "err", err)
		return
	}
	key, unicast := in.spec.VRRP.AuthPass, in.spec.VRRP.Unicast
	w, ok := in.conn.c.(sealedWriter)
	if ok {
		err = w.WriteSealed(payload, src, dst, func(h, p []byte) error { return packet.Seal(h, p, key, unicast) })
	} else {
		err = errNoSeal
	}
	if err != nil {
		in.codecDrops("send_error")
		in.limiter.note(&e.dropLog, e.log, time.Now(), name, "send_error", dst, err.Error())
	}
}
