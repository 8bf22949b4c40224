package check

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const s = time.Second

// in is one attempt fed to Health.Observe: its outcome and how long it took.
type in struct {
	ok      bool
	weight  *int // Result.Weight
	delta   *int // Result.WeightDelta
	latency time.Duration
}

var (
	pass = in{ok: true}
	fail = in{}
)

// out is what Observe did with one attempt: the delay until the next one
// (measured from the end of this one), the checker's state after it, whether
// a Transition was reported, and the step due next.
type out struct {
	Delay   time.Duration
	Up      bool
	Changed bool
	Step    int
	Weight  *int
	Delta   *int
}

func ip(v int) *int { return &v }

func run(h Health, ins []in) []out {
	now := time.Unix(1000, 0)
	var got []out
	for _, a := range ins {
		now = now.Add(a.latency)
		next, tr := h.Observe(now, Result{OK: a.ok, Reason: "r", Weight: a.weight, WeightDelta: a.delta, Latency: a.latency})
		got = append(got, out{Delay: next.Sub(now), Up: h.Up(), Changed: tr != nil, Step: h.Step(), Weight: h.Weight(), Delta: h.WeightDelta()})
		now = next
	}
	return got
}

func policy(k Kind, mod func(*Policy)) Policy {
	p := Defaults(k, 6*s)
	if mod != nil {
		mod(&p)
	}
	return p
}

