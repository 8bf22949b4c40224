package main

import (
	"fmt"
	"slices"
	"time"
)

// dist is a set of durations.
type dist []time.Duration

func (d dist) sorted() dist {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// quantile is the nearest-rank q-quantile (0 ≤ q ≤ 1).
func (d dist) quantile(q float64) time.Duration {
	s := d.sorted()
	if len(s) == 0 {
		return 0
	}
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (d dist) median() time.Duration { return d.quantile(0.5) }
func (d dist) min() time.Duration    { return d.quantile(0) }
func (d dist) max() time.Duration    { return d.quantile(1) }
func (d dist) p99() time.Duration    { return d.quantile(0.99) }

// abs returns the absolute values.
func (d dist) abs() dist {
	out := make(dist, len(d))
	for i, x := range d {
		out[i] = max(x, -x)
	}
	return out
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// mmm is "median / min / max" in ms, or "-" when empty.
func (d dist) mmm() string {
	if len(d) == 0 {
		return "-"
	}
	return ms(d.median()) + " / " + ms(d.min()) + " / " + ms(d.max())
}

// mpm is "median / p99 / max" in ms.
func (d dist) mpm() string {
	if len(d) == 0 {
		return "-"
	}
	return ms(d.median()) + " / " + ms(d.p99()) + " / " + ms(d.max())
}

// mmpm is "min / median / p99 / max" in ms.
func (d dist) mmpm() string {
	if len(d) == 0 {
		return "-"
	}
	return ms(d.min()) + " / " + ms(d.median()) + " / " + ms(d.p99()) + " / " + ms(d.max())
}
