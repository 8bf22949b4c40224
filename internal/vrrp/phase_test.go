package vrrp

import (
	"slices"
	"testing"
	"time"
)

// The 255 VRIDs of one interface share a source: their phases are 1/256 of
// the interval apart. Another interface (another source) moves every VRID
// within its 1/256, never out of it.
func TestAdvertPhaseSpreadsVRIDs(t *testing.T) {
	for _, iv := range []time.Duration{10 * time.Millisecond, time.Second, 40950 * time.Millisecond} {
		var ps []time.Duration
		for v := 1; v <= 255; v++ {
			p := AdvertPhase(uint8(v), self4, iv)
			if p < 0 || p >= iv {
				t.Fatalf("iv %v: VRID %d phase %v outside the interval", iv, v, p)
			}
			other := AdvertPhase(uint8(v), higher4, iv)
			if d := (other - p).Abs(); d >= iv/256+1 {
				t.Errorf("iv %v: VRID %d: phases %v and %v on two sources are more than 1/256 apart", iv, v, p, other)
			}
			ps = append(ps, p)
		}
		slices.Sort(ps)
		for k := 1; k < len(ps); k++ {
			if gap := ps[k] - ps[k-1]; gap < iv/256-1 || gap > iv/256+1 {
				t.Fatalf("iv %v: phases %v and %v are %v apart, want %v", iv, ps[k-1], ps[k], gap, iv/256)
			}
		}
	}
	if AdvertPhase(7, self4, time.Second) == AdvertPhase(7, self6, time.Second) {
		t.Error("IPv4 and IPv6 instances of one VRID share a phase")
	}
}

func TestOnPhase(t *testing.T) {
	epoch := time.Unix(1_800_000_000, 0)
	const iv = time.Second
	for _, tc := range []struct {
		name  string
		at    time.Duration // from epoch (a whole number of intervals)
		phase time.Duration
		want  time.Duration
	}{
		{"on the phase already", 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		{"a little late: back to the phase", 250*time.Millisecond + 40*time.Microsecond, 250 * time.Millisecond, 250 * time.Millisecond},
		{"a little early: on to the phase", 240 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		{"nearest is the next interval's", 900 * time.Millisecond, 250 * time.Millisecond, 1250 * time.Millisecond},
		{"nearest is the previous interval's", 1600 * time.Millisecond, 250 * time.Millisecond, 1250 * time.Millisecond},
		{"a tie goes later", 750 * time.Millisecond, 250 * time.Millisecond, 1250 * time.Millisecond},
		{"phase zero", 3*time.Second + 10*time.Millisecond, 0, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onPhase(epoch.Add(tc.at), iv, tc.phase).Sub(epoch); got != tc.want {
				t.Errorf("onPhase(+%v, phase %v) = +%v, want +%v", tc.at, tc.phase, got, tc.want)
			}
		})
	}
}

// A master with SpreadAdverts: the first advert at once, the second between
// half and one and a half intervals later on the instance's phase, the
// following ones exactly one interval apart however late the timer is
// served; two instances that went master in the same instant advertise
// apart from the second advert on.
func TestSpreadAdvertsCadence(t *testing.T) {
	const iv = time.Second
	spread := func(vrid uint8) Config {
		return with(v3cfg(), func(c *Config) { c.VRID, c.Priority, c.SpreadAdverts = vrid, PriorityOwner, true })
	}
	phase := func(ti time.Time, c Config) time.Duration {
		return time.Duration(ti.UnixNano()%int64(iv)) - AdvertPhase(c.VRID, c.Source, iv)
	}
	var seconds []time.Time
	for _, vrid := range []uint8{1, 2, 55} {
		c := spread(vrid)
		inst, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		start := t0.Add(123456789)
		acts := inst.Step(start, Start{})
		if len(acts) == 0 || !isSend(acts[0]) {
			t.Fatalf("VRID %d: start as owner: %v, want an advert first", vrid, acts)
		}
		d := inst.Deadline()
		if gap := d.Sub(start); gap < iv/2 || gap > 3*iv/2 {
			t.Fatalf("VRID %d: second advert %v after the first, want within [%v, %v]", vrid, gap, iv/2, 3*iv/2)
		}
		if p := phase(d, c); p != 0 {
			t.Fatalf("VRID %d: second advert %v off its phase", vrid, p)
		}
		seconds = append(seconds, d)
		for k, late := range []time.Duration{0, 40 * time.Microsecond, 3 * time.Millisecond, 400 * time.Millisecond, 0} {
			acts := inst.Step(d.Add(late), Timeout{})
			if len(acts) != 1 || !isSend(acts[0]) {
				t.Fatalf("VRID %d: timeout %d: %v, want one advert", vrid, k, acts)
			}
			if next := inst.Deadline(); next.Sub(d) != iv {
				t.Fatalf("VRID %d: timeout %d served %v late: next deadline %v after the last, want %v", vrid, k, late, next.Sub(d), iv)
			}
			d = inst.Deadline()
		}
	}
	if seconds[0].Equal(seconds[1]) || seconds[0].Equal(seconds[2]) || seconds[1].Equal(seconds[2]) {
		t.Errorf("masters started together advertise together: %v", seconds)
	}
	// Without SpreadAdverts: RFC 5798's plain cadence.
	c := with(v3cfg(), func(c *Config) { c.Priority = PriorityOwner })
	inst, _ := New(c)
	inst.Step(t0, Start{})
	if d := inst.Deadline(); !d.Equal(t0.Add(iv)) {
		t.Errorf("plain cadence: deadline +%v, want +%v", d.Sub(t0), iv)
	}
}

func isSend(a Action) bool { _, ok := a.(SendAdvert); return ok }