func TestHealth(t *testing.T) {
	// The seed tutorial's TCP_CHECK: delay_loop 6, retry 3,
	// delay_before_retry 3. It observed the real server removed "about 9 s"
	// after nginx stopped and restored "about 3 s" after it came back.
	tutorial := policy(KindTCP, func(p *Policy) { p.Retry = 3; p.DelayBeforeRetry = 3 * s })
	tests := []struct {
		name string
		p    Policy
		in   []in
		want []out
	}{
		{
			// check_data.c: retry_it = retry at start, "for non alpha mode,
			// one failure is enough initially".
			name: "tcp first failure after start marks down at once",
			p:    tutorial,
			in:   []in{fail, fail},
			want: []out{{Delay: 6 * s, Up: false, Changed: true}, {Delay: 3 * s}},
		},
		{
			name: "tcp first success after start is no transition",
			p:    tutorial,
			in:   []in{pass, pass},
			want: []out{{Delay: 6 * s, Up: true}, {Delay: 6 * s, Up: true}},
		},
		{
			// tcp_epilog: retries after delay_before_retry, down on the
			// retry+1'th consecutive failure: 3+3+3 = 9 s after the first.
			name: "tcp up server goes down after retry+1 failures (tutorial: 9 s)",
			p:    tutorial,
			in:   []in{pass, fail, fail, fail, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 6 * s, Up: false, Changed: true},
			},
		},
		{
			// The retry counter cycles while down, so a down TCP_CHECK is
			// probed every delay_before_retry (tutorial: back in ~3 s).
			name: "tcp down server is probed at delay_before_retry and restored by one success",
			p:    tutorial,
			in:   []in{fail, fail, fail, fail, fail, pass, pass},
			want: []out{
				{Delay: 6 * s, Changed: true},
				{Delay: 3 * s},
				{Delay: 3 * s},
				{Delay: 3 * s},
				{Delay: 6 * s},
				{Delay: 6 * s, Up: true, Changed: true},
				{Delay: 6 * s, Up: true},
			},
		},
		{
			name: "tcp success during retries resets the counter",
			p:    tutorial,
			in:   []in{pass, fail, fail, pass, fail, fail, fail, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 6 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 6 * s, Changed: true},
			},
		},
		{
			name: "tcp retry 0 marks down at every first failure",
			p:    policy(KindTCP, func(p *Policy) { p.Retry = 0 }),
			in:   []in{pass, fail, pass, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 6 * s, Up: true, Changed: true},
				{Delay: 6 * s, Changed: true},
			},
		},
		{
			// alpha: the checker starts down and needs one success.
			name: "tcp alpha starts down, first failure is no transition",
			p:    policy(KindTCP, func(p *Policy) { p.Alpha = true }),
			in:   []in{fail, pass},
			want: []out{{Delay: 6 * s}, {Delay: 6 * s, Up: true, Changed: true}},
		},
		{
			// udp_epilog / icmp_epilog: no retries while down.
			name: "udp down server is probed every delay_loop",
			p:    policy(KindUDP, func(p *Policy) { p.Retry = 2 }),
			in:   []in{pass, fail, fail, fail, fail, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 1 * s, Up: true},
				{Delay: 1 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 6 * s},
				{Delay: 6 * s},
			},
		},
		{
			name: "ping behaves as udp",
			p:    policy(KindPing, nil),
			in:   []in{fail, fail, pass},
			want: []out{{Delay: 6 * s, Changed: true}, {Delay: 6 * s}, {Delay: 6 * s, Up: true, Changed: true}},
		},
		{
			// DNS_CHECK defaults: retry 3, delay_before_retry = delay_loop.
			name: "dns defaults retry 3 at delay_loop",
			p:    policy(KindDNS, nil),
			in:   []in{pass, fail, fail, fail, fail, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 6 * s},
			},
		},
		{
			name: "dns first failure after start marks down at once",
			p:    policy(KindDNS, nil),
			in:   []in{fail},
			want: []out{{Delay: 6 * s, Changed: true}},
		},
		{
			// smtp_start_check_thread resets retry_it every round, so the
			// first failure after start is retried, unlike TCP_CHECK.
			name: "smtp first failure after start is retried",
			p:    policy(KindSMTP, nil),
			in:   []in{fail, fail, fail, fail, pass},
			want: []out{
				{Delay: 1 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 1 * s},
				{Delay: 6 * s},
				{Delay: 6 * s, Up: true, Changed: true},
			},
		},
		{
			// check_misc.c: retry defaults to 0; the next run is due
			// delay_loop after the start of this one.
			name: "misc retry 0, scheduled from the start of the run",
			p:    policy(KindMisc, nil),
			in:   []in{{ok: true, latency: 2 * s}, {latency: 1 * s}, {latency: 1 * s}, {ok: true}},
			want: []out{
				{Delay: 4 * s, Up: true},
				{Delay: 5 * s, Changed: true},
				{Delay: 5 * s},
				{Delay: 6 * s, Up: true, Changed: true},
			},
		},
		{
			name: "misc retries while up at delay_before_retry, none while down",
			p:    policy(KindMisc, func(p *Policy) { p.Retry = 2; p.DelayBeforeRetry = 2 * s }),
			in:   []in{pass, fail, fail, fail, fail},
			want: []out{
				{Delay: 6 * s, Up: true},
				{Delay: 2 * s, Up: true},
				{Delay: 2 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 6 * s},
			},
		},
		{
			name: "misc run longer than delay_loop reruns at once",
			p:    policy(KindMisc, nil),
			in:   []in{{ok: true, latency: 7 * s}},
			want: []out{{Delay: time.Microsecond, Up: true}},
		},
		{
			// misc_dynamic: exit 2..255 sets weight exit−2, exit 0 restores
			// the configured weight, a down drops the dynamic weight.
			name: "misc dynamic weight",
			p:    policy(KindMisc, nil),
			in:   []in{{ok: true, weight: ip(3)}, {ok: true, weight: ip(3)}, {ok: true, weight: ip(10)}, pass, {ok: true, weight: ip(0)}, fail},
			want: []out{
				{Delay: 6 * s, Up: true, Changed: true, Weight: ip(3)},
				{Delay: 6 * s, Up: true, Weight: ip(3)},
				{Delay: 6 * s, Up: true, Changed: true, Weight: ip(10)},
				{Delay: 6 * s, Up: true, Changed: true},
				{Delay: 6 * s, Up: true, Changed: true, Weight: ip(0)},
				{Delay: 6 * s, Changed: true},
			},
		},
		{
			// check_http.c epilog(): one url per attempt, delay_loop apart.
			name: "http two urls checked one per delay_loop",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 2 }),
			in:   []in{pass, pass, pass},
			want: []out{{Delay: 6 * s, Up: true, Step: 1}, {Delay: 6 * s, Up: true}, {Delay: 6 * s, Up: true, Step: 1}},
		},
		{
			name: "http failure of the first url after start marks down at once",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 2 }),
			in:   []in{fail},
			want: []out{{Delay: 6 * s, Changed: true}},
		},
		{
			// A failure before the first verdict (has_run unset) is no
			// retry either: retry_it is kept at retry during the first pass.
			name: "http failure of the second url during the first pass marks down at once",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 2 }),
			in:   []in{pass, fail},
			want: []out{{Delay: 6 * s, Up: true, Step: 1}, {Delay: 6 * s, Step: 1, Changed: true}},
		},
		{
			// Up: the failing url is retried after delay_before_retry (3 s
			// for HTTP_GET); down after retry+1 failures; the failed url is
			// then checked every max(delay_before_retry, delay_loop); when
			// it recovers, every url is checked again from the first.
			name: "http failed url, recovery rechecks all urls",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 2 }),
			in:   []in{pass, pass, pass, fail, fail, fail, pass, pass, pass},
			want: []out{
				{Delay: 6 * s, Up: true, Step: 1},
				{Delay: 6 * s, Up: true},
				{Delay: 6 * s, Up: true, Step: 1},
				{Delay: 3 * s, Up: true, Step: 1},
				{Delay: 6 * s, Step: 1, Changed: true},
				{Delay: 6 * s, Step: 1},
				{Delay: 6 * s},
				{Delay: 6 * s, Step: 1},
				{Delay: 6 * s, Up: true, Changed: true},
			},
		},
		{
			name: "http failure during recovery retries at delay_before_retry",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 2; p.DelayBeforeRetry = 2 * s }),
			in:   []in{fail, pass, fail, pass},
			want: []out{
				{Delay: 6 * s, Changed: true},
				{Delay: 6 * s},
				{Delay: 2 * s},
				{Delay: 6 * s, Step: 1},
			},
		},
		{
			name: "http fast_recovery checks the next url at once",
			p:    policy(KindHTTP, func(p *Policy) { p.Steps = 3; p.FastRecovery = true }),
			in:   []in{pass, pass, pass, fail, fail, pass, pass, fail, pass, pass},
			want: []out{
				{Delay: 0, Up: true, Step: 1},
				{Delay: 0, Up: true, Step: 2},
				{Delay: 6 * s, Up: true},
				{Delay: 3 * s, Up: true},
				{Delay: 6 * s, Changed: true},
				{Delay: 0, Step: 0},
				{Delay: 0, Step: 1},
				// vigil: no immediate re-check after a failure (keepalived
				// loops here).
				{Delay: 3 * s, Step: 1},
				{Delay: 0, Step: 2},
				{Delay: 6 * s, Up: true, Changed: true},
			},
		},
		{
			// track_file.c: no retries; the value is the weight offset.
			name: "file weight offset and fault",
			p:    policy(KindFile, nil),
			in:   []in{{ok: true, delta: ip(5)}, {ok: true, delta: ip(5)}, {ok: true, delta: ip(-2)}, fail, {ok: true, delta: ip(0)}},
			want: []out{
				{Delay: 1 * s, Up: true, Changed: true, Delta: ip(5)},
				{Delay: 1 * s, Up: true, Delta: ip(5)},
				{Delay: 1 * s, Up: true, Changed: true, Delta: ip(-2)},
				{Delay: 1 * s, Changed: true},
				{Delay: 1 * s, Up: true, Changed: true, Delta: ip(0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Fatal(err)
			}
			got := run(NewHealth(tt.p), tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Observe outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealthStart(t *testing.T) {
	now := time.Unix(1000, 0)
	h := NewHealth(Defaults(KindTCP, 6*s))
	for _, tc := range []struct {
		rnd  float64
		want time.Duration
	}{{0, 1 * s}, {0.5, 4 * s}, {1, 7 * s}, {2, 7 * s}, {-1, 1 * s}} {
		if got := h.Start(now, tc.rnd).Sub(now); got != tc.want {
			t.Errorf("Start(rnd=%v) = now+%v, want now+%v (BOOTSTRAP_DELAY + warmup*rnd)", tc.rnd, got, tc.want)
		}
	}
	f := NewHealth(Defaults(KindFile, 0))
	if got := f.Start(now, 0.7); !got.Equal(now) {
		t.Errorf("FILE_CHECK Start = now+%v, want now", got.Sub(now))
	}
}

func TestHealthTransitionReason(t *testing.T) {
	h := NewHealth(policy(KindTCP, func(p *Policy) { p.Retry = 2 }))
	now := time.Unix(1000, 0)
	var tr *Transition
	for i, ok := range []bool{true, false, false, false} {
		_, tr = h.Observe(now, Result{OK: ok, Reason: "connect 10.0.0.2:80: connection refused"})
		if i < 3 && tr != nil {
			t.Fatalf("attempt %d: unexpected transition %+v", i, tr)
		}
	}
	want := &Transition{At: now, WasUp: true, Up: false, Reason: "connect 10.0.0.2:80: connection refused (failed after 2 retries)"}
	if diff := cmp.Diff(want, tr); diff != "" {
		t.Errorf("transition (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		k                      Kind
		retry                  int
		delayBeforeRetry, warm time.Duration
	}{
		{KindTCP, 1, 1 * s, 10 * s},
		{KindHTTP, 1, 3 * s, 10 * s},
		{KindSSL, 1, 3 * s, 10 * s},
		{KindSMTP, 1, 1 * s, 10 * s},
		{KindDNS, 3, 10 * s, 10 * s},
		{KindUDP, 1, 1 * s, 10 * s},
		{KindPing, 1, 1 * s, 10 * s},
		{KindMisc, 0, 1 * s, 10 * s},
	}
	for _, tt := range tests {
		p := Defaults(tt.k, 10*s)
		got := [3]any{p.Retry, p.DelayBeforeRetry, p.Warmup}
		want := [3]any{tt.retry, tt.delayBeforeRetry, tt.warm}
		if got != want {
			t.Errorf("Defaults(%v): retry, delay_before_retry, warmup = %v, want %v", tt.k, got, want)
		}
	}
	if p := Defaults(KindTCP, 0); p.DelayLoop != 60*s {
		t.Errorf("default delay_loop %v, want 60s", p.DelayLoop)
	}
}

func TestKindNames(t *testing.T) {
	for k := KindTCP; k <= KindFile; k++ {
		got, ok := ParseKind(k.String())
		if !ok || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := ParseKind("BFD_CHECK"); ok {
		t.Error("ParseKind(BFD_CHECK) succeeded")
	}
}

func TestPolicyValidate(t *testing.T) {
	bad := []Policy{
		{},
		{Kind: KindTCP},
		{Kind: KindTCP, DelayLoop: s, Retry: -1},
		{Kind: KindTCP, DelayLoop: s, Steps: 2},
	}
	for _, p := range bad {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", p)
		}
	}
}

func TestServer(t *testing.T) {
	type step struct {
		checker int
		tr      Transition
	}
	type got struct {
		Up      bool
		Weight  int
		Changed bool
	}
	tests := []struct {
		name   string
		weight int
		start  []bool
		steps  []step
		want   []got
	}{
		{
			name: "up only when every checker is up", weight: 1, start: []bool{true, true},
			steps: []step{
				{0, Transition{Up: false}},
				{1, Transition{Up: false}},
				{0, Transition{Up: true}},
				{1, Transition{Up: true}},
			},
			want: []got{{false, 1, true}, {false, 1, false}, {false, 1, false}, {true, 1, true}},
		},
		{
			// keepalived.conf(5): "If there is only one MISC_CHECK and no
			// FILE_CHECKers the effect is to set the RS weight to two less
			// than the exit status."
			name: "misc dynamic weight replaces the configured weight", weight: 5, start: []bool{true},
			steps: []step{
				{0, Transition{Up: true, Weight: ip(253)}},
				{0, Transition{Up: true, Weight: ip(0)}},
				{0, Transition{Up: true}},
			},
			want: []got{{true, 253, true}, {true, 0, true}, {true, 5, true}},
		},
		{
			name: "file delta adds, clamped at 0", weight: 10, start: []bool{true, true},
			steps: []step{
				{0, Transition{Up: true, WeightDelta: ip(5)}},
				{1, Transition{Up: true, WeightDelta: ip(-100)}},
				{1, Transition{Up: true, WeightDelta: ip(-15)}},
			},
			want: []got{{true, 15, true}, {true, 0, true}, {true, 0, false}},
		},
		{
			name: "two dynamic misc checkers add their offsets", weight: 4, start: []bool{true, true},
			steps: []step{
				{0, Transition{Up: true, Weight: ip(10)}},
				{1, Transition{Up: true, Weight: ip(6)}},
			},
			// 4 + (10-4) + (6-4), check_misc.c cur_weight arithmetic.
			want: []got{{true, 10, true}, {true, 12, true}},
		},
		{
			name: "alpha start", weight: 1, start: []bool{false},
			steps: []step{{0, Transition{Up: true}}},
			want:  []got{{true, 1, true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sv := NewServer(tt.weight, tt.start)
			var g []got
			for _, st := range tt.steps {
				_, changed := sv.Apply(st.checker, st.tr)
				g = append(g, got{sv.Up(), sv.Weight(), changed})
			}
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	empty := NewServer(3, nil)
	if !empty.Up() || empty.Weight() != 3 {
		t.Errorf("server without checkers: up %v weight %d, want up, 3", empty.Up(), empty.Weight())
	}
}

// FuzzHealth drives a Health and a Server with arbitrary policies and
// results. Properties: Observe never panics, never schedules into the past,
// reports a Transition exactly when the state or weight changed, and the
// Server is up exactly when every checker is.
func FuzzHealth(f *testing.F) {
	f.Add([]byte{1, 3, 2, 0, 1, 0, 0, 0, 1})
	f.Add([]byte{2, 1, 3, 1, 1, 1, 0, 0, 0, 1, 1})
	f.Add([]byte{8, 0, 0, 0, 7, 3, 0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		k := Kind(b[0]%9 + 1)
		p := Defaults(k, time.Duration(b[1]%10+1)*time.Second)
		p.Retry = int(b[2] % 5)
		p.Alpha = b[3]&1 == 1
		p.FastRecovery = b[3]&2 == 2
		if k == KindHTTP || k == KindSSL {
			p.Steps = int(b[3]>>2)%4 + 1
		}
		hs := []Health{NewHealth(p), NewHealth(p)}
		sv := NewServer(int(b[1]), []bool{hs[0].Up(), hs[1].Up()})
		now := time.Unix(1000, 0)
		for i, c := range b[4:] {
			h := &hs[i%2]
			r := Result{OK: c&1 == 1, Latency: time.Duration(c>>5) * time.Second}
			if c&2 == 2 {
				w := int(c >> 2)
				r.Weight, r.WeightDelta = &w, &w
			}
			wasUp, wasW, wasD := h.Up(), h.Weight(), h.WeightDelta()
			next, tr := h.Observe(now, r)
			if next.Before(now) {
				t.Fatalf("next %v before now %v", next, now)
			}
			changed := wasUp != h.Up() || !sameInt(wasW, h.Weight()) || !sameInt(wasD, h.WeightDelta())
			if changed != (tr != nil) {
				t.Fatalf("changed=%v but transition %+v", changed, tr)
			}
			if h.Step() < 0 || h.Step() >= p.Steps {
				t.Fatalf("step %d out of [0,%d)", h.Step(), p.Steps)
			}
			if tr != nil {
				sv.Apply(i%2, *tr)
			}
			if sv.Up() != (hs[0].Up() && hs[1].Up()) {
				t.Fatalf("server up %v, checkers %v %v", sv.Up(), hs[0].Up(), hs[1].Up())
			}
			now = next
		}
	})
}

// A checker a reload adds starts as keepalived 2.2.7 sets it up on a reload
// (check_api.c queue_checker, ipwrapper.c migrate_checkers and
// check_new_rs_state): up with all its retries, alpha down only on a new
// real server, the start-up rules only on a failed one.
func TestNewHealthOnReload(t *testing.T) {
	tcp := policy(KindTCP, func(p *Policy) { p.Retry = 2 })
	alpha := policy(KindTCP, func(p *Policy) { p.Retry = 2; p.Alpha = true })
	for _, tt := range []struct {
		name              string
		p                 Policy
		newServer, failed bool
		up                bool
		retries           int
	}{
		{"existing server", tcp, false, false, true, 0},
		{"existing server, alpha", alpha, false, false, true, 0},
		{"failed server", tcp, false, true, true, 2},
		{"failed server, alpha", alpha, false, true, false, 2},
		{"new server", tcp, true, false, true, 0},
		{"new server, alpha", alpha, true, false, false, 0},
		{"file", Defaults(KindFile, 0), true, false, true, 0},
	} {
		h := NewHealthOnReload(tt.p, tt.newServer, tt.failed)
		if h.Up() != tt.up || h.Retries() != tt.retries {
			t.Errorf("%s: up %v retries %d, want %v %d", tt.name, h.Up(), h.Retries(), tt.up, tt.retries)
		}
		// With retries left, one failure of an up checker is retried.
		if tt.up && tt.retries == 0 && tt.p.Kind == KindTCP {
			if _, tr := h.Observe(time.Unix(0, 0), Result{Reason: "refused"}); tr != nil || !h.Up() {
				t.Errorf("%s: the first failure took the checker down", tt.name)
			}
		}
	}
}

// TestHealthNoVerdict: attempts the daemon could not make (no descriptor
// for the socket) neither fail nor count towards the retries: an up
// checker stays up through any number of them, and the next is due after
// delay_loop.
func TestHealthNoVerdict(t *testing.T) {
	h := NewHealth(policy(KindTCP, func(p *Policy) { p.Retry = 0 }))
	now := time.Unix(1000, 0)
	if _, tr := h.Observe(now, Result{OK: true}); tr != nil && !tr.Up {
		t.Fatalf("first success: %+v", tr)
	}
	for range 10 {
		now = now.Add(time.Second)
		next, tr := h.Observe(now, Result{NoVerdict: true, Reason: "connect 10.0.0.2:80: socket: too many open files"})
		if tr != nil {
			t.Fatalf("no verdict changed the checker: %+v", tr)
		}
		if want := now.Add(h.p.DelayLoop); !next.Equal(want) {
			t.Fatalf("next attempt at %v, want delay_loop later (%v)", next, want)
		}
	}
	if _, tr := h.Observe(now, Result{Reason: "connect 10.0.0.2:80: connection refused"}); tr == nil || tr.Up {
		t.Errorf("a real failure after them (retry 0): transition %+v, want down", tr)
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("socket: %w", syscall.EMFILE), true},
		{fmt.Errorf("fork/exec: %w", syscall.EAGAIN), true},
		{syscall.ECONNREFUSED, false},
		{fmt.Errorf("fork/exec: %w", syscall.ENOENT), false},
	} {
		if got := OutOfResources(c.err); got != c.want {
			t.Errorf("OutOfResources(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
