package track

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestScriptCounter feeds run outcomes ('+' success, '-' failure or timeout)
// and checks the status after each, following keepalived 2.2.7
// vrrp_scheduler.c vrrp_script_child_thread.
func TestScriptCounter(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		initFail   bool
		runs       string
		want       string // status after each run: U up, D down
		wantStart  Status
	}{
		{name: "defaults: first success is up", rise: 1, fall: 1, runs: "+", want: "U", wantStart: Unknown},
		{name: "defaults: first failure is down", rise: 1, fall: 1, runs: "-", want: "D", wantStart: Unknown},
		{name: "defaults flap", rise: 1, fall: 1, runs: "+-+-", want: "UDUD", wantStart: Unknown},
		{
			// vrrp_init_script: result = rise - 1, "one success is enough".
			name: "at start one success is enough even with rise 3", rise: 3, fall: 2,
			runs: "+", want: "U", wantStart: Unknown,
		},
		{
			// init_state INIT: the first failure reports down whatever fall is.
			name: "at start one failure is enough even with fall 3", rise: 2, fall: 3,
			runs: "-", want: "D", wantStart: Unknown,
		},
		{
			name: "fall 3 needs three failures", rise: 1, fall: 3,
			runs: "+---", want: "UUUD", wantStart: Unknown,
		},
		{
			name: "a success forgets a partial fall", rise: 1, fall: 3,
			runs: "+--+--", want: "UUUUUU", wantStart: Unknown,
		},
		{
			name: "rise 3 needs three successes after a failure", rise: 3, fall: 1,
			runs: "-+++", want: "DDDU", wantStart: Unknown,
		},
		{
			name: "a failure forgets a partial rise", rise: 3, fall: 1,
			runs: "-++-++", want: "DDDDDD", wantStart: Unknown,
		},
		{
			// init_fail: result = 0, so rise successes are needed from the start.
			name: "init_fail starts down and needs rise successes", rise: 2, fall: 1, initFail: true,
			runs: "++", want: "DU", wantStart: Down,
		},
		{
			name: "init_fail with rise 1", rise: 1, fall: 1, initFail: true,
			runs: "-+", want: "DU", wantStart: Down,
		},
		{
			name: "zero rise and fall are taken as 1", rise: 0, fall: 0,
			runs: "+-", want: "UD", wantStart: Unknown,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewScriptCounter(tt.rise, tt.fall, tt.initFail)
			if c.Status() != tt.wantStart {
				t.Fatalf("start status %v, want %v", c.Status(), tt.wantStart)
			}
			var got []byte
			prev := c.Status()
			for _, r := range tt.runs {
				changed := c.Observe(r == '+')
				s := c.Status()
				if changed != (s != prev) {
					t.Fatalf("Observe reported changed=%v but status went %v -> %v", changed, prev, s)
				}
				prev = s
				switch s {
				case Up:
					got = append(got, 'U')
				case Down:
					got = append(got, 'D')
				default:
					got = append(got, '?')
				}
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("runs %q (-want +got):\n%s", tt.runs, diff)
			}
		})
	}
}
