package ipvs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	cfipvs "github.com/cloudflare/ipvs"

	"github.com/vigil-ha/vigil/internal/lb"
)

// StatsReader reads IPVS's own statistics of every service and destination
// (ipvsadm -Ln --stats). It implements lb.StatsReader.
type StatsReader struct {
	// Client talks to IPVS; nil dials generic netlink on each call, in the
	// namespace of the calling thread.
	Client cfipvs.Client
}

// Stats implements lb.StatsReader.
func (sr StatsReader) Stats(ctx context.Context) (lb.Stats, error) {
	st := lb.NewStats()
	c := sr.Client
	if c == nil {
		var err error
		if c, err = cfipvs.New(); err != nil {
			return st, fmt.Errorf("ipvs: generic netlink family IPVS: %w", err)
		}
	}
	svcs, err := c.Services()
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("ipvs: list services: %w", err)
	}
	for _, s := range svcs {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		k, _, err := fromService(s.Service)
		if err != nil {
			continue
		}
		st.Services[k] = counters(s.Stats, s.Stats64)
		ds, err := c.Destinations(s.Service)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("ipvs: list destinations of %v: %w", k, err)
		}
		for _, d := range ds {
			a, _ := fromDest(d.Destination)
			st.Dests[lb.DestKey{Service: k, Addr: a}] = counters(d.Stats, d.Stats64)
		}
	}
	return st, nil
}

// counters prefers the 64-bit statistics (Linux 4.1 and later); older
// kernels send only the 32-bit ones, which wrap.
func counters(s32, s64 cfipvs.Stats) lb.Counters {
	s := s64
	if s64 == (cfipvs.Stats{}) {
		s = s32
	}
	return lb.Counters{Conns: s.Connections, InPkts: s.IncomingPackets, OutPkts: s.OutgoingPackets,
		InBytes: s.IncomingBytes, OutBytes: s.OutgoingBytes}
}
