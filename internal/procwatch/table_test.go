package procwatch

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func cmdline(args ...string) []byte { return []byte(strings.Join(args, "\x00") + "\x00") }

func TestSpecMatches(t *testing.T) {
	sp := func(process string, match ParamMatch, params ...string) Spec {
		s := NewSpec("t", process)
		s.Params, s.ParamMatch = params, match
		return s
	}
	full := func(s Spec) Spec { s.FullCommand = true; return s }
	tests := []struct {
		name    string
		spec    Spec
		comm    string
		cmdline []byte
		want    bool
	}{
		// man keepalived.conf: exact name, "equivalent to pgrep ^ssh$".
		{"comm exact", sp("haproxy", MatchNone), "haproxy", cmdline("/usr/sbin/haproxy", "-f", "x"), true},
		{"comm is not a prefix match", sp("ssh", MatchNone), "sshd", cmdline("sshd"), false},
		{"comm ignores argv0", sp("/usr/sbin/haproxy", MatchNone), "haproxy", cmdline("/usr/sbin/haproxy"), false},
		{"full_command matches argv0", full(sp("/usr/sbin/haproxy", MatchNone)), "haproxy", cmdline("/usr/sbin/haproxy", "-f", "x"), true},
		{"full_command argv0 differs", full(sp("haproxy", MatchNone)), "haproxy", cmdline("/usr/sbin/haproxy"), false},
		// Parameters imply an exact match and full_command.
		{"params exact", sp("nginx", MatchNone, "-g", "daemon off;"), "x", cmdline("nginx", "-g", "daemon off;"), true},
		{"params exact, extra parameter", sp("nginx", MatchNone, "-g"), "x", cmdline("nginx", "-g", "daemon off;"), false},
		{"params exact, fewer", sp("nginx", MatchNone, "-g", "x"), "x", cmdline("nginx", "-g"), false},
		{"param_match alone means no parameters", sp("nginx", MatchExact), "nginx", cmdline("nginx"), true},
		{"param_match alone, process has parameters", sp("nginx", MatchExact), "nginx", cmdline("nginx", "-t"), false},
		// "a partial match (i.e. the first n parameters match exactly)".
		{"partial", sp("sleep", MatchPartial, "10"), "x", cmdline("sleep", "10", "20"), true},
		{"partial needs whole words", sp("sleep", MatchPartial, "10"), "x", cmdline("sleep", "100"), false},
		// "an initial match, i.e. the last parameter may be longer".
		{"initial", sp("sleep", MatchInitial, "10"), "x", cmdline("sleep", "100"), true},
		{"initial, earlier words whole", sp("sleep", MatchInitial, "1", "2"), "x", cmdline("sleep", "10", "2"), false},
		{"initial, wrong start", sp("sleep", MatchInitial, "20"), "x", cmdline("sleep", "100"), false},
		{"partial with no params matches any", sp("sleep", MatchPartial), "x", cmdline("sleep", "1"), true},
		{"cmdline without NUL", full(sp("nginx: master process", MatchNone)), "nginx", []byte("nginx: master process"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Matches(tt.comm, tt.cmdline); got != tt.want {
				t.Errorf("Matches(%q, %q) = %v, want %v", tt.comm, tt.cmdline, got, tt.want)
			}
		})
	}
}

func TestSpecWarnings(t *testing.T) {
	if w := NewSpec("x", "a-very-long-process-name").Warnings(); len(w) != 1 {
		t.Errorf("long comm name: warnings %q", w)
	}
	s := NewSpec("x", "a-very-long-process-name")
	s.FullCommand = true
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("long name with full_command: warnings %q", w)
	}
}

