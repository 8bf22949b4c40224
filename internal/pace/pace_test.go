package pace

import (
	"testing"
	"time"
)

func TestAllow(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var last time.Time
	for _, step := range []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                   // unset: the first goes through
		{time.Second, false},        // within the period
		{10*time.Second - 1, false}, // just before it ends
		{10 * time.Second, true},    // a full period after the last allowed
		{15 * time.Second, false},   // the period restarts at the allowed one
		{5 * time.Second, true},     // clock stepped back: reopens
		{5*time.Second + 1, false},  // and counts from there
		{15*time.Second + 1, true},
	} {
		before := last
		if got := Allow(&last, t0.Add(step.at), 10*time.Second); got != step.want {
			t.Errorf("at +%v after %v: %v, want %v", step.at, before.Sub(t0), got, step.want)
		}
		if step.want && !last.Equal(t0.Add(step.at)) || !step.want && !last.Equal(before) {
			t.Errorf("at +%v: last %v", step.at, last.Sub(t0))
		}
	}
}
