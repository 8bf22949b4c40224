package vrrp

import (
	"fmt"
	"net/netip"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// IPsec AH authentication (VRRPv2 over IPv4, `auth_type AH`), as keepalived
// 2.2.7 runs it (vrrp.c: vrrp_update_pkt, vrrp_in_chk_ipsecah,
// vrrp_check_packet, vrrp_state_master_rx, vrrp_state_goto_master;
// vrrp_ipsecah.h seq_counter_t). The codec (packet/ah.go) computes and checks
// the ICV; the rules of the sequence number live here.
//
// Each instance has one counter, ahSeq, for what it sends and what it
// receives alike, starting at 0 when the process starts and kept across a
// reload (restore_vrrp_state):
//
//   - Sending: every advert (priority 0 included, once for all unicast
//     peers) first increments the counter and carries it. When the counter
//     is past 0xFFFFFFFD it no longer moves and the instance is marked as
//     cycled: receivers drop its adverts as replays, another router takes
//     over, and the cycled instance restarts from 0 when it next becomes
//     master.
//   - Receiving: an advert whose ICV (keyed with auth_pass) or SPI (the
//     source address) is wrong is an authentication failure. A valid one
//     whose sequence number is not above the counter is dropped as a replay
//     (keepalived: "sequence number %u already processed"); otherwise the
//     counter takes its value. This happens before the remaining checks of
//     vrrp_check_packet, so an advert dropped later (interval, addresses)
//     still moves the counter.
//   - So a backup's counter follows its master's, and when it takes over it
//     continues the master's sequence: the departed master's peers accept
//     it, and a restarted router (counter 0, and keepalived starts every AH
//     instance below priority 255 as BACKUP for this reason) learns the
//     current sequence from the first advert it hears.
//   - A master that hears a valid lower-priority advert sets its counter to
//     that advert's sequence number plus one before answering (keepalived:
//     "IPSEC-AH : Syncing seq_num - Increment seq"), so a returning router
//     whose adverts it just accepted accepts its answer. A restarted address
//     owner (counter 0, master at once) has its first adverts dropped as
//     replays by the others until one of them, having taken over, is heard:
//     the owner then syncs from it and its next advert wins.
//
// The counter is a plain uint32 as in keepalived: syncing from a sequence
// number of 0xFFFFFFFF wraps it to 0.

// ahCycleLimit is the counter value past which it stops (keepalived
// vrrp_update_pkt: "Cycled assumed if 0xFFFFFFFD reached").
const ahCycleLimit = 0xFFFFFFFD

// nextAHSeq advances the counter for an advert about to be sent and returns
// the sequence number it carries.
func (i *Instance) nextAHSeq() uint32 {
	if i.ahSeq > ahCycleLimit {
		i.ahCycle = true
	} else {
		i.ahSeq++
	}
	return i.ahSeq
}

// checkAH is vrrp_in_chk_ipsecah plus what vrrp_check_packet does after it:
// the ICV, the SPI, then the sequence number, which it records. It returns 0
// for an advert that passes.
func (i *Instance) checkAH(e Received, src netip.Addr) (DropReason, string) {
	d := e.AH
	if i.ahMAC == nil || i.ahMAC.Key() != i.cfg.AuthPass {
		i.ahMAC = packet.NewAHMAC(i.cfg.AuthPass)
	}
	if !i.ahMAC.Verify(d, i.cfg.Unicast) {
		// keepalived: "invalid IPSEC HMAC-MD5 value. Due to fields mutation
		// or bad password !"
		return DropAuthFailure, "AH ICV mismatch: another auth_pass, or the packet changed in transit"
	}
	if spi := d.AH.SPIAddr(); spi != src {
		// keepalived: "invalid IPSEC SPI value".
		return DropAuthFailure, fmt.Sprintf("AH SPI %v is not the source address", spi)
	}
	if d.AH.Seq <= i.ahSeq {
		// keepalived: "sequence number %u already processed. Packet dropped."
		return DropAHSequence, fmt.Sprintf("AH sequence number %d already processed, ours %d", d.AH.Seq, i.ahSeq)
	}
	i.ahSeq = d.AH.Seq
	if i.state == StateBackup {
		i.ahCycle = false
	}
	return 0, ""
}

// ahSyncLower is vrrp_state_master_rx's answer to a valid lower-priority AH
// advert: continue from its sequence number.
func (i *Instance) ahSyncLower(e Received) {
	if e.AH == nil || i.cfg.AuthType != packet.AuthAH {
		return
	}
	i.ahSeq = e.AH.AH.Seq + 1
	i.ahCycle = false
}

// ahResetIfCycled is vrrp_state_goto_master's "If becoming MASTER in IPSEC
// AH AUTH, we reset the anti-replay".
func (i *Instance) ahResetIfCycled() {
	if i.ahCycle {
		i.ahCycle = false
		i.ahSeq = 0
	}
}
