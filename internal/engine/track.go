package engine

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/procwatch"
	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/script"
	"github.com/vigil-ha/vigil/internal/status"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/track/filewatch"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// trackerEvent is a tracked object's new state, sent by its runner.
type trackerEvent struct {
	kind   track.Kind
	name   string
	status track.Status
	value  int64
	gen    uint64 // the runner generation; stale events are ignored
}

// trackers owns the goroutines that watch tracked objects: one per
// vrrp_script, one file watcher, one process watcher. Its maps are owned by
// the engine loop.
type trackers struct {
	scripts map[string]*runner // by vrrp_script name
	// scriptRuns are the running vrrp_scripts, for their last result in
	// status.
	scriptRuns map[string]*script.TrackScript
	files      *runner
	procs      *runner
	runnerR    *script.Runner

	scriptStatus map[string]track.Status
	fileValue    map[string]int64
	procStatus   map[string]track.Status
	gen          uint64
}

// runner is one tracker goroutine and what started it.
type runner struct {
	spec   any
	gen    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runner) stop() {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
}

func newTrackers() *trackers {
	return &trackers{
		scripts:      map[string]*runner{},
		scriptRuns:   map[string]*script.TrackScript{},
		scriptStatus: map[string]track.Status{},
		fileValue:    map[string]int64{},
		procStatus:   map[string]track.Status{},
	}
}

// post sends an event into the loop unless the engine is shutting down.
func (e *Engine) post(ev any) {
	select {
	case e.events <- ev:
	case <-e.bg.Done():
	}
}

// syncTrackers starts, restarts or stops tracker goroutines so that they
// match e.spec. Unchanged scripts keep running and keep their state.
func (e *Engine) syncTrackers() {
	t := e.tr
	if t.runnerR == nil {
		t.runnerR = script.NewRunner(script.RunnerOptions{Logger: e.log})
	}
	want := map[string]runspec.ScriptSpec{}
	for _, s := range e.spec.Scripts {
		want[s.Name] = s
	}
	for name, r := range t.scripts {
		if s, ok := want[name]; !ok || !reflect.DeepEqual(r.spec, s) {
			r.stop()
			delete(t.scripts, name)
			delete(t.scriptRuns, name)
			delete(t.scriptStatus, name)
		}
	}
	for name, s := range want {
		if _, ok := t.scripts[name]; ok {
			continue
		}
		t.gen++
		gen := t.gen
		ts := script.NewTrackScript(script.TrackOptions{
			Name: s.Name, Script: s.Script, Interval: s.Interval, Timeout: s.Timeout,
			Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail, Logger: e.log,
		}, t.runnerR, func(name string, st track.Status) {
			e.post(trackerEvent{kind: track.Script, name: name, status: st, gen: gen})
		})
		if s.InitFail {
			t.scriptStatus[name] = track.Down
		}
		t.scripts[name] = e.startRunner(s, gen, ts.Run)
		t.scriptRuns[name] = ts
	}

	if t.files == nil || !reflect.DeepEqual(t.files.spec, e.spec.Files) {
		t.files.stop()
		t.files = nil
		clear(t.fileValue)
		if len(e.spec.Files) > 0 {
			var files []filewatch.File
			for _, f := range e.spec.Files {
				if f.InitSet {
					if err := filewatch.InitFile(f.Path, f.InitValue, f.InitOverwrite); err != nil {
						e.log.Error("track_file: cannot initialise", "track_file", f.Name, "file", f.Path, "err", err)
					}
				}
				files = append(files, filewatch.File{Name: f.Name, Path: f.Path})
			}
			t.gen++
			gen := t.gen
			w, err := filewatch.New(filewatch.Options{Files: files, Logger: e.log, OnChange: func(name string, v int64) {
				e.post(trackerEvent{kind: track.File, name: name, value: v, gen: gen})
			}})
			// A file New cannot resolve (its directory is missing) is left
			// out and reads as 0; the others are still followed, as
			// keepalived removes only that one ("Track file directory for
			// NAME does not exist - removing").
			if err != nil {
				e.log.Error("track_file: cannot watch; it reads as 0", "err", err)
			}
			t.files = e.startRunner(e.spec.Files, gen, w.Run)
		}
	}

	if t.procs == nil || !reflect.DeepEqual(t.procs.spec, e.spec.Processes) {
		t.procs.stop()
		t.procs = nil
		clear(t.procStatus)
		if len(e.spec.Processes) > 0 {
			t.gen++
			gen := t.gen
			w, err := procwatch.New(procwatch.Options{Specs: e.spec.Processes, Logger: e.log, OnChange: func(name string, up bool) {
				st := track.Down
				if up {
					st = track.Up
				}
				e.post(trackerEvent{kind: track.Process, name: name, status: st, gen: gen})
			}})
			if err != nil {
				e.log.Error("vrrp_track_process: cannot watch processes; tracked processes count as down", "err", err)
				for _, p := range e.spec.Processes {
					t.procStatus[p.Name] = track.Down
				}
			} else {
				t.procs = e.startRunner(e.spec.Processes, gen, w.Run)
			}
		}
	}
}

