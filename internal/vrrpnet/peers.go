package vrrpnet

import (
	"net/netip"
	"sync/atomic"
)

// PeerSet is the unicast_peer list of an instance. In unicast mode the
// caller drops adverts from any other source (keepalived 2.2.7 vrrp.c
// vrrp_check_packet: "unicast peer ... not found"); PeerSet counts them.
//
// Concurrency: Allow and Dropped may be called from any goroutine; the set
// itself is immutable after NewPeerSet (a reload builds a new one).
type PeerSet struct {
	peers   map[netip.Addr]struct{}
	dropped atomic.Uint64
}

// NewPeerSet returns the set of the given peer addresses.
func NewPeerSet(peers []netip.Addr) *PeerSet {
	s := &PeerSet{peers: make(map[netip.Addr]struct{}, len(peers))}
	for _, p := range peers {
		s.peers[p.Unmap().WithZone("")] = struct{}{}
	}
	return s
}

// Allow reports whether src is a configured peer, and counts it as dropped
// when it is not.
func (s *PeerSet) Allow(src netip.Addr) bool {
	if _, ok := s.peers[src.Unmap().WithZone("")]; ok {
		return true
	}
	s.dropped.Add(1)
	return false
}

// Dropped returns how many packets Allow refused.
func (s *PeerSet) Dropped() uint64 { return s.dropped.Load() }

// Len returns the number of peers.
func (s *PeerSet) Len() int { return len(s.peers) }
