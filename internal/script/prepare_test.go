package script

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/diag"
)

var testPos = diag.Pos{File: "/etc/keepalived/keepalived.conf", Line: 12, Col: 5}

// TestPrepareSecurity covers keepalived 2.2.7's check_script_secure /
// check_security under enable_script_security for a script run as root.
func TestPrepareSecurity(t *testing.T) {
	requireRoot(t)
	const body = "#!/bin/sh\nexit 0\n"
	nobody, err := LookupUser("nobody", "")
	if err != nil {
		t.Fatalf("lookup nobody: %v", err)
	}
	tests := []struct {
		name string
		// setup builds the script under the secure directory d and returns
		// its path.
		setup   func(t *testing.T, d string) string
		cred    Cred
		wantErr string // "" means accepted
	}{
		{
			name:  "root-owned script in root-owned directories",
			setup: func(t *testing.T, d string) string { return writeScript(t, d+"/ok.sh", body, 0o755) },
		},
		{
			name: "directory writable by everyone",
			setup: func(t *testing.T, d string) string {
				sub := d + "/open"
				mustMkdir(t, sub, 0o777)
				return writeScript(t, sub+"/s.sh", body, 0o755)
			},
			wantErr: "open is writable by everyone",
		},
		{
			// check_security: a directory with the sticky bit is accepted (as /tmp).
			name: "sticky directory writable by everyone is accepted",
			setup: func(t *testing.T, d string) string {
				sub := d + "/sticky"
				mustMkdir(t, sub, os.ModeSticky|0o777)
				return writeScript(t, sub+"/s.sh", body, 0o755)
			},
		},
		{
			name: "directory owned by a non-root user",
			setup: func(t *testing.T, d string) string {
				sub := d + "/theirs"
				mustMkdir(t, sub, 0o755)
				mustChown(t, sub, nobody.UID, 0)
				return writeScript(t, sub+"/s.sh", body, 0o755)
			},
			wantErr: "theirs is owned by uid 65534, not root",
		},
		{
			name: "script owned by a non-root user",
			setup: func(t *testing.T, d string) string {
				p := writeScript(t, d+"/s.sh", body, 0o755)
				mustChown(t, p, nobody.UID, 0)
				return p
			},
			wantErr: "s.sh is owned by uid 65534",
		},
		{
			name: "script writable by a non-root group",
			setup: func(t *testing.T, d string) string {
				p := writeScript(t, d+"/s.sh", body, 0o775)
				mustChown(t, p, 0, nobody.GID)
				return p
			},
			wantErr: "s.sh is writable by group 65534",
		},
		{
			name: "script writable by the root group is accepted",
			setup: func(t *testing.T, d string) string {
				return writeScript(t, d+"/s.sh", body, 0o775)
			},
		},
		{
			name: "script writable by everyone",
			setup: func(t *testing.T, d string) string {
				return writeScript(t, d+"/s.sh", body, 0o757)
			},
			wantErr: "s.sh is writable by everyone",
		},
		{
			// vigil extension: keepalived does not look at the "#!" line.
			name: "interpreter writable by everyone",
			setup: func(t *testing.T, d string) string {
				sub := d + "/bin"
				mustMkdir(t, sub, 0o777)
				sh := writeScript(t, sub+"/mysh", "#!/bin/sh\nexec /bin/sh \"$@\"\n", 0o755)
				return writeScript(t, d+"/s.sh", "#!"+sh+"\nexit 0\n", 0o755)
			},
			wantErr: "interpreter",
		},
		{
			// need_script_protection is false for a non-root user: no path check.
			name: "insecure directory is fine for a script run as nobody",
			setup: func(t *testing.T, d string) string {
				sub := d + "/open"
				mustMkdir(t, sub, 0o777)
				return writeScript(t, sub+"/s.sh", body, 0o755)
			},
			cred: nobody,
		},
		{
			name: "script not executable for its user",
			setup: func(t *testing.T, d string) string {
				return writeScript(t, d+"/s.sh", body, 0o744)
			},
			cred:    nobody,
			wantErr: "not executable for uid:gid 65534:65534",
		},
		{
			name:    "missing script",
			setup:   func(t *testing.T, d string) string { return d + "/nope.sh" },
			wantErr: "cannot be accessed: no such file or directory",
		},
		{
			// check_script_secure does realpath() first, then checks the real
			// location: an insecure target is refused whatever the link.
			name: "symlink to a script in an insecure directory",
			setup: func(t *testing.T, d string) string {
				sub := d + "/open"
				mustMkdir(t, sub, 0o777)
				target := writeScript(t, sub+"/real.sh", body, 0o755)
				link := d + "/link.sh"
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				return link
			},
			wantErr: "writable by everyone",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := secureDir(t)
			path := tt.setup(t, d)
			cred := tt.cred
			if cred.Name == "" {
				cred = rootCred()
			}
			c := Command{Args: []string{path, "arg"}, Cred: cred, Pos: testPos, What: "vrrp_script chk"}
			p, err := Prepare(c, Policy{Security: true})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Prepare: %v", err)
				}
				if p.Insecure {
					t.Errorf("Insecure set on an accepted script")
				}
				return
			}
			if err == nil {
				t.Fatalf("Prepare accepted the script, want error containing %q", tt.wantErr)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q does not contain %q", msg, tt.wantErr)
			}
			// The error names the configuration position and the script.
			if !strings.HasPrefix(msg, "/etc/keepalived/keepalived.conf:12:5: vrrp_script chk: ") {
				t.Errorf("error %q does not start with the position and what", msg)
			}
			var se *Error
			if !errors.As(err, &se) || se.Pos != testPos {
				t.Errorf("error is not a *script.Error at %v: %#v", testPos, err)
			}
			if strings.Contains(tt.wantErr, "writable") || strings.Contains(tt.wantErr, "owned") || tt.wantErr == "interpreter" {
				if !errors.Is(err, ErrInsecure) {
					t.Errorf("error does not wrap ErrInsecure: %v", err)
				}
				// Without enable_script_security the same script runs, flagged.
				p, err := Prepare(c, Policy{Security: false})
				if err != nil {
					t.Fatalf("Prepare without security: %v", err)
				}
				if !p.Insecure || len(p.Warnings) == 0 {
					t.Errorf("without security: Insecure %v, warnings %q; want flagged", p.Insecure, p.Warnings)
				}
			}
		})
	}
}

