package vrrp

import (
	"testing"
	"time"
)

// The 255 VRIDs of one interface share a source: they fill up to 32 of the
// slots evenly. Another source rotates the slots.
func TestAdvertPhaseSpreadsVRIDs(t *testing.T) {
	for _, tc := range []struct {
		iv       time.Duration
		slots    int // in the interval
		used     int // by the 255 VRIDs
		min, max int // VRIDs per slot used
	}{
		{10 * time.Millisecond, 10, 10, 25, 26}, // no slot narrower than 1 ms
		{20 * time.Millisecond, 20, 20, 12, 13},
		{100 * time.Millisecond, 32, 32, 7, 8}, // at least 32 slots
		// Slots 1/256 s apart; one source's VRIDs in 32 of them, eight to
		// a slot (one system call a wake-up).
		{time.Second, 256, 32, 7, 8},
		{40950 * time.Millisecond, 10483, 32, 7, 8},
	} {
		iv := tc.iv
		perSlot := map[time.Duration]int{}
		rotated := 0
		for v := 1; v <= 255; v++ {
			p := AdvertPhase(uint8(v), self4, iv)
			if p < 0 || p >= iv || p%(iv/time.Duration(tc.slots)) != 0 {
				t.Fatalf("iv %v: VRID %d phase %v is not a slot of the interval", iv, v, p)
			}
			perSlot[p]++
			if AdvertPhase(uint8(v), higher4, iv) != p {
				rotated++
			}
		}
		if got := slots(iv); got != uint64(tc.slots) {
			t.Errorf("iv %v: %d slots, want %d", iv, got, tc.slots)
		}
		if len(perSlot) != tc.used {
			t.Errorf("iv %v: 255 VRIDs use %d slots, want %d", iv, len(perSlot), tc.used)
		}
		for p, n := range perSlot {
			if n < tc.min || n > tc.max {
				t.Errorf("iv %v: slot %v holds %d VRIDs, want %d or %d", iv, p, n, tc.min, tc.max)
			}
		}
		if rotated != 255 {
			t.Errorf("iv %v: another source keeps %d VRIDs on the same slot", iv, 255-rotated)
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
		{"a little early: the previous interval's", 240 * time.Millisecond, 250 * time.Millisecond, -750 * time.Millisecond},
		{"never later", 900 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		{"a phase past the interval", 1600 * time.Millisecond, 1250 * time.Millisecond, 1250 * time.Millisecond},
		{"phase zero", 3*time.Second + 10*time.Millisecond, 0, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := onPhase(epoch.Add(tc.at), iv, tc.phase).Sub(epoch); got != tc.want {
				t.Errorf("onPhase(+%v, phase %v) = +%v, want +%v", tc.at, tc.phase, got, tc.want)
			}
		})
	}
}

// A master with SpreadAdverts: the first advert at once, the second half an
// interval to one interval later on the instance's phase, the
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
		if gap := d.Sub(start); gap < iv/2 || gap > iv {
			t.Fatalf("VRID %d: second advert %v after the first, want within [%v, %v]", vrid, gap, iv/2, iv)
		}
		if p := phase(d, c); p != 0 {
			// The phase was less than half an interval away: half an
			// interval later, then the phase, though the timer is served
			// late (as it always is, by microseconds).
			inst.Step(d.Add(40*time.Microsecond), Timeout{})
			next := inst.Deadline()
			if gap := next.Sub(d); gap < iv/2 || gap > iv || phase(next, c) != 0 {
				t.Fatalf("VRID %d: second advert %v off its phase, the third %v later %v off", vrid, p, gap, phase(next, c))
			}
			d = next
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
		// An advert out of turn (the answer to a lower priority) a third of
		// an interval before the phase: the next one not that soon (half an
		// interval later), the one after on the phase again; never more than
		// an interval of silence.
		at := d.Add(-iv / 3)
		acts = inst.Step(at, rx(c, lower4, 50))
		if len(acts) == 0 || !isSend(acts[0]) {
			t.Fatalf("VRID %d: lower priority advert: %v, want an answer", vrid, acts)
		}
		next := inst.Deadline()
		if gap := next.Sub(at); gap < iv/2 || gap > iv {
			t.Fatalf("VRID %d: after an advert out of turn the next is %v later, want within [%v, %v]", vrid, gap, iv/2, iv)
		}
		inst.Step(next.Add(40*time.Microsecond), Timeout{})
		if gap := inst.Deadline().Sub(next); gap < iv/2 || gap > iv || phase(inst.Deadline(), c) != 0 {
			t.Fatalf("VRID %d: the advert after is %v later (phase %v), want within [%v, %v] on the phase", vrid, gap, phase(inst.Deadline(), c), iv/2, iv)
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
