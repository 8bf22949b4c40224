package e2e_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// poll starts a client polling http://VIP/ every 10 ms, each request on a
// new connection, and waits until host first answers.
func (e *env) poll(vip netip.Addr, first string) *e2e.Poller {
	e.t.Helper()
	p := &e2e.Poller{Host: e.net.Client, Addr: netip.AddrPortFrom(vip, 80), Every: 10 * time.Millisecond, Answer: 5 * time.Second}
	p.Start()
	e.waitAnswer(vip, first, 15*time.Second)
	time.Sleep(200 * time.Millisecond)
	return p
}

// stopPoll waits until host last has answered for a while, stops the
// poller and returns its summary.
func (e *env) stopPoll(p *e2e.Poller, vip netip.Addr, last string) (e2e.PollStats, []e2e.Request) {
	e.t.Helper()
	e.waitAnswer(vip, last, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	reqs, err := p.Stop()
	if err != nil {
		e.t.Fatal(err)
	}
	st := e2e.SummarisePolls(reqs)
	e.t.Logf("client: %v", st)
	return st, reqs
}

// explain interleaves the VRRP adverts and gratuitous ARPs the client saw
// with the failed requests and their neighbours, for a failure message.
func explain(frames []e2e.Frame, reqs []e2e.Request) string {
	type ev struct {
		at  time.Time
		msg string
	}
	var evs []ev
	var lo, hi time.Time
	for i, r := range reqs {
		if r.OK() {
			continue
		}
		for j := max(0, i-2); j < min(len(reqs), i+3); j++ {
			q := reqs[j]
			what := "answered by " + q.Body
			if !q.OK() {
				what = "FAILED: " + q.Err.Error()
			}
			evs = append(evs, ev{q.At, fmt.Sprintf("request %d start (%s, took %v)", j, what, q.End.Sub(q.At).Round(time.Microsecond))})
			if lo.IsZero() || q.At.Before(lo) {
				lo = q.At
			}
			hi = later(hi, q.End)
		}
	}
	for _, f := range frames {
		if f.At.Before(lo.Add(-time.Second)) || f.At.After(hi.Add(time.Second)) {
			continue
		}
		if v, ok := e2e.ParseVRRP(f.Data); ok {
			evs = append(evs, ev{f.At, fmt.Sprintf("advert from %v priority %d", v.Src, v.Priority)})
		} else if a, ok := e2e.ParseAnnouncement(f.Data); ok {
			evs = append(evs, ev{f.At, fmt.Sprintf("gratuitous ARP/NA for %v from %v", a.Addr, a.SrcMAC)})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, x := range evs {
		fmt.Fprintf(&b, "%s %s\n", x.at.Format("15:04:05.000000"), x.msg)
	}
	return b.String()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func vigilCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(netnstest.VigilBinary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestHandoverWithoutLoss is vigil's planned handover (make before break):
// on SIGTERM, and on `vigil handover`, the master sends priority 0 but keeps
// the VIP until it hears the new master's first advert. A client opening a
// new HTTP connection to the VIP every 10 ms must see no request fail for
// want of a node holding the VIP (e2e.FailGap), and no sampling round may
// find the VIP on no node. Requests broken because their connection was
// open at the instant the client's ARP entry moved (e2e.FailMoved: reset by
// the new master, or delivered to the old master whose server answered only
// after the handover's grace, as a loaded machine's may) are counted and
// logged: no VRRP implementation avoids them.
//
// The SIGTERM cases use the tutorial's VRRPv2 at advert_int 1, towards a
// vigil and a keepalived backup (keepalived sees an RFC priority-0 advert);
// the `vigil handover` case repeats handover and --reclaim three times over
// VRRPv3 at advert_int 0.1.
func TestHandoverWithoutLoss(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		backup e2e.Kind
		cli    bool
	}{
		{"sigterm-to-vigil", e2e.Vigil, false},
		{"sigterm-to-keepalived", e2e.Keepalived, false},
		{"cli-to-vigil", e2e.Vigil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "handover", 2)
			e.servers()
			a, b := e2e.Tutorial(true), e2e.Tutorial(false)
			rounds := 1
			if tc.cli {
				a, b, rounds = fast("MASTER", 100), fast("BACKUP", 99), 3
			}
			master := e.start(e2e.Vigil, 0, conf(a))
			backup := e.start(tc.backup, 1, conf(b))
			e.waitState(master, "VI_1", "MASTER", 10*time.Second)
			e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
			e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)
			sn, err := e2e.StartSniffer(e.net.Client, "eth0", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sn.Stop()

			for round := 1; round <= rounds; round++ {
				p := e.poll(e2e.VIP4, "r1")
				h := e.holders(e2e.VIP4)
				if tc.cli {
					out := vigilCLI(t, "handover", "VI_1", "--api-socket", master.Socket())
					if !strings.Contains(out, "handing over") {
						t.Errorf("vigil handover printed %q", out)
					}
					e.waitState(master, "VI_1", "BACKUP", 10*time.Second)
				} else {
					code, err := master.Term(15 * time.Second)
					if err != nil {
						t.Fatal(err)
					}
					if code != 0 {
						t.Errorf("vigil exited %d after SIGTERM", code)
					}
				}
				e.waitState(backup, "VI_1", "MASTER", 10*time.Second)
				st, reqs := e.stopPoll(p, e2e.VIP4, "r2")
				hs := e.checkOverlap(h, time.Second)
				if n := st.Classes[e2e.FailGap]; n != 0 {
					t.Errorf("round %d: %d of %d requests failed for want of a VIP holder (longest unanswered %v): %v\n%s",
						round, n, st.Requests, st.MaxUnanswered, st.Errors, explain(sn.Frames(), reqs))
				}
				if n := st.Classes[e2e.FailMoved]; n != 0 {
					t.Logf("round %d: %d requests broken: their connection was open when the client's ARP entry moved (reset by the new master, or answered by the old one after it released the VIP)", round, n)
				}
				if st.By["r1"] == 0 || st.By["r2"] == 0 {
					t.Errorf("round %d: answers by node: %v, want both", round, st.By)
				}
				if hs.NoneRounds != 0 {
					t.Errorf("round %d: %d sampling rounds saw no node holding the VIP (up to %v)", round, hs.NoneRounds, hs.MaxNoneUpper)
				}
				if !waitLogged(master, "holding addresses until the new master is heard") ||
					!waitLogged(master, "handover: new master 192.168.1.106") {
					t.Errorf("the old master's log does not show a make-before-break handover:\n%s", master.Log())
				}
				if !tc.cli {
					break
				}
				if round == 1 {
					// The yield holds: the old master does not preempt back
					// until --reclaim.
					e.stayHolder(e2e.VIP4, 1, time.Second)
				}
				vigilCLI(t, "handover", "--reclaim", "VI_1", "--api-socket", master.Socket())
				e.waitState(master, "VI_1", "MASTER", 10*time.Second)
				e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
				e.waitHolds(e.node(1), e2e.VIP4, false, 15*time.Second)
				sn.Reset()
			}
		})
	}
}

// TestKeepalivedStopLeavesGap measures, for the record, what the client
// sees when keepalived 2.2.7 is the master and stops (SIGTERM): it removes
// the VIP at once and the backup takes over only after Skew_Time, so
// requests fail in between. The vigil backup takes over and answers.
func TestKeepalivedStopLeavesGap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "kagap", 2)
	e.servers()
	master := e.start(e2e.Keepalived, 0, conf(e2e.Tutorial(true)))
	backup := e.start(e2e.Vigil, 1, conf(e2e.Tutorial(false)))
	e.waitState(master, "VI_1", "MASTER", 10*time.Second)
	e.waitState(backup, "VI_1", "BACKUP", 10*time.Second)
	e.waitHolds(e.node(0), e2e.VIP4, true, 15*time.Second)
	p := e.poll(e2e.VIP4, "r1")
	h := e.holders(e2e.VIP4)
	if code, err := master.Term(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("keepalived after SIGTERM: exit %d, %v", code, err)
	}
	e.waitState(backup, "VI_1", "MASTER", 10*time.Second)
	st, _ := e.stopPoll(p, e2e.VIP4, "r2")
	hs := e.checkOverlap(h, time.Second)
	t.Logf("keepalived master stopping: %d of %d requests failed, VIP held by nobody for %v..%v",
		st.Failed, st.Requests, hs.MaxNone, hs.MaxNoneUpper)
}
