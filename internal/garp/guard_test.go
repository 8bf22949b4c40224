package garp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestGuard runs the conflict rule over IPv6 and IPv4 targets alike: the
// first claim asks for an answer DefendDelay later; claims while it is
// pending are added to it (one answer for a flood); the answer takes the
// count and the last claimant; MaxAnswers answers in Window, then the
// claims are counted at once and reported as persisting once; after
// Window, answered again. Addresses are independent.
func TestGuard(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	them := net.HardwareAddr{2, 0, 0, 0, 0, 0x66}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 0x77}
	for _, addr := range []string{"fd00::100", "192.168.1.100"} {
		t.Run(addr, func(t *testing.T) {
			var g Guard
			vip := Target{Addr: netip.MustParseAddr(addr), Dev: "eth0"}
			now := at
			if v := g.Claimed(now, vip, them, 1); v != (Verdict{Answer: true}) {
				t.Fatalf("first claim: %+v, want an answer", v)
			}
			// A flood while the answer is pending: no more answers.
			for i := 0; i < 1000; i++ {
				if v := g.Claimed(now.Add(time.Millisecond), vip, them, 1); v != (Verdict{}) {
					t.Fatalf("claim %d while pending: %+v, want nothing at once", i, v)
				}
			}
			g.Claimed(now.Add(time.Millisecond), vip, other, 5)
			if n, mac := g.Due(vip); n != 1006 || mac.String() != other.String() {
				t.Fatalf("due: %d claims, last by %s; want 1006 by %s", n, mac, other)
			}
			if n, _ := g.Due(vip); n != 0 {
				t.Fatalf("due twice: %d claims", n)
			}
			// Another address has its own budget.
			next := Target{Addr: vip.Addr.Next(), Dev: "eth0"}
			if v := g.Claimed(now, next, them, 1); !v.Answer {
				t.Fatalf("another address: %+v, want an answer", v)
			}
			g.Due(next)
			for i := 2; i <= MaxAnswers; i++ {
				now = now.Add(2 * DefendDelay)
				if v := g.Claimed(now, vip, them, 1); !v.Answer {
					t.Fatalf("claim %d: %+v, want answer", i, v)
				}
				g.Due(vip)
			}
			now = now.Add(2 * DefendDelay)
			if v := g.Claimed(now, vip, them, 2); v != (Verdict{Count: 2, Persists: true}) {
				t.Fatalf("past the budget: %+v, want 2 counted and persisting", v)
			}
			if v := g.Claimed(now.Add(time.Second), vip, them, 1); v != (Verdict{Count: 1}) {
				t.Fatalf("past the budget again: %+v, want counted only", v)
			}
			if n, _ := g.Due(vip); n != 0 {
				t.Fatalf("due past the budget: %d, want nothing pending", n)
			}
			if v := g.Claimed(at.Add(Window), vip, them, 1); !v.Answer {
				t.Fatalf("after the window: %+v, want an answer", v)
			}
			g.Due(vip)
			g.Forget(at.Add(3 * Window))
			if len(g.answers) != 0 || len(g.pending) != 0 {
				t.Errorf("after Forget: %d answer windows, %d pending; want none", len(g.answers), len(g.pending))
			}
		})
	}
}
