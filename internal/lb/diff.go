package lb

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Op is the kind of one Change.
type Op uint8

// Operations, in the order Diff emits them: additions and updates first so a
// service being re-pointed never passes through an empty pool, removals last.
const (
	AddService Op = iota + 1
	UpdateService
	AddDest
	UpdateDest
	DelDest
	DelService
)

func (o Op) String() string {
	switch o {
	case AddService:
		return "add-service"
	case UpdateService:
		return "update-service"
	case AddDest:
		return "add-dest"
	case UpdateDest:
		return "update-dest"
	case DelDest:
		return "del-dest"
	case DelService:
		return "del-service"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Change is one step from one State towards another.
type Change struct {
	Op      Op
	Service ServiceKey
	// Attrs is the new service for AddService/UpdateService.
	Attrs Service
	// Dest and DestAttrs are set for destination operations.
	Dest      netip.AddrPort
	DestAttrs Dest
}

func (c Change) String() string {
	switch c.Op {
	case AddService, UpdateService:
		return fmt.Sprintf("%v %v %+v", c.Op, c.Service, c.Attrs)
	case DelService:
		return fmt.Sprintf("%v %v", c.Op, c.Service)
	case AddDest, UpdateDest:
		return fmt.Sprintf("%v %v -> %v %+v", c.Op, c.Service, c.Dest, c.DestAttrs)
	}
	return fmt.Sprintf("%v %v -> %v", c.Op, c.Service, c.Dest)
}

// Diff returns the changes that turn have into want, in a deterministic
// order: by Op (see the constants), then by key. Destinations of a deleted
// service are not deleted one by one: deleting the service removes them.
func Diff(have, want State) []Change {
	// One pass over each map; only the changes are sorted.
	var out []Change
	for k, w := range want.Services {
		if h, ok := have.Services[k]; !ok {
			out = append(out, Change{Op: AddService, Service: k, Attrs: w})
		} else if h != w {
			out = append(out, Change{Op: UpdateService, Service: k, Attrs: w})
		}
	}
	for k, w := range want.Dests {
		if h, ok := have.Dests[k]; !ok {
			out = append(out, Change{Op: AddDest, Service: k.Service, Dest: k.Addr, DestAttrs: w})
		} else if h != w {
			out = append(out, Change{Op: UpdateDest, Service: k.Service, Dest: k.Addr, DestAttrs: w})
		}
	}
	for k := range have.Dests {
		if _, ok := want.Dests[k]; ok {
			continue
		}
		if _, ok := want.Services[k.Service]; !ok {
			continue // goes with its service
		}
		out = append(out, Change{Op: DelDest, Service: k.Service, Dest: k.Addr})
	}
	for k := range have.Services {
		if _, ok := want.Services[k]; !ok {
			out = append(out, Change{Op: DelService, Service: k})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		if c := cmp.Compare(a.Op, b.Op); c != 0 {
			return c
		}
		if c := a.Service.Compare(b.Service); c != 0 {
			return c
		}
		return a.Dest.Compare(b.Dest)
	})
	return out
}

// ChangedServices returns the keys of the services a list of changes touches,
// in order.
func ChangedServices(cs []Change) []ServiceKey {
	seen := map[ServiceKey]bool{}
	var out []ServiceKey
	for _, c := range cs {
		if !seen[c.Service] {
			seen[c.Service] = true
			out = append(out, c.Service)
		}
	}
	slices.SortFunc(out, ServiceKey.Compare)
	return out
}

func sortedServiceKeys(m map[ServiceKey]Service) []ServiceKey {
	ks := make([]ServiceKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, ServiceKey.Compare)
	return ks
}

func sortedDestKeys(m map[DestKey]Dest) []DestKey {
	ks := make([]DestKey, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sortDestKeys(ks)
	return ks
}

func sortDestKeys(ks []DestKey) { slices.SortFunc(ks, DestKey.Compare) }

// ApplyChanges returns a copy of s with cs applied, as a backend would apply
// them: Diff(have, want) applied to have gives want.
func ApplyChanges(s State, cs []Change) State {
	out := s.Clone()
	for _, c := range cs {
		switch c.Op {
		case AddService, UpdateService:
			out.Services[c.Service] = c.Attrs
		case DelService:
			delete(out.Services, c.Service)
			for dk := range out.Dests {
				if dk.Service == c.Service {
					delete(out.Dests, dk)
				}
			}
		case AddDest, UpdateDest:
			out.Dests[DestKey{Service: c.Service, Addr: c.Dest}] = c.DestAttrs
		case DelDest:
			delete(out.Dests, DestKey{Service: c.Service, Addr: c.Dest})
		}
	}
	return out
}
