package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestUndoRunsInReverse(t *testing.T) {
	var u undo
	var got []int
	for i := range 3 {
		u.push(func() { got = append(got, i) })
	}
	u.run()
	u.run() // a second run has nothing left
	if want := []int{2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("undo ran %v, want %v", got, want)
	}
}

func TestGroupStopsAndWaits(t *testing.T) {
	var logs strings.Builder
	g := newGroup(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)))
	ended := make(chan string, 3)
	run := func(name string, err error) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			ended <- name
			return err
		}
	}
	g.Go("a", run("a", nil))
	g.Go("b", run("b", errors.New("boom")))
	stopC := g.Start("c", run("c", nil))
	stopC() // c alone, and waited for
	if got := <-ended; got != "c" {
		t.Fatalf("first to end %q, want c", got)
	}
	g.stop()
	if len(ended) != 2 {
		t.Errorf("%d goroutines ended after stop, want 2 (stop waits)", len(ended))
	}
	if !strings.Contains(logs.String(), "b stopped") || strings.Contains(logs.String(), "a stopped") {
		t.Errorf("log: want only b's error, got:\n%s", logs.String())
	}
}

// TestStartedAttrs: a heartbeat daemon (ha_dir, no -f) reads no
// keepalived.conf, and its "vigil started" line names none: it said
// config=/etc/keepalived/keepalived.conf instances=0 virtual_servers=0.
func TestStartedAttrs(t *testing.T) {
	for _, c := range []struct {
		name       string
		f          runFlags
		keepalived bool
		want       string
	}{
		{"heartbeat", runFlags{file: defaultConfigFile, haDir: "/etc/ha.d", apiSocket: "/run/vigil/vigil.sock"}, false,
			"[version dev ha_dir /etc/ha.d api /run/vigil/vigil.sock pid 7]"},
		{"keepalived", runFlags{file: defaultConfigFile, apiSocket: "/run/vigil/vigil.sock"}, true,
			"[version dev config /etc/keepalived/keepalived.conf instances 0 virtual_servers 0 api /run/vigil/vigil.sock pid 7]"},
		{"both", runFlags{file: "/k.conf", haDir: "/etc/ha.d", apiSocket: "/s"}, true,
			"[version dev config /k.conf instances 0 virtual_servers 0 ha_dir /etc/ha.d api /s pid 7]"},
	} {
		if got := fmt.Sprint(startedAttrs(c.f, loaded{}, c.keepalived, 7)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
