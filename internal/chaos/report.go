package chaos

import (
	"fmt"
	"html"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteTable prints the per-kind table and every broken invariant.
func WriteTable(w io.Writer, o *Outcome) {
	in, res := o.Input, o.Result
	sched := "normal priority"
	if o.Options.RTPriority != 0 {
		sched = fmt.Sprintf("vrrp_rt_priority %d", o.Options.RTPriority)
	}
	fmt.Fprintf(w, "chaos: seed %d, %d faults in %d groups, advert_int %v, one-holder bound %v (Master_Down_Interval + 100 ms), r3 %s, daemons at %s, %.0f s\n",
		o.Options.Seed, len(o.Plan), res.Groups, in.Advert, in.Bound, map[bool]string{true: "keepalived 2.2.7", false: "vigil"}[o.Options.Keepalived], sched, in.End.Sub(in.Start).Seconds())
	fmt.Fprintf(w, "client: %d requests, %d failed\n", res.Requests, res.Failed)
	ka := len(in.Keepalived) > 0
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	head := "fault\tcount\tskipped\tto one holder worst\tmedian\ttwo holders ms\tfailed requests\tbroken (vigil)\t"
	if ka {
		head += "caused by keepalived\t"
	}
	fmt.Fprintln(tw, head)
	var tot KindStats
	for _, k := range res.Kinds {
		if k.Count == 0 && k.Skipped == 0 {
			continue
		}
		worst, med := toOne(k.ToOne)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.0f\t%d\t%d\t", k.Kind, k.Count, k.Skipped, worst, med, msf(k.TwoHolder), k.Failed, k.Broken)
		if ka {
			fmt.Fprintf(tw, "%d\t", k.ByKA)
		}
		fmt.Fprintln(tw)
		tot.Count += k.Count
		tot.Skipped += k.Skipped
	}
	vigil := res.VigilBroken()
	fmt.Fprintf(tw, "all\t%d\t%d\t\t\t\t%d\t%d\t", tot.Count, tot.Skipped, res.Failed, len(vigil))
	if ka {
		fmt.Fprintf(tw, "%d\t", len(res.Violations)-len(vigil))
	}
	fmt.Fprintln(tw)
	tw.Flush()
	list := func(vs []Violation) {
		for _, v := range vs {
			around := ""
			if len(v.Faults) > 0 {
				var fs []string
				for _, n := range v.Faults {
					for _, f := range in.Faults {
						if f.N == n {
							fs = append(fs, fmt.Sprintf("#%d %s", n, f.Kind))
						}
					}
				}
				around = " [" + strings.Join(fs, ", ") + "]"
			}
			fmt.Fprintf(w, "  %s %s%s: %s\n", rel(in.Start, v.At), v.Invariant, around, v.Msg)
		}
	}
	if len(vigil) == 0 {
		fmt.Fprintln(w, "no broken invariant caused by vigil")
	} else {
		fmt.Fprintf(w, "%d broken invariants:\n", len(vigil))
		list(vigil)
	}
	if n := len(res.Violations) - len(vigil); n > 0 {
		var kas []Violation
		known := map[Kind]bool{}
		for _, v := range res.Violations {
			if v.Keepalived {
				kas = append(kas, v)
				for _, k := range v.Kinds {
					known[k] = true
				}
			}
		}
		fmt.Fprintf(w, "%d broken invariants caused by keepalived 2.2.7 (the keepalived node holds the address, around a fault it is known to mishandle):\n", n)
		for _, k := range AllKinds {
			if why, ok := KeepalivedKnown[k]; ok && known[k] {
				fmt.Fprintf(w, "  %s: %s\n", k, why)
			}
		}
		list(kas)
	}
}

func rel(start, t time.Time) string { return fmt.Sprintf("+%.3fs", t.Sub(start).Seconds()) }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// toOne formats the worst and median time to one holder ("never" for a
// group that did not settle).
func toOne(ds []time.Duration) (string, string) {
	if len(ds) == 0 {
		return "-", "-"
	}
	s := slices.Clone(ds)
	never := 0
	var ok []time.Duration
	for _, d := range s {
		if d < 0 {
			never++
		} else {
			ok = append(ok, d)
		}
	}
	slices.Sort(ok)
	f := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", msf(d)) }
	worst, med := "never", "never"
	if never == 0 {
		worst = f(ok[len(ok)-1])
	} else {
		worst = fmt.Sprintf("never (%d)", never)
	}
	// The median counts a group that never settled as the longest.
	all := len(ds)
	if i := (all+1)/2 - 1; i < len(ok) {
		med = f(ok[i])
	}
	return worst, med
}

// kindColour is a fault kind's shade in the timeline.
var kindColour = map[Kind]string{
	Kill: "#e41a1c", Stop: "#ff7f00", Link: "#984ea3", Loss: "#a6cee3", OneWay: "#1f78b4", Partition: "#6a3d9a",
	ReloadVIPs: "#b2df8a", ReloadPrio: "#33a02c", VIPDelete: "#fb9a99", RSFlap: "#fdbf6f", CPUHog: "#999999", Handover: "#ffff33",
}

// WriteSVG draws the timeline: one row per node with the VIPs it held, the
// client's failed requests, the faults shaded over the rows they touch, and
// the broken invariants marked in red. Long runs wrap into lines.
func WriteSVG(w io.Writer, o *Outcome) error {
	in, res := o.Input, o.Result
	const (
		left   = 60
		width  = 1500
		rowH   = 18
		head   = 24
		legend = 48
	)
	total := in.End.Sub(in.Start)
	perLine := time.Duration(300 * float64(in.Advert)) // 30 s at advert_int 0.1
	perLine = max(perLine, 10*time.Second)
	lines := int((total + perLine - 1) / perLine)
	rows := len(in.Nodes) + 1
	lineH := head + rows*rowH + 40
	H := legend + lines*lineH + 10
	pxs := float64(width-left-10) / perLine.Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="8" y="16" font-size="13" font-weight="bold">vigil chaos: seed %d, %d faults, advert_int %v, bound %v, %d requests (%d failed), %d broken invariants</text>`+"\n",
		o.Options.Seed, len(o.Plan), in.Advert, in.Bound, res.Requests, res.Failed, len(res.Violations))
	// Legend.
	x := 8
	item := func(colour, label string, opacity float64) {
		fmt.Fprintf(&b, `<rect x="%d" y="26" width="12" height="10" fill="%s" fill-opacity="%.2f" stroke="#555" stroke-width="0.5"/><text x="%d" y="35">%s</text>`+"\n", x, colour, opacity, x+15, html.EscapeString(label))
		x += 20 + 6*len(label) + 8
	}
	item("#1b7837", "holds "+VIPFront.String(), 1)
	item("#7fbf7b", "holds "+VIPExtra.String(), 1)
	item("#d7191c", "two holders / failed request / broken", 1)
	for _, k := range AllKinds {
		item(kindColour[k], string(k), 0.45)
	}
	segs := map[netip.Addr][]seg{}
	for _, v := range []netip.Addr{VIPFront, VIPExtra} {
		segs[v] = in.Segments(v)
	}
	for li := range lines {
		t0 := in.Start.Add(time.Duration(li) * perLine)
		t1 := t0.Add(perLine)
		y0 := legend + li*lineH
		X := func(t time.Time) float64 { return left + t.Sub(t0).Seconds()*pxs }
		clip := func(a, b time.Time) (float64, float64, bool) {
			a, b = maxTime(a, t0), minTime(b, t1)
			if !b.After(a) {
				return 0, 0, false
			}
			return X(a), max(X(b)-X(a), 0.8), true
		}
		rowY := func(r int) int { return y0 + head + r*rowH }
		// Axis: a tick every 5 s (every second below 20 s per line).
		tick := 5 * time.Second
		if perLine <= 20*time.Second {
			tick = time.Second
		}
		for t := time.Duration(li) * perLine; t <= time.Duration(li+1)*perLine; t += tick {
			xx := X(in.Start.Add(t))
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" fill="#777" font-size="9">%.0fs</text>`+"\n",
				xx, xx, y0+head-2, rowY(rows)+3, xx+2, rowY(rows)+11, t.Seconds())
		}
		for r, name := range append(slices.Clone(in.Nodes), "client") {
			fmt.Fprintf(&b, `<text x="6" y="%d">%s</text><line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#eee"/>`+"\n", rowY(r)+13, name, left, width-10, rowY(r)+rowH, rowY(r)+rowH)
		}
		// Faults, shaded over their target rows (every row when they
		// act on the whole cluster).
		lastLabel, labelLane := -1000.0, 0
		for _, f := range in.Faults {
			if f.Skipped != "" || f.Start.IsZero() {
				continue
			}
			heal := f.Heal
			if heal.IsZero() {
				heal = in.End
			}
			xx, ww, ok := clip(f.Start, maxTime(heal, f.Start.Add(in.Advert)))
			if !ok {
				continue
			}
			targets := f.Targets
			if len(targets) == 0 || f.Kind == Partition || f.Kind == RSFlap {
				targets = []int{0, 1, 2, 3}
			}
			for _, r := range targets {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.45"><title>%s</title></rect>`+"\n",
					xx, rowY(r), ww, rowH, kindColour[f.Kind], html.EscapeString(f.String()))
			}
			if f.Start.After(t0) {
				// Labels closer than their width alternate between two
				// heights.
				if xx-lastLabel < 75 {
					labelLane = 1 - labelLane
				} else {
					labelLane = 0
				}
				lastLabel = xx
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="9">#%d %s</text>`+"\n", xx, y0+head-4-9*labelLane, f.N, f.Kind)
			}
		}
		// Holders.
		for _, v := range []netip.Addr{VIPFront, VIPExtra} {
			colour, h, off := "#1b7837", 8, 3
			if v == VIPExtra {
				colour, h, off = "#7fbf7b", 4, 12
			}
			for _, s := range segs[v] {
				xx, ww, ok := clip(s.from, s.to)
				if !ok {
					continue
				}
				for r, held := range s.held {
					if held {
						c := colour
						if s.count() >= 2 {
							c = "#d7191c"
						}
						fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", xx, rowY(r)+off, ww, h, c)
					}
				}
			}
		}
		// Failed requests.
		for _, q := range in.Requests {
			if q.Err == "" {
				continue
			}
			if xx, ww, ok := clip(q.At, q.End); ok {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#d7191c" fill-opacity="0.6"><title>%s</title></rect>`+"\n", xx, rowY(rows-1)+4, ww, rowH-8, html.EscapeString(q.Err))
			}
		}
		// Broken invariants.
		lastX, lane := -1000.0, 0
		for i, v := range res.Violations {
			if v.At.Before(t0) || !v.At.Before(t1) {
				continue
			}
			if X(v.At)-lastX < 110 {
				lane = (lane + 1) % 2
			} else {
				lane = 0
			}
			lastX = X(v.At)
			xx := X(v.At)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#d7191c" stroke-width="2"><title>%s</title></line>`+"\n", xx, xx, y0+head, rowY(rows)+14+12*lane, html.EscapeString(v.Msg))
			by := ""
			if v.Keepalived {
				by = " (keepalived)"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#d7191c" font-weight="bold">✗%d %s%s</text>`+"\n", xx+2, rowY(rows)+23+12*lane, i+1, v.Invariant, by)
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteEvents lists the run in time order: faults starting and healing,
// addresses added (+) and removed (-), failed requests, broken invariants.
func WriteEvents(w io.Writer, o *Outcome) {
	in := o.Input
	type ev struct {
		at   time.Time
		line string
	}
	var evs []ev
	for _, f := range in.Faults {
		if f.Skipped != "" {
			evs = append(evs, ev{f.Start, fmt.Sprintf("fault %s skipped: %s", f.Fault, f.Skipped)})
			continue
		}
		evs = append(evs, ev{f.Start, fmt.Sprintf("fault %s starts on %v", f.Fault, nodeNames(f.Targets))}, ev{f.Heal, fmt.Sprintf("fault #%d %s healed", f.N, f.Kind)})
	}
	for _, c := range in.Changes {
		sign := "-"
		if c.Added {
			sign = "+"
		}
		evs = append(evs, ev{c.At, fmt.Sprintf("%s %s%v", in.Nodes[c.Node], sign, c.Addr)})
	}
	for _, r := range in.Requests {
		if r.Err != "" {
			evs = append(evs, ev{r.At, fmt.Sprintf("request failed after %v: %s", r.End.Sub(r.At).Round(time.Millisecond), r.Err)})
		}
	}
	for _, v := range o.Result.Violations {
		by := ""
		if v.Keepalived {
			by = " (caused by keepalived)"
		}
		evs = append(evs, ev{v.At, fmt.Sprintf("BROKEN%s %s: %s", by, v.Invariant, v.Msg)})
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	for _, e := range evs {
		fmt.Fprintf(w, "%s %s\n", rel(in.Start, e.at), e.line)
	}
}
