package resource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-ha/vigil/internal/hb/hbconf"
)

type fake struct {
	name string
	fail bool
	log  *[]string
}

func (f fake) Start(context.Context) error {
	*f.log = append(*f.log, "start "+f.name)
	if f.fail {
		return errors.New("boom")
	}
	return nil
}
func (f fake) Stop(context.Context) error {
	*f.log = append(*f.log, "stop "+f.name)
	return nil
}
func (f fake) Status(context.Context) (bool, error) { return false, nil }
func (f fake) String() string                       { return f.name }

// Resources start in order and stop in reverse; a failed start stops what
// started, in reverse (heartbeat's ResourceManager takegroup).
func TestGroupOrderAndFailure(t *testing.T) {
	var log []string
	g := &Group{Name: "g", Agents: []Agent{fake{"ip", false, &log}, fake{"fs", false, &log}, fake{"web", false, &log}}}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.Stop(context.Background())
	want := []string{"start ip", "start fs", "start web", "stop web", "stop fs", "stop ip"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	log = nil
	g.Agents[1] = fake{"fs", true, &log}
	err := g.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "fs failed to start") {
		t.Fatalf("err = %v", err)
	}
	want = []string{"start ip", "start fs", "stop fs", "stop ip"}
	if diff := cmp.Diff(want, log); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Scripts: resource.d first, then init.d, args before the operation;
// systemd only when no script exists and systemctl is present.
func TestScriptLookupAndArgs(t *testing.T) {
	ha, initd := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(ha, "resource.d"), 0o755)
	out := filepath.Join(t.TempDir(), "calls")
	script := "#!/bin/sh\necho \"$0 $*\" >> " + out + "\nfor a; do last=$a; done; [ \"$last\" = status ] && exit 3\nexit 0\n"
	os.WriteFile(filepath.Join(ha, "resource.d", "nginx"), []byte(script), 0o755)
	os.WriteFile(filepath.Join(initd, "nginx"), []byte(script), 0o755)
	os.WriteFile(filepath.Join(initd, "db"), []byte(script), 0o755)
	env := &Env{HaDir: ha, InitDir: initd}
	ctx := context.Background()
	for _, raw := range []string{"nginx::a1::a2", "db"} {
		gs, ds := hbconf.ParseHaResources("haresources", "n1 "+raw+"\n")
		if len(ds) > 0 {
			t.Fatal(ds)
		}
		a, err := New(gs[0].Resources[0], env)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if up, err := a.Status(ctx); up || err != nil {
			t.Errorf("status exit 3: up=%v err=%v", up, err)
		}
	}
	b, _ := os.ReadFile(out)
	want := filepath.Join(ha, "resource.d", "nginx") + " a1 a2 start\n" + filepath.Join(ha, "resource.d", "nginx") + " a1 a2 status\n" +
		filepath.Join(initd, "db") + " start\n" + filepath.Join(initd, "db") + " status\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	gs, _ := hbconf.ParseHaResources("haresources", "n1 missing\n")
	if _, err := New(gs[0].Resources[0], env); err == nil || !strings.Contains(err.Error(), "systemd is not present") {
		t.Errorf("missing script: %v", err)
	}
	env.Systemctl = "/bin/systemctl"
	a, err := New(gs[0].Resources[0], env)
	if err != nil || a.String() != "missing.service" {
		t.Errorf("systemd unit: %v %v", a, err)
	}
}
