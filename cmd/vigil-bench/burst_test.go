package main

import (
	"testing"
	"time"
)

// Two bursts a second apart of three instances each: the second burst
// starts 30 µs later and its last advert moves 50 µs within it. The split
// gives each spacing's error to the burst's start and to the advert's
// place in it.
func TestSplitBursts(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	us := time.Microsecond
	a, b, c := key{1, 1}, key{1, 2}, key{2, 1}
	per := map[key][]time.Time{
		a: {t0, t0.Add(time.Second + 30*us)},
		b: {t0.Add(20 * us), t0.Add(time.Second + 50*us)},
		c: {t0.Add(40 * us), t0.Add(time.Second + 120*us)},
	}
	s := splitBursts(per, time.Second)
	if len(s.size) != 2 || s.size[0] != 3 || s.size[1] != 3 {
		t.Fatalf("bursts %v, want two of 3", s.size)
	}
	if got := s.start.sorted(); len(got) != 3 || got[0] != 30*us || got[2] != 30*us {
		t.Errorf("start parts %v, want 30 µs each", got)
	}
	if got := s.within.sorted(); len(got) != 3 || got[0] != 0 || got[1] != 0 || got[2] != 50*us {
		t.Errorf("within parts %v, want 0, 0, 50 µs", got)
	}
	if len(s.byPos) != 1 || len(s.byPos[0]) != 3 {
		t.Errorf("by position %v, want one group of 3", s.byPos)
	}
	if s.span.max() != 90*us {
		t.Errorf("span max %v, want 90 µs", s.span.max())
	}
}

// Spacings off by more than lateBound are grouped into spells by when
// they come in the window: two instances late together at +3 s make one
// spell, one late at +10 s another; a lost advert (a spacing of two
// intervals) and spacings within the bound are not counted.
func TestLateSpells(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	ms := time.Millisecond
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	per := map[key][]time.Time{
		{1, 1}: {at(2 * time.Second), at(3*time.Second + 4*ms), at(4 * time.Second)},
		{1, 2}: {at(2*time.Second + 10*ms), at(3*time.Second + 12*ms), at(5*time.Second + 10*ms)},
		{1, 3}: {at(9 * time.Second), at(10*time.Second + 2*ms), at(11*time.Second + 2*ms + ms/2)},
	}
	got := lateSpells(per, time.Second, t0)
	want := []lateSpell{
		{abs: at(3*time.Second + 4*ms), at: 3*time.Second + 4*ms, n: 3, worst: 4 * ms},
		{abs: at(10*time.Second + 2*ms), at: 10*time.Second + 2*ms, n: 1, worst: 2 * ms},
	}
	if len(got) != len(want) {
		t.Fatalf("spells %v, want %v", got, want)
	}
	for i := range want {
		if got[i].at != want[i].at || !got[i].abs.Equal(want[i].abs) || got[i].n != want[i].n || got[i].worst != want[i].worst {
			t.Errorf("spell %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if s := spellsString(got); s != "+3.0 s (08:00:03.004000): 3, max 4.00 ms; +10.0 s (08:00:10.002000): 1, max 2.00 ms" {
		t.Errorf("printed %q", s)
	}
}
