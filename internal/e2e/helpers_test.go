package e2e_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
	"github.com/vigil-ha/vigil/internal/status"
)

// env is one test's lab: the tutorial LAN and the daemons started on it.
type env struct {
	t     testing.TB
	net   *e2e.Net
	nodes []*e2e.Node
	addrs map[*lab.Host]*e2e.Addrs
}

// newEnv builds the tutorial network with n nodes. On failure the logs of
// every daemon are printed.
func newEnv(t *testing.T, name string, n int) *env {
	t.Helper()
	l := netnstest.New(t, name)
	nt, err := e2e.BuildNet(l, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, net: nt, addrs: map[*lab.Host]*e2e.Addrs{}}
	t.Cleanup(func() {
		for _, a := range e.addrs {
			a.Close()
		}
		if t.Failed() {
			for _, nd := range e.nodes {
				t.Logf("%s", nd.AllLogs())
			}
		}
	})
	return e
}

func (e *env) node(i int) *lab.Host { return e.net.Nodes[i] }

// start writes conf for a daemon of kind on node i and starts it.
func (e *env) start(kind e2e.Kind, i int, conf e2e.Conf) *e2e.Node {
	e.t.Helper()
	var bin string
	switch kind {
	case e2e.Vigil:
		bin = netnstest.VigilBinary(e.t)
	case e2e.Keepalived:
		bin = netnstest.RequireCommand(e.t, "keepalived")
	}
	dir, err := os.MkdirTemp(e.t.TempDir(), string(kind))
	if err != nil {
		e.t.Fatal(err)
	}
	nd := e2e.NewNode(kind, e.node(i), bin, dir)
	if conf.RouterID == "" {
		conf.RouterID = e.node(i).Name()
	}
	if err := nd.WriteConfig(conf.String()); err != nil {
		e.t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.nodes = append(e.nodes, nd)
	e.t.Cleanup(nd.Kill)
	if err := nd.WaitReady(20 * time.Second); err != nil {
		e.t.Fatal(err)
	}
	return nd
}

// restart starts a stopped node again with the same configuration.
func (e *env) restart(nd *e2e.Node) {
	e.t.Helper()
	if err := nd.Start(); err != nil {
		e.t.Fatal(err)
	}
	if err := nd.WaitReady(20 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) waitState(nd *e2e.Node, instance, state string, timeout time.Duration) {
	e.t.Helper()
	if err := nd.WaitState(instance, state, timeout); err != nil {
		e.t.Fatal(err)
	}
}

// addrsOf returns (and caches) a netlink reader for host h.
func (e *env) addrsOf(h *lab.Host) *e2e.Addrs {
	e.t.Helper()
	if a := e.addrs[h]; a != nil {
		return a
	}
	a, err := e2e.OpenAddrs(h)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addrs[h] = a
	return a
}

func (e *env) holds(h *lab.Host, vip netip.Addr) bool {
	e.t.Helper()
	ok, err := e.addrsOf(h).Has("eth0", vip)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

// waitHolds waits until h holds (or does not hold) vip on eth0.
func (e *env) waitHolds(h *lab.Host, vip netip.Addr, want bool, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.holds(h, vip) != want {
		if time.Now().After(deadline) {
			out, _ := e2e.IPAddr(h, "eth0")
			e.t.Fatalf("%s: holds %v = %v after %v, want %v\n%s", h.Name(), vip, !want, timeout, want, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlyHolder checks that exactly host want among the nodes holds vip.
func (e *env) onlyHolder(vip netip.Addr, want *lab.Host) {
	e.t.Helper()
	for _, h := range e.net.Nodes {
		if got := e.holds(h, vip); got != (h == want) {
			e.t.Errorf("%s holds %v: %v, want %v", h.Name(), vip, got, h == want)
		}
	}
}

// holders starts sampling vip on every node every 10 ms.
func (e *env) holders(vip netip.Addr) *e2e.Holders {
	var as []*e2e.Addrs
	for _, h := range e.net.Nodes {
		as = append(as, e.addrsOf(h))
	}
	s := e2e.NewHolders(10*time.Millisecond, "eth0", vip, as...)
	s.Start()
	return s
}

// checkOverlap stops s and fails if two nodes held the VIP together for
// longer than limit (as far as the samples prove it).
func (e *env) checkOverlap(s *e2e.Holders, limit time.Duration) e2e.HoldStats {
	e.t.Helper()
	samples, err := s.Stop()
	if err != nil {
		e.t.Fatal(err)
	}
	st := e2e.Summarise(samples)
	var names []string
	for _, h := range e.net.Nodes {
		names = append(names, h.Name())
	}
	e.t.Logf("VIP holders: %d samples, overlap %v..%v, none %v..%v, longest sampling gap %v (queries %v)",
		st.Samples, st.MaxOverlap, st.MaxOverlapUpper, st.MaxNone, st.MaxNoneUpper, st.MaxGap, st.MaxGapTook)
	// The lower bound: a late sampling round cannot inflate it.
	if st.MaxOverlap > limit {
		e.t.Errorf("two nodes held the VIP together for %v (limit %v):\n%s", st.MaxOverlap, limit, e2e.Timeline(samples, names))
	}
	return st
}

func status_(t *testing.T, nd *e2e.Node, instance string) status.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := nd.InstanceStatus(ctx, instance)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// waitLogged waits up to 10 s until nd's log holds one of ss, and reports
// whether it did: a line the daemon wrote before a state the test saw
// through its API or netlink may still be in the pipe to the test.
func waitLogged(nd *e2e.Node, ss ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := nd.Log()
		for _, s := range ss {
			if strings.Contains(log, s) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitTransitions waits up to 10 s until the transitions of instance in
// nd's log satisfy ok (see waitLogged), and returns them.
func waitTransitions(nd *e2e.Node, instance string, ok func(tr []string) bool) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr := vigilTransitions(nd.Log(), instance)
		if ok(tr) || time.Now().After(deadline) {
			return tr
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// vigilTransitions returns vigil's logged transitions of instance as
// "FROM>TO" strings.
func vigilTransitions(log, instance string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "msg=transition") || !strings.Contains(l, "instance="+instance+" ") {
			continue
		}
		out = append(out, field(l, "from")+">"+field(l, "to"))
	}
	return out
}

// field returns key=value's value from a slog text line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		if j := strings.Index(v[1:], `"`); j >= 0 {
			return v[1 : j+1]
		}
	}
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	return v
}

func tempFile(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
