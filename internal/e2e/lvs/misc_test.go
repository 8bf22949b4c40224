package lvs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/status"
)

// miscScript is the tutorial's /etc/keepalived/test.sh (host and port as
// arguments, exit 0 when the port is open, 1 otherwise) with bash's
// /dev/tcp in place of nmap, plus misc_dynamic: when a file weight-<host>
// sits beside the script, it exits 2 + the weight it holds.
const miscScript = `#!/bin/bash
# Check for correct number of parameters (host and port)
if [ $# -ne 2 ]; then
	echo "Error: Usage: $0 <host> <port>"
	exit 1
fi
host="$1"
port="$2"
if ! timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
	exit 1
fi
w="$(dirname "$0")/weight-$host"
if [ -f "$w" ]; then
	exit $(( $(cat "$w") + 2 ))
fi
exit 0
`

// MISC_CHECK runs the tutorial's kind of script with the real server's host
// and port as arguments; with misc_dynamic its exit status 2+N sets the
// weight N (keepalived 2.2.7 check_misc.c: "the actual weight set when using
// misc_dynamic is two less than the exit status"), which shows in `vigil
// status --json`, in the nftables service's destination map and in the
// traffic (wrr); exit 1 removes the server; exit 0 restores the configured
// weight.
func TestMiscCheckDynamicWeight(t *testing.T) {
	t.Parallel()
	tp := newTopo(t, "misc", topoOpts{})
	d := tp.dirs[0]
	dir := t.TempDir()
	script := filepath.Join(dir, "test.sh")
	if err := os.WriteFile(script, []byte(miscScript), 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(a string) string {
		return fmt.Sprintf("MISC_CHECK {\n\tmisc_path \"%s %s 80\"\n\tmisc_timeout 3\n\tmisc_dynamic\n}\n", script, a)
	}
	setWeight := func(a string, w int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "weight-"+a), []byte(fmt.Sprint(w)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.writeConfig(vrrpSingle() + vs{port: 80, delayLoop: "1", algo: "wrr", reals: []rs{
		{addr: web1, weight: 1, checker: check(web1)}, {addr: web2, weight: 1, checker: check(web2)},
	}}.String())
	d.start()
	waitServing(t, d, 80)
	waitChecked(t, d, patience)

	// statusWeights reads `vigil status --json` (the CLI, from the
	// director).
	statusWeights := func() map[string]int {
		t.Helper()
		out, err := d.vigil("status", "--json", "--api-socket", d.sock())
		if err != nil {
			t.Fatal(err)
		}
		var s status.Snapshot
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("vigil status --json: %v\n%s", err, out)
		}
		m := map[string]int{}
		for _, a := range []string{web1, web2} {
			if r, ok := realServer(s, 80, a); ok && r.Healthy {
				m[a] = r.Weight
			}
		}
		return m
	}
	expect := func(step string, want map[string]int, spread map[string]int) {
		t.Helper()
		took := waitFor(t, patience, step+": nftables weights", func() (bool, string) {
			dests, _, err := nftDests(d.host, 80)
			return err == nil && fmt.Sprint(dests) == fmt.Sprint(keyed(want)), fmt.Sprint(dests, err)
		})
		if got := statusWeights(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: vigil status --json: healthy real servers' weights %v, want %v", step, got, want)
		}
		n := 0
		for _, c := range spread {
			n += c
		}
		if got := tp.client.spread(80, n); fmt.Sprint(got) != fmt.Sprint(spread) {
			t.Errorf("%s: %d requests went %v, want %v", step, n, got, spread)
		}
		t.Logf("%s: weights %v in nftables after %v, traffic as expected", step, want, took.Round(time.Millisecond))
	}

	expect("exit 0 (configured weight)", map[string]int{web1: 1, web2: 1}, map[string]int{web1: 10, web2: 10})
	setWeight(web1, 3) // exit 5
	expect("web1 exits 5", map[string]int{web1: 3, web2: 1}, map[string]int{web1: 30, web2: 10})
	setWeight(web2, 0) // exit 2: alive with weight 0, no new connections
	expect("web2 exits 2", map[string]int{web1: 3, web2: 0}, map[string]int{web1: 20})
	tp.web[web1].stop() // exit 1
	waitPool(t, d, 80, web1, false, patience)
	if r, _ := realServer(d.mustStatus(), 80, web1); r.Healthy || r.Reason == "" {
		t.Errorf("web1 stopped: %+v, want down with the script's exit status as reason", r)
	} else {
		t.Logf("web1 stopped: down, reason %q", r.Reason)
	}
	if err := os.Remove(filepath.Join(dir, "weight-"+web2)); err != nil {
		t.Fatal(err)
	}
	expect("web1 stopped, web2 exits 0", map[string]int{web2: 1}, map[string]int{web2: 10})
	tp.web[web1].start()
	// web1 comes back with the weight its script reports, 3.
	expect("web1 back", map[string]int{web1: 3, web2: 1}, map[string]int{web1: 30, web2: 10})
}

// keyed turns address → weight into nftDests' "addr:80" keys.
func keyed(m map[string]int) map[string]int {
	out := map[string]int{}
	for a, w := range m {
		out[a+":80"] = w
	}
	return out
}
