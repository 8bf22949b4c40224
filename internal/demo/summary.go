package demo

import (
	"time"
)

// Summary is the machine-readable result of a demo run (vigil demo --json).
type Summary struct {
	OK                 bool    `json:"ok"`
	Error              string  `json:"error,omitempty"`
	VRRPVersion        int     `json:"vrrp_version"`
	AdvertIntervalMS   float64 `json:"advert_interval_ms"`
	MasterDownBackupMS float64 `json:"master_down_interval_ms"` // of node2 (priority 99)
	// Namespaces is the prefix of the lab's namespace names.
	Namespaces string `json:"namespaces"`
	// StartupMS is how long node1 took from its start to MASTER.
	StartupMS float64 `json:"startup_ms"`
	Phases    []Phase `json:"phases"`
}

// Phase is one measured change of master: the power cut, the preemption,
// the graceful stop.
type Phase struct {
	Name      string `json:"name"` // power_cut, preemption, graceful_stop
	NewMaster string `json:"new_master"`
	// ExpectedMS is what VRRP's timers predict from the event to the new
	// master; ExpectedMinMS is the lower end when the event may fall
	// anywhere within an advert interval.
	ExpectedMinMS float64 `json:"expected_min_ms,omitempty"`
	ExpectedMS    float64 `json:"expected_ms"`
	// MasterMS is from the event to the new master's transition to MASTER
	// (as its status reports it).
	MasterMS float64 `json:"master_ms"`
	// ClientMS is from the event to the end of the first request the new
	// master answered.
	ClientMS float64 `json:"client_ms"`
	// Requests and FailedRequests count the client's requests sent from the
	// event until the takeover settled.
	Requests       int `json:"requests"`
	FailedRequests int `json:"failed_requests"`
	// CutRequests are the failed requests that were cut in flight (their
	// connection was reset when the VIP moved); the others went unanswered.
	CutRequests int `json:"cut_requests"`
	// Failures tells when failed requests were sent and failed, from the
	// event (the first maxFailures).
	Failures []Span         `json:"failures,omitempty"`
	Errors   map[string]int `json:"errors,omitempty"`
	// ExitCode is the stopped daemon's exit status (graceful_stop only).
	ExitCode *int `json:"exit_code,omitempty"`
	// ExitMS is from SIGTERM to the daemon's exit (graceful_stop only).
	ExitMS float64 `json:"exit_ms,omitempty"`
}

// Span is when a request was sent and when it ended, in milliseconds from
// a phase's event.
type Span struct {
	SentMS float64 `json:"sent_ms"`
	DoneMS float64 `json:"done_ms"`
	Err    string  `json:"error"`
}

// maxFailures bounds Phase.Failures.
const maxFailures = 20

// ms converts a duration to fractional milliseconds for JSON.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Verdict compares a measured takeover with what the timers predict: within
// [lo, hi] plus slack for a busy machine is "as expected".
func Verdict(measured, lo, hi, slack time.Duration) string {
	switch {
	case measured < lo-slack:
		return "sooner than the timers predict"
	case measured <= hi+slack:
		return "as the timers predict"
	default:
		return "later than the timers predict (a busy machine delays timers and processes)"
	}
}

// Unanswered is the number of failed requests that got no answer at all:
// the client found nobody holding the VIP.
func (p Phase) Unanswered() int { return p.FailedRequests - p.CutRequests }