func (e *Engine) startRunner(spec any, gen uint64, run func(context.Context) error) *runner {
	ctx, cancel := context.WithCancel(e.bg)
	r := &runner{spec: spec, gen: gen, cancel: cancel, done: make(chan struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(r.done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("tracker stopped", "err", err)
		}
	}()
	return r
}

// stopTrackers stops every tracker goroutine (at shutdown).
func (e *Engine) stopTrackers() {
	t := e.tr
	for _, r := range t.scripts {
		r.stop()
	}
	t.files.stop()
	t.procs.stop()
}

// trackerChanged records a tracker's new state and updates the instances
// that track it.
func (e *Engine) trackerChanged(now time.Time, ev trackerEvent) {
	t := e.tr
	var cur *runner
	switch ev.kind {
	case track.Script:
		cur = t.scripts[ev.name]
	case track.File:
		cur = t.files
	case track.Process:
		cur = t.procs
	}
	if cur == nil || cur.gen != ev.gen {
		return // from a runner that has been replaced
	}
	switch ev.kind {
	case track.Script:
		t.scriptStatus[ev.name] = ev.status
		e.log.Info("tracker changed", "vrrp_script", ev.name, "status", ev.status.String())
	case track.File:
		t.fileValue[ev.name] = ev.value
		e.log.Info("tracker changed", "track_file", ev.name, "value", ev.value)
	case track.Process:
		t.procStatus[ev.name] = ev.status
		e.log.Info("tracker changed", "vrrp_track_process", ev.name, "status", ev.status.String())
	}
	for _, in := range e.all() {
		for _, r := range in.spec.Trackers {
			if r.Kind == ev.kind && r.Name == ev.name {
				e.updateTracking(now, in)
				break
			}
		}
	}
}

// trackerInputs returns the instance's trackers with their current state.
func (e *Engine) trackerInputs(in *instance) []track.Tracker {
	out := make([]track.Tracker, 0, len(in.spec.Trackers))
	for _, r := range in.spec.Trackers {
		tr := track.Tracker{Kind: r.Kind, Name: r.Name, Weight: r.Weight, Reverse: r.Reverse}
		switch r.Kind {
		case track.Interface:
			tr.Status = track.Down
			if li, ok := e.links[r.Name]; ok && li.Usable() {
				tr.Status = track.Up
			}
		case track.Script:
			tr.Status = e.tr.scriptStatus[r.Name]
		case track.File:
			tr.Value = e.tr.fileValue[r.Name]
		case track.Process:
			tr.Status = e.tr.procStatus[r.Name]
		}
		out = append(out, tr)
	}
	return out
}

// waiting reports whether an unweighted vrrp_script of the instance has not
// reported yet: keepalived keeps such an instance in INIT.
func (e *Engine) waiting(in *instance) bool {
	return track.Compute(in.spec.VRRP.Priority, e.trackerInputs(in)).Waiting
}

// updateTracking recomputes the instance's link and tracker picture and
// feeds what changed to its state machine.
func (e *Engine) updateTracking(now time.Time, in *instance) {
	if in.pending {
		return // not started yet: primed when it starts
	}
	li, ok := e.links[in.spec.Interface]
	// A missing source address is a fault of its own (below), not a link
	// down: the transition then names it rather than "interface down".
	up := ok && li.Usable() || in.spec.DontTrackPrimary
	if up != in.linkUp || !in.primed {
		in.linkUp = up
		e.step(now, in, vrrp.LinkChanged{Up: up})
	}
	res := track.Compute(in.spec.VRRP.Priority, e.trackerInputs(in))
	fault, why := res.Fault, res.Reason
	if in.missing != "" {
		fault, why = true, in.missing
	}
	if res.Waiting && !res.Fault {
		// Started instances never wait again; a restarted script's first
		// result is awaited without faulting.
		why = ""
	}
	if fault != in.fault || why != in.faultWhy || !in.primed {
		if !fault && in.fault && in.faultMissing {
			why = "ready again (was: " + in.faultWhy + ")"
		}
		in.fault, in.faultWhy, in.faultMissing = fault, why, fault && in.missing != ""
		e.step(now, in, vrrp.FaultChanged{Fault: fault, Reason: why})
	}
	if prio := int(res.Priority); prio != in.prio || !in.primed {
		old := in.prio
		in.prio = prio
		e.step(now, in, vrrp.PriorityChanged{Priority: res.Total})
		if in.primed && old != prio {
			e.log.Info("priority changed", "instance", in.spec.VRRP.Name, "from", old, "to", prio)
			e.notifyPriority(in)
		}
	}
	in.primed = true
}

// trackerStatus describes an instance's trackers for the status API.
func (e *Engine) trackerStatus(in *instance) []status.Tracker {
	var out []status.Tracker
	if !in.spec.DontTrackPrimary {
		out = append(out, status.Tracker{Kind: "interface", Name: in.spec.Interface, OK: in.linkUp && in.missing == "", Detail: in.missing})
	}
	for _, tr := range e.trackerInputs(in) {
		st := status.Tracker{Kind: strings.TrimPrefix(tr.Kind.String(), "track_"), Name: tr.Name, Weight: tr.Weight}
		switch tr.Kind {
		case track.File:
			st.OK = track.FileStatus(tr.Value, tr.Weight, tr.Reverse) != track.FileFault
			st.Detail = fmt.Sprintf("value %d", tr.Value)
		default:
			st.OK = tr.Status == track.Up
			if tr.Status == track.Unknown {
				st.Detail = "no result yet"
			}
			if ts := e.tr.scriptRuns[tr.Name]; tr.Kind == track.Script && ts != nil {
				st.Detail = strings.TrimSpace(st.Detail + " " + scriptDetail(ts.Stats()))
			}
		}
		if tr.Reverse {
			st.Detail = strings.TrimSpace(st.Detail + " reverse")
		}
		out = append(out, st)
	}
	return out
}

// scriptDetail is what status says of a vrrp_script's runs: the last
// result (keepalived logs "Script `chk` now returning 1" or "timed_out"
// only on a change) and how many failed.
func scriptDetail(st script.TrackStats) string {
	if st.Runs == 0 {
		return ""
	}
	d := "last run: " + st.Last
	if st.Failures > 0 {
		d += fmt.Sprintf("; %d of %d runs failed", st.Failures, st.Runs)
		if st.TimeOuts > 0 {
			d += fmt.Sprintf(" (%d timed out)", st.TimeOuts)
		}
	}
	if st.NotRun > 0 {
		d += fmt.Sprintf("; %d could not start (daemon out of resources)", st.NotRun)
	}
	return d
}
