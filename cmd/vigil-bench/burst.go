package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// burstGap separates the bursts of a master's adverts: adverts closer
// than this to the previous one belong to its burst (vigil sends the
// instances of one phase slot in one wake-up; slots are 31 ms apart at
// advert_int 1).
const burstGap = 2 * time.Millisecond

// stamp is one advert of an instance as the sniffer saw it.
type stamp struct {
	at time.Time
	k  key
}

// burstSplit is where the advert jitter comes from: each spacing's error
// split into the move of its burst's first advert (the wake-up, the first
// send) and the move of the advert within its burst (the sends before it).
type burstSplit struct {
	start, within dist
	// byPos is the within-burst part by position in the burst, in groups
	// of posGroup.
	byPos []dist
	// size and span are the bursts' advert counts and lengths (first to
	// last advert).
	size []int
	span dist
}

const posGroup = 8

// splitBursts groups the adverts of every instance (per key, sorted) into
// bursts and splits each spacing's error (against iv) as burstSplit says.
func splitBursts(per map[key][]time.Time, iv time.Duration) burstSplit {
	var all []stamp
	for k, ts := range per {
		for _, t := range ts {
			all = append(all, stamp{t, k})
		}
	}
	slices.SortFunc(all, func(a, b stamp) int { return a.at.Compare(b.at) })
	type place struct {
		start time.Time
		pos   int
	}
	where := make(map[stamp]place, len(all))
	var s burstSplit
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].at.Sub(all[j-1].at) < burstGap {
			j++
		}
		for p := i; p < j; p++ {
			where[all[p]] = place{all[i].at, p - i}
		}
		s.size = append(s.size, j-i)
		s.span = append(s.span, all[j-1].at.Sub(all[i].at))
		i = j
	}
	for k, ts := range per {
		for j := 1; j < len(ts); j++ {
			if d := ts[j].Sub(ts[j-1]); d >= iv*19/10 || d <= iv/10 {
				continue
			}
			a, b := where[stamp{ts[j-1], k}], where[stamp{ts[j], k}]
			ds := b.start.Sub(a.start) - iv
			dw := ts[j].Sub(b.start) - ts[j-1].Sub(a.start)
			s.start = append(s.start, max(ds, -ds))
			s.within = append(s.within, max(dw, -dw))
			g := b.pos / posGroup
			for len(s.byPos) <= g {
				s.byPos = append(s.byPos, nil)
			}
			s.byPos[g] = append(s.byPos[g], max(dw, -dw))
		}
	}
	return s
}

// String is one line: the parts' median / p99 / max, the within part's
// median and p99 by position, the bursts' sizes and spans.
func (s burstSplit) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "burst start %s | within burst %s | within by position", s.start.mpm(), s.within.mpm())
	for g, d := range s.byPos {
		if len(d) > 0 {
			fmt.Fprintf(&b, " %d-%d: %s/%s", g*posGroup, g*posGroup+posGroup-1, ms(d.median()), ms(d.p99()))
		}
	}
	sizes := slices.Clone(s.size)
	slices.Sort(sizes)
	if len(sizes) > 0 {
		fmt.Fprintf(&b, " | bursts %d, size median %d max %d, span median %s p99 %s", len(sizes), sizes[len(sizes)/2], sizes[len(sizes)-1], ms(s.span.median()), ms(s.span.p99()))
	}
	return b.String()
}

// lateBound is how far off its interval a spacing must be for lateSpells
// to place it in time.
const lateBound = time.Millisecond

// lateSpell is a run of spacings off by more than lateBound, each less
// than a second after the previous one: when in the window it began (the
// later advert of its first spacing), how many spacings and the largest
// error.
type lateSpell struct {
	abs   time.Time // when it began, to match against a system-wide trace
	at    time.Duration
	n     int
	worst time.Duration
}

// lateSpells places in the window that began at t0 the spacings of per
// off their interval iv by more than lateBound (lost adverts excepted), so
// that a daemon's periodic work (a collection, a release of memory) shows
// by when it comes.
func lateSpells(per map[key][]time.Time, iv time.Duration, t0 time.Time) []lateSpell {
	type off struct {
		at time.Time
		by time.Duration
	}
	var offs []off
	for _, ts := range per {
		for j := 1; j < len(ts); j++ {
			d := ts[j].Sub(ts[j-1])
			if d >= iv*19/10 {
				continue
			}
			if e := max(d-iv, iv-d); e > lateBound {
				offs = append(offs, off{ts[j], e})
			}
		}
	}
	slices.SortFunc(offs, func(a, b off) int { return a.at.Compare(b.at) })
	var out []lateSpell
	var last time.Time
	for _, o := range offs {
		if len(out) == 0 || o.at.Sub(last) >= time.Second {
			out = append(out, lateSpell{at: o.at.Sub(t0), abs: o.at})
		}
		sp := &out[len(out)-1]
		sp.n++
		sp.worst = max(sp.worst, o.by)
		last = o.at
	}
	return out
}

// spellsString prints spells as "+12.3 s (17:48:50.089905): 5, max 4.21
// ms; ...", the clock time in UTC (the kernel's stamp of the frame).
func spellsString(spells []lateSpell) string {
	var parts []string
	for _, sp := range spells {
		parts = append(parts, fmt.Sprintf("+%.1f s (%s): %d, max %s ms", sp.at.Seconds(), sp.abs.UTC().Format("15:04:05.000000"), sp.n, ms(sp.worst)))
	}
	return strings.Join(parts, "; ")
}
