// Package check holds the contract of vigil's real-server health checkers and
// keepalived's hysteresis rules as plain values: when a checker is marked up
// or down, when its next attempt is due, and how a real server's state and
// weight follow from its checkers.
//
// The package is pure: it reads no clock, draws no random number and does no
// I/O. Time and randomness come in as arguments (Health.Start, Health.Observe);
// the probes that touch the network live in internal/check/probe, which also
// holds the Runner that schedules them.
//
// Every rule here is keepalived 2.2.7's, read from keepalived/check/*.c; each
// function cites the file it follows. Where keepalived's checkers disagree with
// each other (they do: TCP_CHECK, HTTP_GET, SMTP_CHECK, DNS_CHECK, UDP_CHECK,
// PING_CHECK and MISC_CHECK each carry their own copy of the retry logic), the
// Kind of the checker selects the variant.
package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Checker is one health check of one real server. Check runs one attempt and
// reports its outcome; it must return when ctx is done, and it applies its own
// connect_timeout / misc_timeout on top of ctx.
//
// Concurrency: the Runner never calls Check of one Checker concurrently with
// itself; implementations may keep state between calls (FILE_CHECK does).
type Checker interface {
	Check(ctx context.Context) Result
}

// Stepper is implemented by checkers whose attempt is one of several steps:
// HTTP_GET and SSL_GET check one url per attempt, in order, as keepalived does
// (check_http.c: epilog() advances url_it one url per delay_loop). Health.Step
// says which step is due.
type Stepper interface {
	Checker
	// Steps is the number of steps (urls), at least 1.
	Steps() int
	// CheckStep runs step i (0-based).
	CheckStep(ctx context.Context, i int) Result
}

// Result is the outcome of one check attempt.
type Result struct {
	// OK reports success.
	OK bool
	// Reason says what happened, for logs and `vigil status`:
	// "connect 10.0.0.2:80: connection refused", "status 404, want 200-299",
	// "digest mismatch: got X want Y", "exit status 0".
	Reason string
	// Weight, when set on a successful result, is the weight the checker asks
	// the real server to take: MISC_CHECK with misc_dynamic exiting 2..255
	// sets exit status − 2 (keepalived 2.2.7 check_misc.c). nil restores the
	// configured weight.
	Weight *int
	// WeightDelta, when set on a successful result, is added to the real
	// server's configured weight: FILE_CHECK's file value × weight
	// (keepalived 2.2.7 track_file.c, process_update_checker_track_file_status).
	WeightDelta *int
	// NoVerdict marks an attempt that could not be made for lack of the
	// daemon's own resources (no descriptor for the socket, no memory, no
	// process for the script: OutOfResources). It says nothing about the
	// server: Health keeps the checker's state and tries again after
	// delay_loop, as keepalived 2.2.7 reschedules a checker whose socket
	// it could not create ("TCP connect fail to create socket.
	// Rescheduling.").
	NoVerdict bool
	// Latency is how long the attempt took. MISC_CHECK schedules its next run
	// from the start of this one (check_misc.c: timer_add_long(last_ran, ...)),
	// so Health uses it to find the start.
	Latency time.Duration
}

// Kind is a keepalived checker type. It selects keepalived's per-checker
// defaults (Defaults) and the variant of the retry logic Health applies.
type Kind uint8

// The checker kinds, by their keepalived.conf keywords.
const (
	KindTCP  Kind = iota + 1 // TCP_CHECK
	KindHTTP                 // HTTP_GET
	KindSSL                  // SSL_GET
	KindSMTP                 // SMTP_CHECK
	KindDNS                  // DNS_CHECK
	KindUDP                  // UDP_CHECK
	KindPing                 // PING_CHECK
	KindMisc                 // MISC_CHECK
	KindFile                 // FILE_CHECK
)

var kindNames = [...]string{
	KindTCP:  "TCP_CHECK",
	KindHTTP: "HTTP_GET",
	KindSSL:  "SSL_GET",
	KindSMTP: "SMTP_CHECK",
	KindDNS:  "DNS_CHECK",
	KindUDP:  "UDP_CHECK",
	KindPing: "PING_CHECK",
	KindMisc: "MISC_CHECK",
	KindFile: "FILE_CHECK",
}

