package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestDispatchUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"frobnicate"}, &out, &errb); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("stderr %q", errb.String())
	}
}

func TestDispatchVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "vigil ") {
		t.Fatalf("code %d out %q", code, out.String())
	}
}

// TestEveryCommandExplainsABadFlag: a mistyped flag gets the error and the
// command's usage on stderr and exit status 2 (genhash keeps keepalived's
// genhash exit status 1), never a silent exit.
func TestEveryCommandExplainsABadFlag(t *testing.T) {
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			args := []string{name, "--no-such-flag"}
			if name == "lb" {
				args = []string{"lb", "show", "--no-such-flag"}
			}
			var out, errb bytes.Buffer
			code := dispatch(args, &out, &errb)
			want := 2
			if name == "genhash" {
				want = 1
			}
			if code != want {
				t.Errorf("exit %d, want %d; stderr %q", code, want, errb.String())
			}
			if !strings.Contains(errb.String(), "no-such-flag") || !strings.Contains(strings.ToLower(errb.String()), "usage: vigil "+name) {
				t.Errorf("stderr does not name the flag and show the usage:\n%s", errb.String())
			}
		})
	}
}

func TestDispatchSuggestsACommand(t *testing.T) {
	for typo, want := range map[string]string{"stauts": "vigil status", "relaod": "vigil reload", "chek": "vigil check", "hand": "vigil handover"} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{typo}, &out, &errb); code != 2 {
			t.Errorf("%s: exit %d", typo, code)
		}
		if !strings.Contains(errb.String(), "Did you mean\n\t"+want) {
			t.Errorf("%s: stderr %q lacks the suggestion %q", typo, errb.String(), want)
		}
	}
	var out, errb bytes.Buffer
	dispatch([]string{"frobnicate"}, &out, &errb)
	if strings.Contains(errb.String(), "Did you mean") {
		t.Errorf("a word far from every command got a suggestion: %q", errb.String())
	}
}

func TestVersionFlags(t *testing.T) {
	for _, a := range []string{"--version", "-v", "version"} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{a}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "vigil ") {
			t.Errorf("%s: code %d out %q err %q", a, code, out.String(), errb.String())
		}
	}
}

func TestClientCommandsSayNoDaemon(t *testing.T) {
	sock := t.TempDir() + "/none.sock"
	for _, c := range []string{"status", "reload", "handover"} {
		var out, errb bytes.Buffer
		if code := dispatch([]string{c, "--api-socket", sock}, &out, &errb); code != 1 {
			t.Errorf("%s: exit %d", c, code)
		}
		if !strings.Contains(errb.String(), "no vigil daemon is listening on "+sock) {
			t.Errorf("%s: stderr %q", c, errb.String())
		}
	}
}

// TestManPageIsGenerated: packaging/vigil.8 is `vigil man`'s output, so
// its synopsis and flags are the commands' own. After changing a flag:
// go run ./cmd/vigil man > packaging/vigil.8
func TestManPageIsGenerated(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"man"}, &out, &errb); code != 0 {
		t.Fatalf("vigil man: exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile("../../packaging/vigil.8")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != out.String() {
		t.Fatalf("packaging/vigil.8 is stale: run go run ./cmd/vigil man > packaging/vigil.8")
	}
	for name := range commands() {
		if !strings.Contains(out.String(), ".B vigil "+name+"\n") {
			t.Errorf("the manual's synopsis lacks %s", name)
		}
	}
	for _, flag := range []string{`\-\-api\-socket`, `\-\-log\-format`, `\-\-log\-level`, `\-\-ha\-dir`, `\-I, \-\-dont\-release\-ipvs`, `\-\-reclaim`} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("the manual lacks %s", flag)
		}
	}
}

func TestBashCompletion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch([]string{"completion", "bash"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	script := out.String()
	// Source it and ask bash what it completes after "vigil sta" and
	// "vigil check --st" (what a user's shell would do).
	for line, want := range map[string]string{"vigil sta": "status", "vigil handover --re": "--reclaim"} {
		words := strings.Fields(line)
		cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=(`+line+`); COMP_CWORD=`+strconv.Itoa(len(words)-1)+`; _vigil; echo "${COMPREPLY[@]}"`)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v: %s", err, got)
		}
		if !strings.Contains(string(got), want) {
			t.Errorf("%q completes to %q, want %q among them", line, got, want)
		}
	}
}