// TestRecheck: a script made insecure after Prepare is refused at its next
// run under enable_script_security.
func TestRecheck(t *testing.T) {
	requireRoot(t)
	d := secureDir(t)
	path := writeScript(t, d+"/s.sh", "#!/bin/sh\nexit 0\n", 0o755)
	p := mustPrepare(t, Command{Args: []string{path}, Cred: rootCred(), Pos: testPos, What: "notify_master"}, Policy{Security: true})
	if err := p.Recheck(); err != nil {
		t.Fatalf("Recheck of an unchanged script: %v", err)
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	err := p.Recheck()
	if !errors.Is(err, ErrInsecure) || !strings.HasPrefix(err.Error(), "notify_master: ") {
		t.Fatalf("Recheck after chmod 777: %v; want ErrInsecure naming notify_master", err)
	}
	res := NewRunner(RunnerOptions{}).Run(t.Context(), p, 0)
	if res.OK() || !errors.Is(res.Err, ErrInsecure) {
		t.Fatalf("Run of an insecure script: %v; want refused", res)
	}
}

func TestPrepareArgv(t *testing.T) {
	d := t.TempDir()
	self := Self()
	shebang := writeScript(t, d+"/withbang.sh", "#!/bin/sh\nexit 0\n", 0o755)
	plain := writeScript(t, d+"/plain.sh", "exit 0\n", 0o755)
	if err := os.Symlink(shebang, d+"/alias.sh"); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.Symlink(shebang, other+"/link.sh"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantPath string
		wantArgv []string
		warn     bool
	}{
		{
			name: "script with #! is executed directly", args: []string{shebang, "a b", "c"},
			wantPath: shebang, wantArgv: []string{shebang, "a b", "c"},
		},
		{
			// keepalived with libmagic hands a non-executable format to system().
			name: "script without #! runs under /bin/sh", args: []string{plain, "x"},
			wantPath: "/bin/sh", wantArgv: []string{"/bin/sh", plain, "x"},
		},
		{
			// check_script_secure: realpath(), then the configured file name in
			// the real directory when that names the same file (the link sits
			// next to its target here, so it does).
			name: "symlink next to its target keeps its name", args: []string{d + "/alias.sh"},
			wantPath: d + "/alias.sh", wantArgv: []string{d + "/alias.sh"},
		},
		{
			name: "symlink elsewhere resolves to its target", args: []string{other + "/link.sh"},
			wantPath: shebang, wantArgv: []string{shebang},
		},
		{
			name: "bare name found in PATH with a warning", args: []string{"true", "1"},
			wantPath: mustLookPath(t, "true"), wantArgv: []string{mustLookPath(t, "true"), "1"}, warn: true,
		},
		{
			name: "dev tcp idiom goes to /bin/sh -c", args: []string{"</dev/tcp/127.0.0.1/80"},
			wantPath: "/bin/sh", wantArgv: []string{"/bin/sh", "-c", "</dev/tcp/127.0.0.1/80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPrepare(t, Command{Args: tt.args, Cred: self}, Policy{})
			path, argv := p.Argv()
			if diff := cmp.Diff(tt.wantPath, path); diff != "" {
				t.Errorf("path (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantArgv, argv); diff != "" {
				t.Errorf("argv (-want +got):\n%s", diff)
			}
			if tt.warn != (len(p.Warnings) > 0) {
				t.Errorf("warnings %q, want some: %v", p.Warnings, tt.warn)
			}
		})
	}
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range filepath.SplitList(DefaultPath) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			r, err := filepath.EvalSymlinks(p)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(r) == name {
				return r
			}
			return filepath.Join(filepath.Dir(r), name)
		}
	}
	t.Fatalf("%s not in %s", name, DefaultPath)
	return ""
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustChown(t *testing.T, p string, uid, gid uint32) {
	t.Helper()
	if err := os.Chown(p, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultCred(t *testing.T) {
	if _, err := LookupUser(DefaultUserName, ""); err == nil {
		t.Skipf("user %s exists on this machine; the fallback cases cannot be tested", DefaultUserName)
	}
	c, err := DefaultCred("", "", false)
	if err != nil {
		t.Fatalf("DefaultCred without keepalived_script: %v", err)
	}
	if self := Self(); c.UID != self.UID || c.GID != self.GID {
		t.Errorf("DefaultCred = %v, want this process's user %v", c, self)
	}
	if _, err := DefaultCred("", "", true); err == nil || !strings.Contains(err.Error(), "keepalived_script") {
		t.Errorf("DefaultCred with enable_script_security and no keepalived_script: %v; want error", err)
	}
	c, err = DefaultCred("nobody", "", true)
	if err != nil || c.UID != 65534 {
		t.Errorf("DefaultCred(script_user nobody) = %v, %v; want uid 65534", c, err)
	}
	if _, err := DefaultCred("no-such-user-vigil", "", false); err == nil {
		t.Errorf("DefaultCred with an unknown script_user succeeded")
	}
	c, err = LookupUser("nobody", "root")
	if err != nil || c.GID != 0 {
		t.Errorf("LookupUser(nobody, root) = %v, %v; want gid 0", c, err)
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"/bin/x", "a b"}, `'/bin/x' 'a b'`},
		{[]string{"</dev/tcp/1.2.3.4/80"}, `</dev/tcp/1.2.3.4/80`},
		{[]string{"/x", "it's"}, `'/x' 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestPreparedHoldsNoPosition: the same command prepared from two places in
// a file is the same value, so a reload does not take a moved line for a
// changed script.
func TestPreparedHoldsNoPosition(t *testing.T) {
	d := t.TempDir()
	s := writeScript(t, d+"/s.sh", "#!/bin/sh\nexit 0\n", 0o755)
	a := mustPrepare(t, Command{Args: []string{s}, Cred: Self(), Pos: testPos, What: "notify"}, Policy{})
	moved := testPos
	moved.Line += 40
	b := mustPrepare(t, Command{Args: []string{s}, Cred: Self(), Pos: moved, What: "notify"}, Policy{})
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("prepared at %v and at %v differ:\n%#v\n%#v", testPos, moved, a, b)
	}
	if p := a.Command().Pos; p.IsValid() {
		t.Errorf("Command().Pos = %v; want none", p)
	}
}

// TestPrepareWarnsOfStoppingKeepalivedByName: seed 001's nginx_check.sh
// forces a failover with `killall keepalived`, which leaves vigil running;
// Prepare warns at the script's line. Commented-out commands, the seed's
// one-line form (all of it on the "#!" line, so a comment) and other
// programs' names are not flagged.
func TestPrepareWarnsOfStoppingKeepalivedByName(t *testing.T) {
	d := t.TempDir()
	self := Self()
	for _, c := range []struct {
		name, body string
		line       int
	}{
		{"seed 001 as meant", "#!/bin/bash\nA=`ps -C nginx --no-header |wc -l`\nif [ $A -eq 0 ];then\n  /usr/sbin/nginx\n  sleep 2\n  if [ `ps -C nginx --no-header |wc -l` -eq 0 ];then\n    killall keepalived\n  fi\nfi\n", 7},
		{"seed 001 on one line", "#!/bin/bash #check A=`ps -C nginx --no-header |wc -l` if [ $A -eq 0 ];then /usr/sbin/nginx sleep 2 if [ `ps -C nginx --no-header |wc -l` -eq 0 ];then killall keepalived fi fi\n", 0},
		{"pkill with a signal after &&", "#!/bin/sh\ncurl -sf http://127.0.0.1/ || { sleep 1; pkill -9 keepalived; }\n", 2},
		{"systemctl", "#!/bin/sh\n[ -e /run/nginx.pid ] || systemctl stop keepalived.service\n", 2},
		{"service", "service keepalived stop\n", 1},
		{"init script", "#!/bin/sh\n/etc/init.d/keepalived stop >/dev/null\n", 2},
		{"commented out", "#!/bin/sh\n# killall keepalived\necho ok # then killall keepalived\n", 0},
		{"another program", "#!/bin/sh\nkillall keepalived-exporter\nsystemctl restart nginx\nservice keepalived status\n", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(d, strings.ReplaceAll(c.name, " ", "_")+".sh")
			if err := os.WriteFile(path, []byte(c.body), 0o755); err != nil {
				t.Fatal(err)
			}
			p := mustPrepare(t, Command{Args: []string{path}, Cred: self}, Policy{})
			var got string
			for _, w := range p.Warnings {
				if strings.Contains(w, "stops keepalived by name") {
					got = w
				}
			}
			switch {
			case c.line == 0 && got != "":
				t.Errorf("warning for a script that does not stop keepalived: %s", got)
			case c.line != 0 && !strings.Contains(got, fmt.Sprintf("at its line %d ", c.line)):
				t.Errorf("warnings %q, want one naming line %d", p.Warnings, c.line)
			}
			// Run under keepalived's name, the script stops this program.
			defer func(name string) { ProgramName = name }(ProgramName)
			ProgramName = "keepalived"
			for _, w := range mustPrepare(t, Command{Args: []string{path}, Cred: self}, Policy{}).Warnings {
				if strings.Contains(w, "stops keepalived by name") {
					t.Errorf("warning under keepalived's name: %s", w)
				}
			}
		})
	}
}
