package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/bgp"
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// bgpSetup builds the BGP runtime of a configuration (nil without a bgp
// block) and connects it to the engine's and the director's observers.
func bgpSetup(l loaded, log *slog.Logger) (*bgp.Runtime, bgp.Config) {
	if l.cfg == nil {
		return nil, bgp.Config{}
	}
	cfg, ok := bgp.FromConfig(l.cfg)
	if !ok {
		return nil, cfg
	}
	return bgp.New(cfg, log), cfg
}

// useBGPHelper finds the vigil-bgp helper that runs the BGP speaker: a bgp
// block without one is an error at start, naming where it was looked for.
// vigil gives the helper its scheduling (bgp.HelperPolicy); it does not
// inherit the daemon's (reset-on-fork).
func (d *daemon) useBGPHelper() error {
	if d.bgp == nil {
		return nil
	}
	p, err := bgp.FindHelper()
	if err != nil {
		return err
	}
	d.bgp.UseHelper(p, d.sched.Policy())
	return nil
}

// bgpDiagnostics warns, for vigil check, of a bgp block on a host without
// the vigil-bgp helper (vigil run refuses to start there).
func bgpDiagnostics(c *config.Config) diag.Diagnostics {
	var ds diag.Diagnostics
	if c.BGP == nil {
		return ds
	}
	if _, err := bgp.FindHelper(); err != nil {
		ds.Warnf(c.BGP.Pos, "%v; vigil run refuses to start without it", err)
	}
	return ds
}

// bgpHooks feeds instance transitions to the BGP runtime, beside the
// hooks already set.
func bgpHooks(rt *bgp.Runtime, h engine.Hooks) engine.Hooks {
	if rt == nil {
		return h
	}
	prev := h.InstanceTransition
	h.InstanceTransition = func(name string, from, to vrrp.State, prio int, reason string) {
		if prev != nil {
			prev(name, from, to, prio, reason)
		}
		rt.InstanceState(name, to.String())
	}
	return h
}

// bgpObserve feeds the director's quorum changes to the BGP runtime.
func bgpObserve(rt *bgp.Runtime) func(lb.Event) {
	if rt == nil {
		return nil
	}
	return func(ev lb.Event) {
		switch ev.Kind {
		case lb.QuorumUp:
			rt.QuorumState(ev.VS, true)
		case lb.QuorumDown:
			rt.QuorumState(ev.VS, false)
		}
	}
}

// drainBGP runs the BGP graceful shutdown (RFC 8326) before the engine and
// director stop, so routers move traffic while this node still serves.
func (d *daemon) drainBGP() {
	if d.bgp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.bgpCfg.Policy.ShutdownDelay+5*time.Second)
	defer cancel()
	start := time.Now()
	if err := d.bgp.Shutdown(ctx); err != nil {
		d.log.Warn("bgp graceful shutdown cut short", "err", err)
		return
	}
	d.log.Info("bgp routes withdrawn", "took", time.Since(start).Round(time.Millisecond).String())
}

// bgpReload applies a reloaded bgp block to the running speaker (see
// bgp.Runtime.Reconfigure). A block added to a configuration that had
// none, or removed, waits for a restart: the engine's and director's
// observers are wired at start. It returns the changes and a note.
func (d *daemon) bgpReload(ctx context.Context, l loaded) (changes []string, note string, err error) {
	cfg, ok := bgp.FromConfig(l.cfg)
	switch {
	case ok != (d.bgp != nil):
		return nil, "bgp: a bgp block added or removed takes effect at the next restart", nil
	case !ok || reflect.DeepEqual(cfg, d.bgpCfg):
		return nil, "", nil
	}
	changes, err = d.bgp.Reconfigure(ctx, cfg)
	if err != nil {
		return changes, "", err
	}
	d.bgpCfg = cfg
	return changes, "", nil
}

// bgpHandover applies `vigil handover` (hold) or `--reclaim` (release) to
// the BGP routes when no instance is named: every route drains (RFC 8326)
// and is withdrawn until the reclaim, besides the VRRP handover. It
// reports whether it did.
func (d *daemon) bgpHandover(name string, hold bool) bool {
	if d.bgp == nil || name != "" {
		return false
	}
	if hold {
		d.bgp.Hold()
		d.log.Info("bgp routes handed over: draining, then withdrawn until vigil handover --reclaim")
	} else {
		d.bgp.Release()
		d.log.Info("bgp routes reclaimed")
	}
	return true
}

// bgpSummary prints the bgp block for vigil check.
func bgpSummary(w io.Writer, c *config.Config) {
	cfg, ok := bgp.FromConfig(c)
	if !ok {
		return
	}
	b := c.BGP
	fmt.Fprintf(w, "bgp: router id %s, AS %d, graceful shutdown %s (MED %d)\n", b.RouterID, b.LocalAS, fmtDur(b.ShutdownDelay), b.ShutdownMED)
	for _, n := range b.Neighbors {
		fmt.Fprintf(w, "  neighbor %s AS %d, hold time %s\n", n.Addr, n.RemoteAS, fmtDur(n.HoldTime))
	}
	for _, s := range cfg.Policy.Sources {
		when := "while MASTER"
		if s.Kind == bgp.FromVirtualServer {
			when = "while its quorum is up"
		}
		var ps []string
		for _, p := range s.Prefixes {
			ps = append(ps, p.String())
		}
		fmt.Fprintf(w, "  announces %s %s, %s\n", strings.Join(ps, " "), when, string(s.Kind)+" "+s.Name)
	}
}
