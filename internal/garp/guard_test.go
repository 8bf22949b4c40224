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
			if n, mac, first := g.Due(vip); n != 1006 || mac.String() != other.String() || !first.Equal(now) {
				t.Fatalf("due: %d claims, last by %s, first at %v; want 1006 by %s, first at %v", n, mac, first, other, now)
			}
			if n, _, _ := g.Due(vip); n != 0 {
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
			if n, _, _ := g.Due(vip); n != 0 {
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

// TestLeftover: claims read within one advert interval and LeftoverSlack
// of another router's last advert, that router silent for as long when the
// answer is due (AnswerDelay waits for it), are its leftovers; a claim
// later than that, one followed by adverts (a second master, at a short or
// a long interval), and one on an instance that never heard another router
// are conflicts, answered DefendDelay after the claim when no router
// advertised just before.
func TestLeftover(t *testing.T) {
	last := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		first, last time.Time
		interval    time.Duration
		delay       time.Duration
		want        bool
	}{
		{"right after its last advert", last.Add(10 * time.Millisecond), last, time.Second, 2*time.Second - 10*time.Millisecond, true},
		{"at the window's end", last.Add(2 * time.Second), last, time.Second, DefendDelay, true},
		{"past the window", last.Add(2*time.Second + time.Millisecond), last, time.Second, DefendDelay, false},
		{"long interval, right after", last.Add(10 * time.Millisecond), last, 3 * time.Second, 4*time.Second - 10*time.Millisecond, true},
		{"fast adverts, right after", last.Add(10 * time.Millisecond), last, 100 * time.Millisecond, DefendDelay, true},
		{"no other router heard", last, time.Time{}, time.Second, DefendDelay, false},
	} {
		d := AnswerDelay(c.first, c.last, c.interval)
		if d != c.delay {
			t.Errorf("%s: AnswerDelay = %v, want %v", c.name, d, c.delay)
		}
		if got := Leftover(c.first, c.last, c.first.Add(d), c.interval); got != c.want {
			t.Errorf("%s: Leftover = %v, want %v", c.name, got, c.want)
		}
	}
	// A second master goes on advertising: by the time the answer is due
	// it has been heard again, at any interval.
	for _, interval := range []time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second} {
		first := last.Add(10 * time.Millisecond)
		due := first.Add(AnswerDelay(first, last, interval))
		next := last
		for !next.Add(interval).After(due) {
			next = next.Add(interval)
		}
		if next == last {
			t.Errorf("interval %v: no advert of a second master before the answer is due at %v", interval, due.Sub(last))
		}
		if Leftover(first, next, due, interval) {
			t.Errorf("interval %v: a second master still advertising taken for a leftover", interval)
		}
	}
}