func TestNewTableErrors(t *testing.T) {
	bad := NewSpec("q", "x")
	bad.Quorum, bad.QuorumMax = 3, 2
	_, err := NewTable([]Spec{NewSpec("a", "x"), NewSpec("a", "y"), NewSpec("b", ""), bad})
	for _, want := range []string{"a defined twice", "b: process name not specified", "quorum 3 is greater than quorum_max 2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewTable error %v, want it to mention %q", err, want)
		}
	}
}

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// step is one input to a Table and the changes it must produce.
type step struct {
	do   func(tb *Table) []Change
	want []Change
}

func run(t *testing.T, specs []Spec, initial []Proc, wantInitial []Change, steps []step) *Table {
	t.Helper()
	tb, err := NewTable(specs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantInitial, tb.Reset(initial, t0, true)); diff != "" {
		t.Fatalf("initial (-want +got):\n%s", diff)
	}
	for i, s := range steps {
		if diff := cmp.Diff(s.want, s.do(tb)); diff != "" {
			t.Fatalf("step %d (-want +got):\n%s", i, diff)
		}
	}
	return tb
}

func exec(pid int32, comm string) func(*Table) []Change {
	return func(tb *Table) []Change { return tb.Exec(pid, comm, cmdline(comm)) }
}
func exit(pid int32, at time.Duration) func(*Table) []Change {
	return func(tb *Table) []Change { return tb.Exit(pid, t0.Add(at)) }
}
func fork(parent, child int32, at time.Duration) func(*Table) []Change {
	return func(tb *Table) []Change { return tb.Fork(parent, child, t0.Add(at)) }
}
func expire(at time.Duration) func(*Table) []Change {
	return func(tb *Table) []Change { return tb.Expire(t0.Add(at)) }
}
func comm(pid int32, c string) func(*Table) []Change {
	return func(tb *Table) []Change { return tb.Comm(pid, c) }
}

func up(n string) []Change   { return []Change{{n, true}} }
func down(n string) []Change { return []Change{{n, false}} }

func TestTableQuorum(t *testing.T) {
	s := NewSpec("web", "nginx")
	s.Quorum = 2
	run(t, []Spec{s}, []Proc{{PID: 10, Comm: "nginx"}}, down("web"), []step{
		{exec(11, "bash"), nil},
		{exec(12, "nginx"), up("web")},
		{exec(13, "nginx"), nil},
		{exit(12, 0), nil},
		{exit(13, 0), down("web")},
		{exit(99, 0), nil}, // not tracked
	})
}

func TestTableQuorumMax(t *testing.T) {
	s := NewSpec("single", "ha")
	s.QuorumMax = 1
	run(t, []Spec{s}, nil, down("single"), []step{
		{exec(1, "ha"), up("single")},
		{exec(2, "ha"), down("single")}, // more than quorum_max
		{exit(1, 0), up("single")},
		{exit(2, 0), down("single")},
	})
}

// man keepalived.conf: "Setting this to 0 would mean failure if the matching
// process were running at all."
func TestTableQuorumMaxZero(t *testing.T) {
	s := NewSpec("none", "miner")
	s.QuorumMax = 0
	run(t, []Spec{s}, nil, up("none"), []step{
		{exec(1, "miner"), down("none")},
		{exit(1, 0), up("none")},
	})
}

func TestTableTerminateDelay(t *testing.T) {
	s := NewSpec("web", "nginx")
	s.TerminateDelay = 2 * time.Second
	tb := run(t, []Spec{s}, []Proc{{PID: 10, Comm: "nginx"}}, up("web"), []step{
		{exit(10, time.Second), nil},
		{expire(2 * time.Second), nil}, // not yet due (1 s + 2 s)
	})
	if d, ok := tb.Deadline(); !ok || !d.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Deadline = %v, %v; want t0+3s", d, ok)
	}
	if diff := cmp.Diff(down("web"), tb.Expire(t0.Add(3*time.Second))); diff != "" {
		t.Fatalf("expiry (-want +got):\n%s", diff)
	}
	if _, ok := tb.Deadline(); ok {
		t.Fatal("deadline left after expiry")
	}
	// A restart within the delay cancels it: no flap.
	run(t, []Spec{s}, []Proc{{PID: 10, Comm: "nginx"}}, up("web"), []step{
		{exit(10, time.Second), nil},
		{exec(11, "nginx"), nil},
		{expire(10 * time.Second), nil},
	})
}

