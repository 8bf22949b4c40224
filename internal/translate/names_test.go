package translate

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
)

// TestNamesReadOnce: one translation resolves every route's and rule's
// names with one read of each file it needs; a file that cannot be read is
// not asked for again either.
func TestNamesReadOnce(t *testing.T) {
	reads := map[string]int{}
	nm := newNames()
	nm.read = func(path string) ([]byte, error) {
		reads[path]++
		switch path {
		case rtDir + "rt_tables":
			return []byte("# reserved\n255\tlocal\n100 web\n101\tdb\n"), nil
		case "/etc/protocols":
			return []byte("ospf\t89\tOSPFIGP\t# Open Shortest Path First\n"), nil
		}
		return nil, errors.New("no such file")
	}
	warn := func(format string, args ...any) { t.Errorf("warning: "+format, args...) }
	for i, table := range []string{"web", "db", "web", "db"} {
		r, err := routeOf(nm, config.Route{Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "eth0", Table: table}, "eth0", warn)
		if want := 100 + i%2; err != nil || r.Table != want {
			t.Errorf("route in table %s: table %d (%v), want %d", table, r.Table, err, want)
		}
		rule, err := ruleOf(nm, config.Rule{From: netip.MustParsePrefix("10.9.0.0/16"), Table: table, Options: []string{"ipproto", "ospf"}}, warn)
		if want := 100 + i%2; err != nil || rule.Table != want || rule.IPProto != 89 {
			t.Errorf("rule to table %s: table %d, ipproto %d (%v), want %d and 89", table, rule.Table, rule.IPProto, err, want)
		}
		if _, err := nm.realms("nowhere"); err == nil {
			t.Error("realm nowhere resolved without rt_realms")
		}
	}
	for path, n := range reads {
		if n != 1 {
			t.Errorf("%s read %d times, want once", path, n)
		}
	}
	if len(reads) != 3 {
		t.Errorf("files read: %v, want rt_tables, rt_realms and /etc/protocols", reads)
	}
}
