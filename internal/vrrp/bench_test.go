package vrrp

import (
	"testing"
	"time"
)

// A backup accepting its master's advert: the steady-state receive path.
func BenchmarkStepBackupReceive(b *testing.B) {
	c := v3cfg()
	inst, _ := New(c)
	inst.Step(t0, Start{})
	ev := rx(c, higher4, 150)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		if acts := inst.Step(now, ev); len(acts) != 0 {
			b.Fatal(acts)
		}
	}
}

// A master's Adver_Timer: the steady-state send path.
func BenchmarkStepMasterTimeout(b *testing.B) {
	c := with(v3cfg(), func(c *Config) { c.Priority = 255 })
	inst, _ := New(c)
	inst.Step(t0, Start{})
	b.ReportAllocs()
	for b.Loop() {
		if acts := inst.Step(inst.Deadline(), Timeout{}); len(acts) != 1 {
			b.Fatal(acts)
		}
	}
}

// A backup accepting its master's AH advert: the receive path with the ICV
// check (its HMAC state kept on the instance). The counter is put back
// each time so that the one sealed advert is not a replay.
func BenchmarkStepBackupReceiveAH(b *testing.B) {
	c := ahCfg()
	inst, _ := New(c)
	inst.Step(t0, Start{})
	ev := ahRx(b, c, higher4, 150, 1)
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		inst.ahSeq = 0
		if acts := inst.Step(now, ev); len(acts) != 0 {
			b.Fatal(acts)
		}
	}
}
