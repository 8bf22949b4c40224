package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestScaleTally: each column counts the runs in which vigil's value, as
// printed, is at or below keepalived's, and names the runs behind.
func TestScaleTally(t *testing.T) {
	ms := func(xs ...float64) dist {
		var d dist
		for _, x := range xs {
			d = append(d, time.Duration(x*float64(time.Millisecond)))
		}
		return d
	}
	tl := newScaleTally([]string{"vigil", "keepalived"})
	// run 1: vigil ahead in CPU, behind on the backup by 0.001 (a tie as
	// printed); run 2: behind on the master's CPU, jitter max worse.
	tl.add(scaleKey{1000, "1", 0}, "vigil", scaleResult{cpu: [2]float64{1.5, 0.801}, rss: [2]float64{13, 10}, jitter: ms(0.02, 0.5)})
	tl.add(scaleKey{1000, "1", 0}, "keepalived", scaleResult{cpu: [2]float64{2.5, 0.80}, rss: [2]float64{14, 14}, jitter: ms(0.04, 1.0)})
	tl.add(scaleKey{1000, "1", 1}, "vigil", scaleResult{cpu: [2]float64{2.6, 0.7}, rss: [2]float64{13, 10}, jitter: ms(0.02, 3.0)})
	tl.add(scaleKey{1000, "1", 1}, "keepalived", scaleResult{cpu: [2]float64{2.5, 0.8}, rss: [2]float64{14, 14}, jitter: ms(0.04, 1.0)})
	tl.add(scaleKey{100, "1", 0}, "vigil", scaleResult{}) // keepalived not measured: no line
	var b bytes.Buffer
	tl.write(&b)
	out := b.String()
	for _, want := range []string{
		"1000 instances, advert_int 1",
		"CPU master 1/2 (behind in run 2)",
		"CPU backup 2/2;",
		"RSS master 2/2;",
		"jitter max 1/2 (behind in run 2)",
		"timer error median 0/0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tally lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "100 instances") || strings.Count(out, "\n") != 1 {
		t.Errorf("want one line, for 1,000 instances only:\n%s", out)
	}
	var none bytes.Buffer
	newScaleTally([]string{"vigil"}).write(&none)
	if none.Len() != 0 {
		t.Errorf("a tally with one daemon: %q", none.String())
	}
}