// String returns the keepalived.conf keyword, e.g. "TCP_CHECK".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// ParseKind maps a keepalived.conf keyword (case-sensitive, as keepalived) to
// its Kind.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// Policy holds the timing knobs of one checker, already resolved through
// keepalived's inheritance (checker, then real_server, then virtual_server,
// then the checker kind's default; check_data.c validate_check_config()).
// Defaults gives a Policy with keepalived's defaults for a kind.
type Policy struct {
	Kind Kind
	// DelayLoop is the period of the checks (delay_loop; keepalived's
	// default is 60 s, set on the virtual server).
	DelayLoop time.Duration
	// Retry is how many more failures keepalived tolerates after the first
	// failure of an up checker before marking it down (retry / nb_get_retry):
	// a checker goes down after Retry+1 consecutive failures.
	Retry int
	// DelayBeforeRetry is the wait before a retry (delay_before_retry).
	DelayBeforeRetry time.Duration
	// Warmup bounds the random delay before the first check (warmup;
	// keepalived's default is delay_loop; 0 disables).
	Warmup time.Duration
	// Bootstrap is the fixed delay before the first check on top of the
	// warmup: keepalived 2.2.7 check_api.c register_checkers_thread() uses
	// BOOTSTRAP_DELAY, one second.
	Bootstrap time.Duration
	// Alpha starts the checker down: the real server needs a success before
	// it enters the pool (alpha). Without it the checker starts up.
	Alpha bool
	// Steps is the number of urls of HTTP_GET / SSL_GET (at least 1); other
	// kinds have one step.
	Steps int
	// FastRecovery (HTTP_GET / SSL_GET fast_recovery) checks the remaining
	// urls without waiting delay_loop while a checker recovers.
	FastRecovery bool
}

// keepalived 2.2.7 defaults.
const (
	// DefaultDelayLoop is KEEPALIVED_DEFAULT_DELAY (check_data.h).
	DefaultDelayLoop = 60 * time.Second
	// DefaultConnectTimeout is a virtual server's connect_timeout default
	// (check_data.c alloc_vs: 5 * TIMER_HZ).
	DefaultConnectTimeout = 5 * time.Second
	// BootstrapDelay is scheduler.h BOOTSTRAP_DELAY.
	BootstrapDelay = time.Second
)

// Defaults returns keepalived 2.2.7's defaults for a checker of kind k under
// a virtual server whose delay_loop is delayLoop (0: the 60 s default):
//   - retry 1, but 0 for MISC_CHECK (check_misc.c) and 3 for DNS_CHECK
//     (check_dns.h DNS_DEFAULT_RETRY); check_api.c queue_checker();
//   - delay_before_retry 1 s, but 3 s for HTTP_GET/SSL_GET (check_http.c)
//     and delay_loop for DNS_CHECK (check_dns.c sets the default to 0,
//     which check_data.c resolves to delay_loop);
//   - warmup delay_loop (check_data.c: "checker->warmup = ... :
//     checker->delay_loop");
//   - a one-second bootstrap delay before the first check.
//
// FILE_CHECK has none of these knobs in keepalived (it reacts to inotify);
// vigil polls the file, every second by default.
func Defaults(k Kind, delayLoop time.Duration) Policy {
	if delayLoop <= 0 {
		delayLoop = DefaultDelayLoop
	}
	p := Policy{
		Kind:             k,
		DelayLoop:        delayLoop,
		Retry:            1,
		DelayBeforeRetry: time.Second,
		Warmup:           delayLoop,
		Bootstrap:        BootstrapDelay,
		Steps:            1,
	}
	switch k {
	case KindMisc:
		p.Retry = 0
	case KindDNS:
		p.Retry = 3
		p.DelayBeforeRetry = delayLoop
	case KindHTTP, KindSSL:
		p.DelayBeforeRetry = 3 * time.Second
	case KindFile:
		p = Policy{Kind: k, DelayLoop: time.Second, Steps: 1}
	}
	return p
}

// Validate reports a Policy Health cannot run.
func (p Policy) Validate() error {
	var errs []string
	if p.Kind < KindTCP || p.Kind > KindFile {
		errs = append(errs, fmt.Sprintf("unknown checker kind %d", p.Kind))
	}
	if p.DelayLoop <= 0 {
		errs = append(errs, fmt.Sprintf("delay_loop %v must be positive", p.DelayLoop))
	}
	if p.Retry < 0 {
		errs = append(errs, fmt.Sprintf("retry %d must not be negative", p.Retry))
	}
	if p.DelayBeforeRetry < 0 || p.Warmup < 0 || p.Bootstrap < 0 {
		errs = append(errs, "delays must not be negative")
	}
	if p.Steps < 0 || (p.Steps > 1 && p.Kind != KindHTTP && p.Kind != KindSSL) {
		errs = append(errs, fmt.Sprintf("%d steps: only HTTP_GET and SSL_GET check several urls", p.Steps))
	}
	if len(errs) > 0 {
		return fmt.Errorf("check: policy: %s", strings.Join(errs, "; "))
	}
	return nil
}

// WithErr returns r, the result of an attempt that failed with err,
// without a verdict when err is the daemon's own shortage (OutOfResources).
func (r Result) WithErr(err error) Result {
	r.NoVerdict = OutOfResources(err)
	return r
}

// OutOfResources reports whether err is the daemon's own shortage rather
// than an answer of what it checks: no descriptor left (EMFILE, ENFILE),
// no memory (ENOMEM), no process (EAGAIN from fork).
func OutOfResources(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