func TestTableForkDelay(t *testing.T) {
	s := NewSpec("pair", "worker")
	s.Quorum = 2
	s.ForkDelay = time.Second
	tb := run(t, []Spec{s}, []Proc{{PID: 10, Comm: "worker"}}, down("pair"), []step{
		{fork(10, 11, 0), nil}, // counted, but up only after fork_delay
		{fork(99, 12, 0), nil}, // parent not tracked
	})
	if diff := cmp.Diff(up("pair"), tb.Expire(t0.Add(time.Second))); diff != "" {
		t.Fatalf("fork delay expiry (-want +got):\n%s", diff)
	}
	// A child that exits (or execs away) before the delay cancels it.
	run(t, []Spec{s}, []Proc{{PID: 10, Comm: "worker"}}, down("pair"), []step{
		{fork(10, 11, 0), nil},
		{exit(11, 500*time.Millisecond), nil},
		{expire(5 * time.Second), nil},
	})
	run(t, []Spec{s}, []Proc{{PID: 10, Comm: "worker"}}, down("pair"), []step{
		{fork(10, 11, 0), nil},
		{exec(11, "other"), nil}, // fork+exec of something else
		{expire(5 * time.Second), nil},
	})
}

func TestTableExecAway(t *testing.T) {
	run(t, []Spec{NewSpec("a", "sleep")}, []Proc{{PID: 5, Comm: "sleep"}}, up("a"), []step{
		{exec(5, "sleep"), nil}, // re-exec of the same program: not counted twice
		{exec(5, "true"), down("a")},
		{exec(5, "true"), nil},
	})
}

func TestTableComm(t *testing.T) {
	full := NewSpec("byargv", "/usr/bin/app")
	full.FullCommand = true
	tb, err := NewTable([]Spec{NewSpec("a", "app"), NewSpec("b", "Web Content"), full})
	if err != nil {
		t.Fatal(err)
	}
	got := tb.Reset([]Proc{{PID: 7, Comm: "app", Cmdline: cmdline("/usr/bin/app")}}, t0, true)
	if diff := cmp.Diff([]Change{{"a", true}, {"b", false}, {"byargv", true}}, got); diff != "" {
		t.Fatalf("initial (-want +got):\n%s", diff)
	}
	// prctl(PR_SET_NAME): firefox's "Web Content" case from the man page.
	if diff := cmp.Diff([]Change{{"a", false}, {"b", true}}, tb.Comm(7, "Web Content")); diff != "" {
		t.Errorf("rename (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Change(nil), tb.Comm(7, "Web Content")); diff != "" {
		t.Errorf("same name again (-want +got):\n%s", diff)
	}
	if got := tb.Statuses(); got[2] != (Status{"byargv", true, 1}) {
		t.Errorf("full_command spec after a rename: %+v, want still counted", got[2])
	}
}

func TestTableRescan(t *testing.T) {
	s := NewSpec("web", "nginx")
	s.TerminateDelay = time.Second
	tb, err := NewTable([]Spec{s, NewSpec("db", "postgres")})
	if err != nil {
		t.Fatal(err)
	}
	tb.Reset([]Proc{{PID: 1, Comm: "nginx"}}, t0, true)
	// Events were lost: nginx went away, postgres came.
	got := tb.Reset([]Proc{{PID: 2, Comm: "postgres"}}, t0, false)
	if diff := cmp.Diff(up("db"), got); diff != "" {
		t.Errorf("rescan (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(down("web"), tb.Expire(t0.Add(time.Second))); diff != "" {
		t.Errorf("rescan loss after terminate_delay (-want +got):\n%s", diff)
	}
}
