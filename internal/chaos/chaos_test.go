package chaos

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/netnstest"
)

// knownBroken are fault kinds whose invariants the daemon on this branch
// breaks for a known reason being fixed elsewhere; TestChaos leaves them
// out so it guards everything else. Re-enable each when its fix lands.
var knownBroken = []Kind{}

// TestChaos runs a short seeded schedule (about 20 faults, advert_int 0.1,
// every fault kind but knownBroken) over three vigil nodes and fails on
// any broken invariant, printing the table.
func TestChaos(t *testing.T) {
	netnstest.RequireRoot(t)
	if testing.Short() {
		t.Skip("skipped in -short: a chaos run takes about two minutes")
	}
	bin := netnstest.VigilBinary(t)
	var kinds []Kind
	for _, k := range AllKinds {
		if !slices.Contains(knownBroken, k) {
			kinds = append(kinds, k)
		}
	}
	var log strings.Builder
	// The daemons run at a real-time priority, as the suite's other
	// daemons do, so that other packages' tests running beside this one
	// do not starve them into failovers the schedule did not cause.
	o := Options{Seed: 20261207, Faults: 20, Kinds: kinds, Cover: true, Advert: 100 * time.Millisecond, VigilBin: bin, Dir: t.TempDir(), Log: &log, RTPriority: 50}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	out, err := Run(ctx, o)
	if out == nil {
		t.Fatalf("chaos: %v", err)
	}
	var table strings.Builder
	WriteTable(&table, out)
	t.Logf("\n%s", table.String())
	if err != nil {
		t.Errorf("chaos: %v", err)
	}
	if broken := out.Result.VigilBroken(); len(broken) > 0 {
		t.Errorf("%d broken invariants (reproduce: go run ./cmd/vigil-chaos --seed %d --faults %d --kinds %s --cover --advert-int 0.1 --rt-priority 50)\nprogress:\n%s",
			len(broken), o.Seed, o.Faults, kindList(kinds), log.String())
		for name, l := range out.Logs {
			t.Logf("--- %s\n%s", name, tailLines(l, 60))
		}
	}
}

func kindList(ks []Kind) string {
	var s []string
	for _, k := range ks {
		s = append(s, string(k))
	}
	return strings.Join(s, ",")
}

func tailLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
