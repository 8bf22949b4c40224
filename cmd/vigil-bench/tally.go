package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// scaleKey is one cell of the scale mode's loops: instance count, advert
// interval, run.
type scaleKey struct {
	n   int
	adv string
	run int
}

// scaleColumn is a column of the scale table that compares the daemons
// (less is better), read as the table prints it: a tie at the printed
// precision counts as at.
type scaleColumn struct {
	name string
	val  func(r scaleResult) (float64, bool)
}

// round is x as printed with prec decimals.
func round(x float64, prec int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', prec, 64), 64)
	return f
}

// msOf reads a quantile of d as ms() prints it; false for no samples.
func msOf(q func(dist) time.Duration) func(d dist) (float64, bool) {
	return func(d dist) (float64, bool) {
		if len(d) == 0 {
			return 0, false
		}
		return round(float64(q(d))/float64(time.Millisecond), 2), true
	}
}

var (
	median = msOf(dist.median)
	p99    = msOf(dist.p99)
	maxOf  = msOf(dist.max)
)

var scaleColumns = []scaleColumn{
	{"CPU master", func(r scaleResult) (float64, bool) { return round(r.cpu[0], 2), true }},
	{"CPU backup", func(r scaleResult) (float64, bool) { return round(r.cpu[1], 2), true }},
	{"RSS master", func(r scaleResult) (float64, bool) { return round(r.rss[0], 1), true }},
	{"RSS backup", func(r scaleResult) (float64, bool) { return round(r.rss[1], 1), true }},
	{"jitter median", func(r scaleResult) (float64, bool) { return median(r.jitter) }},
	{"jitter p99", func(r scaleResult) (float64, bool) { return p99(r.jitter) }},
	{"jitter max", func(r scaleResult) (float64, bool) { return maxOf(r.jitter) }},
	{"missed", func(r scaleResult) (float64, bool) { return float64(r.missing), true }},
	{"timer error median", func(r scaleResult) (float64, bool) { return median(r.timerErr) }},
	{"timer error p99", func(r scaleResult) (float64, bool) { return p99(r.timerErr) }},
	{"VIP - MDI median", func(r scaleResult) (float64, bool) { return median(r.vipErr) }},
	{"VIP - MDI p99", func(r scaleResult) (float64, bool) { return p99(r.vipErr) }},
}

// scaleTally keeps the scale mode's results to count, per column, the runs
// in which vigil is at or ahead of keepalived.
type scaleTally struct {
	on   bool
	runs map[scaleKey]map[string]scaleResult
}

func newScaleTally(daemons []string) *scaleTally {
	return &scaleTally{
		on:   slices.Contains(daemons, "vigil") && slices.Contains(daemons, "keepalived"),
		runs: map[scaleKey]map[string]scaleResult{},
	}
}

func (t *scaleTally) add(k scaleKey, daemon string, r scaleResult) {
	if t.runs[k] == nil {
		t.runs[k] = map[string]scaleResult{}
	}
	t.runs[k][daemon] = r
}

// line is the tally of one instance count and interval: for each column,
// "at or ahead / runs measured" and the runs behind, by number.
func (t *scaleTally) line(n int, adv string) (string, bool) {
	var keys []scaleKey
	for k, rs := range t.runs {
		_, v := rs["vigil"]
		_, ka := rs["keepalived"]
		if k.n == n && k.adv == adv && v && ka {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	slices.SortFunc(keys, func(a, b scaleKey) int { return a.run - b.run })
	var cols []string
	for _, c := range scaleColumns {
		at, measured := 0, 0
		var behind []string
		for _, k := range keys {
			v, ok1 := c.val(t.runs[k]["vigil"])
			ka, ok2 := c.val(t.runs[k]["keepalived"])
			if !ok1 || !ok2 || math.IsNaN(v) || math.IsNaN(ka) {
				continue
			}
			measured++
			if v <= ka {
				at++
			} else {
				behind = append(behind, strconv.Itoa(k.run+1))
			}
		}
		s := fmt.Sprintf("%s %d/%d", c.name, at, measured)
		if len(behind) > 0 {
			s += " (behind in run " + strings.Join(behind, ", ") + ")"
		}
		cols = append(cols, s)
	}
	return fmt.Sprintf("vigil at or ahead of keepalived, %d instances, advert_int %s, runs in which both were measured: %s", n, adv, strings.Join(cols, "; ")), true
}

// write prints the tally for every instance count and interval measured
// with both daemons (nothing with one daemon).
func (t *scaleTally) write(w io.Writer) {
	if !t.on {
		return
	}
	seen := map[[2]string]bool{}
	var cells []scaleKey
	for k := range t.runs {
		id := [2]string{strconv.Itoa(k.n), k.adv}
		if !seen[id] {
			seen[id] = true
			cells = append(cells, k)
		}
	}
	slices.SortFunc(cells, func(a, b scaleKey) int {
		if a.n != b.n {
			return a.n - b.n
		}
		return strings.Compare(a.adv, b.adv)
	})
	for _, k := range cells {
		if l, ok := t.line(k.n, k.adv); ok {
			fmt.Fprintln(w, l)
		}
	}
}
