package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// TestSoakProvokedStop runs a short soak with the master stopped on
// purpose (SIGSTOP for 400 ms, Master_Down_Interval 180 ms) and checks
// that the report places the stall and the failovers it caused: every
// instance in one stall around the stop, the failovers after it, the
// canary and the host samples recorded. Whether its verdict reads "daemon"
// depends on what else the machine did then, which the pure tests cover.
func TestSoakProvokedStop(t *testing.T) {
	netnstest.RequireRoot(t)
	if testing.Short() {
		t.Skip("skipped in -short: starts a lab")
	}
	const instances = 10
	o := SoakOptions{
		Instances: instances, Advert: 50 * time.Millisecond, Duration: 3 * time.Second,
		Provoke:  []Provocation{{Kind: "stop", At: 1200 * time.Millisecond, For: 400 * time.Millisecond}},
		VigilBin: netnstest.VigilBinary(t), Dir: t.TempDir(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := Soak(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	WriteSoak(&out, r)
	t.Logf("\n%s", out.String())
	if len(r.Provoked) != 1 || r.Provoked[0].Err != "" {
		t.Fatalf("provoked: %+v", r.Provoked)
	}
	mid := r.Provoked[0].Start.Add(200 * time.Millisecond)
	stall := 0
	for i, s := range r.Stalls {
		if !s.Start.After(mid) && s.End.After(mid) {
			stall = i + 1
			if s.Instances != instances || s.Longest < 350*time.Millisecond || s.Verdict == "" {
				t.Errorf("stall around the stop: %+v, want all %d instances, at least 350 ms and a verdict", s, instances)
			}
		}
	}
	if stall == 0 {
		t.Fatalf("no stall around the stop at %s", mid.Format("15:04:05.000"))
	}
	if r.FalseFailovers != instances {
		t.Errorf("%d failovers, want every instance (%d)", r.FalseFailovers, instances)
	}
	linked := false
	for _, g := range r.FailoverGroups {
		linked = linked || g.Stall == stall
	}
	// An instance fails over once at most in the record: one the load had
	// made fail over before the stop leaves no group behind it.
	if !linked && r.FailoverList[0].At.After(r.Provoked[0].Start) {
		t.Errorf("no failover group after stall %d: %+v", stall, r.FailoverGroups)
	}
	if st := r.Host.Canary["normal"]; st == nil || st.Wakes == 0 {
		t.Errorf("canary: %+v", r.Host.Canary)
	}
	if len(r.Host.Stat) < 10 || len(r.Host.Proc["r1"]) < 10 || len(r.Host.Proc["r2"]) < 10 {
		t.Errorf("%d /proc/stat samples, %d and %d schedstat samples", len(r.Host.Stat), len(r.Host.Proc["r1"]), len(r.Host.Proc["r2"]))
	}
}
