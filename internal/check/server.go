package check

import "math"

// Server is a real server seen through its checkers. As keepalived counts
// num_failed_checkers (ipwrapper.c update_svr_checker_state), a real server
// is up only when every one of its checkers is up; one with no checker is
// always up. Its effective weight is the configured weight plus each
// checker's contribution (keepalived's cur_weight): a MISC_CHECK with
// misc_dynamic contributes exit status − 2 − configured weight
// (check_misc.c), a FILE_CHECK its value × weight (track_file.c); the sum is
// clamped to [0, 2^31−1] as real_weight() does (check_data.h).
//
// Concurrency: not safe for concurrent use.
type Server struct {
	weight  int
	members []member
	down    int
}

type member struct {
	up            bool
	weight, delta *int
}

// NewServer returns a real server with the configured weight whose checkers
// start in the given states (Health.Up of each).
func NewServer(weight int, up []bool) Server {
	s := Server{weight: weight, members: make([]member, len(up))}
	for i, u := range up {
		s.members[i].up = u
		if !u {
			s.down++
		}
	}
	return s
}

// ServerTransition reports a change of a real server.
type ServerTransition struct {
	// WasUp and Up are the real server's state before and after.
	WasUp, Up bool
	// WasWeight and Weight are its effective weight before and after.
	WasWeight, Weight int
	// Checker is the index of the checker whose transition caused this.
	Checker int
	// Reason is that checker's transition reason.
	Reason string
}

// StateChanged reports whether the real server went up or down.
func (t ServerTransition) StateChanged() bool { return t.Up != t.WasUp }

// Up reports whether every checker is up.
func (s *Server) Up() bool { return s.down == 0 }

// Weight returns the effective weight.
func (s *Server) Weight() int {
	w := int64(s.weight)
	for _, m := range s.members {
		switch {
		case m.weight != nil:
			w += int64(*m.weight) - int64(s.weight)
		case m.delta != nil:
			w += int64(*m.delta)
		}
	}
	if w < 0 {
		return 0
	}
	if w > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(w)
}

// ConfiguredWeight returns the weight the server was configured with.
func (s *Server) ConfiguredWeight() int { return s.weight }

// Checkers returns the number of checkers.
func (s *Server) Checkers() int { return len(s.members) }

// Apply records a transition of checker i and reports whether the real
// server's state or effective weight changed.
func (s *Server) Apply(i int, t Transition) (ServerTransition, bool) {
	if i < 0 || i >= len(s.members) {
		return ServerTransition{}, false
	}
	st := ServerTransition{WasUp: s.Up(), WasWeight: s.Weight(), Checker: i, Reason: t.Reason}
	m := &s.members[i]
	if m.up != t.Up {
		if t.Up {
			s.down--
		} else {
			s.down++
		}
		m.up = t.Up
	}
	m.weight, m.delta = copyInt(t.Weight), copyInt(t.WeightDelta)
	st.Up, st.Weight = s.Up(), s.Weight()
	return st, st.Up != st.WasUp || st.Weight != st.WasWeight
}
