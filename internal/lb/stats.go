package lb

import "context"

// Counters are the kernel's statistics of a virtual service or of one of
// its destinations, as IPVS keeps them: connections scheduled, packets and
// bytes from clients (In) and from real servers (Out).
type Counters struct {
	Conns             uint64
	InPkts, OutPkts   uint64
	InBytes, OutBytes uint64
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.Conns += o.Conns
	c.InPkts += o.InPkts
	c.OutPkts += o.OutPkts
	c.InBytes += o.InBytes
	c.OutBytes += o.OutBytes
}

// Stats are the counters of the kernel's virtual services and
// destinations.
type Stats struct {
	Services map[ServiceKey]Counters
	Dests    map[DestKey]Counters
}

// NewStats returns empty Stats.
func NewStats() Stats {
	return Stats{Services: map[ServiceKey]Counters{}, Dests: map[DestKey]Counters{}}
}

// StatsReader reads the kernel's counters. Implementations open their own
// kernel connection, so Stats may run while a Backend applies.
type StatsReader interface {
	Stats(ctx context.Context) (Stats, error)
}
