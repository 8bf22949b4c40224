package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/notify"
)

func TestCheckEmptyAndBudget(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"empty", []string{"-f", write("empty.conf", "")}, 1, []string{"empty.conf: error: the file is empty"}},
		{"comments only", []string{"-f", write("comments.conf", "# nothing yet\n")}, 1, []string{"error: the file is empty"}},
		{"nothing to run", []string{"-f", write("global.conf", "global_defs {\n router_id a\n}\n")}, 0, []string{"global.conf: warning: no vrrp_instance and no virtual_server"}},
		{"a FIFO", []string{"-f", fifo}, 1, []string{"fifo: error: cannot read the configuration: it is a FIFO; only regular files are read"}},
		{"include of a FIFO", []string{"-f", write("inc.conf", "global_defs {\n router_id a\n}\ninclude fifo\n")}, 1, []string{"inc.conf:4:1: error: include fifo: " + fifo + " is a FIFO"}},
		{"include of /dev/zero", []string{"-f", write("zero.conf", "include /dev/zero\n")}, 1, []string{"zero.conf:1:1: error: include /dev/zero: /dev/zero is a character device"}},
		{"over a lowered budget", []string{"--config-limit", "lines=3", "-f", write("lines.conf", "global_defs {\n router_id a\n}\n! fourth\n~SEQ(i,1,4) $i\n")}, 1, []string{"lines.conf:5:1: error: ~SEQ produces 4 lines, more than the budget has left (3): the configuration's budget is 3 lines (raise it with --config-limit lines=N)"}},
		{"bad limit", []string{"--config-limit", "pages=3", "-f", write("x.conf", "global_defs {\n}\n")}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runCheck(append([]string{"-q", "-i", "n1"}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errb.String())
			}
			for _, s := range tc.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb.String())
				}
			}
		})
	}
}

func TestRunTakesConfigLimit(t *testing.T) {
	f, err := parseRunFlags([]string{"--config-limit", "bytes=256M", "--config-limit", "files=2K"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if f.limits.Bytes != 256<<20 || f.limits.Files != 2048 || f.limits.Lines != 0 {
		t.Errorf("limits %+v", f.limits)
	}
	if got := strings.Join(limitArgs(f.limits), " "); got != "bytes=268435456 files=2048" {
		t.Errorf("limitArgs: %s", got)
	}
}

// A descriptor inherited without close-on-exec is marked so, and a child
// started afterwards has only 0, 1 and 2.
func TestCloseInherited(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// What a careless parent leaves: a descriptor without FD_CLOEXEC.
	fd, err := syscall.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := closeInherited(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/bin/sh", "-c", "ls /proc/self/fd").Output()
	if err != nil {
		t.Fatal(err)
	}
	// 0, 1, 2 and the one ls opens to read the directory.
	if fds := strings.Fields(string(out)); len(fds) != 4 {
		t.Errorf("the child has descriptors %v (the inherited one is %d)", fds, fd)
	}
}

// --notify-timeout bounds a notify script and --notify-grace how long one
// runs alone: notify.DefaultTimeout and notify.DefaultGrace unless given,
// and only a positive duration.
func TestRunTakesNotifyTimeout(t *testing.T) {
	f, err := parseRunFlags(nil, io.Discard)
	if err != nil || f.notifyTimeout != notify.DefaultTimeout || f.notifyGrace != notify.DefaultGrace {
		t.Fatalf("default: %v, %v, %v; want %v, %v", f.notifyTimeout, f.notifyGrace, err, notify.DefaultTimeout, notify.DefaultGrace)
	}
	f, err = parseRunFlags([]string{"--notify-timeout", "2.5s", "--notify-grace", "500ms"}, io.Discard)
	if err != nil || f.notifyTimeout != 2500*time.Millisecond || f.notifyGrace != 500*time.Millisecond {
		t.Fatalf("--notify-timeout 2.5s --notify-grace 500ms: %v, %v, %v", f.notifyTimeout, f.notifyGrace, err)
	}
	for _, flag := range []string{"--notify-timeout", "--notify-grace"} {
		for _, bad := range []string{"0", "-1s", "soon"} {
			if _, err := parseRunFlags([]string{flag, bad}, io.Discard); err == nil {
				t.Errorf("%s %s accepted", flag, bad)
			}
		}
	}
}
