// Package demo replays the keepalived MASTER/BACKUP tutorial (two web
// servers sharing 192.168.1.100) inside network namespaces and narrates it:
// `vigil demo`. It builds the tutorial's LAN with internal/lab, writes the
// tutorial's two keepalived.conf files, runs two `vigil run` daemons and a web
// page on each node, and measures what a client of the VIP sees through a
// power cut, a preemption and a graceful stop.
//
// Nothing is created in the caller's network namespace. The namespaces carry
// lab's names (vg<pid>-demo<n>-<host>), so a demo killed with SIGKILL is
// swept by the next one.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/api"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/status"
)

// Options configure Run.
type Options struct {
	// Binary is the vigil executable the nodes run (os.Executable()).
	Binary string
	// Timing is Tutorial (VRRPv2, advert_int 1) or Fast (VRRPv3, 0.1 s).
	Timing Timing
	// Keep leaves the lab up after the story, until ctx is done.
	Keep bool
	// Out receives the narration.
	Out io.Writer
	// PollInterval is how often the client requests the page (10 ms).
	PollInterval time.Duration
	// RequestTimeout bounds each request of the client (1 s).
	RequestTimeout time.Duration
}

// ErrInterrupted is returned when ctx is cancelled (Ctrl-C) before the story
// ends.
var ErrInterrupted = errors.New("interrupted")

// Preflight reports what prevents the demo from running on this machine.
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces, veth pairs and a bridge (try: sudo vigil demo)")
	}
	for _, c := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("needs the %q command of iproute2 in PATH (apt-get install iproute2): %w", c, err)
		}
	}
	return nil
}

// node is one of the two keepalived hosts at run time.
type node struct {
	Node
	host    *lab.Host
	dir     string
	conf    string
	sock    string
	pidFile string
	proc    *lab.Proc
	web     *webServer
	api     *api.Client
}

// run is one demo. It is used by one goroutine (Run's), apart from the
// narrator, the client and the web servers, which are safe for concurrent
// use.
type run struct {
	o      Options
	n      *Narrator
	lab    *lab.Lab
	dir    string
	nodes  [2]*node
	client *lab.Host
	web    *Client
	sum    Summary

	webWG      sync.WaitGroup
	stopPoll   context.CancelFunc
	pollDone   chan struct{}
	logOffsets map[*lab.Proc]int
	// seenDiag holds the configuration diagnostics already echoed (without
	// their file name), so each node's restarts do not repeat them.
	seenDiag map[string]bool
	margin   time.Duration
}

// Run runs the demo and returns its measurements. It cleans up everything it
// created before returning, also when ctx is cancelled (Ctrl-C) or a step
// fails; the error says which step failed.
func Run(ctx context.Context, o Options) (sum Summary, err error) {
	if o.Timing.AdvertInterval == 0 {
		o.Timing = Tutorial
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Millisecond
	}
	if o.RequestTimeout == 0 {
		// RFC 6298 §2.1: TCP's initial retransmission timeout is 1 s, so a
		// request whose SYN was dropped (nobody held the VIP) fails rather
		// than succeeding late and hiding the gap.
		o.RequestTimeout = time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := Preflight(); err != nil {
		return Summary{Error: err.Error()}, err
	}
	r := &run{
		o:          o,
		n:          NewNarrator(o.Out, time.Now),
		logOffsets: map[*lab.Proc]int{},
		seenDiag:   map[string]bool{},
		// How long after a takeover the client keeps being watched for
		// failures before a phase is summed up.
		margin: min(max(5*o.Timing.AdvertInterval, 500*time.Millisecond), time.Second),
	}
	r.sum.VRRPVersion = o.Timing.Version
	r.sum.AdvertIntervalMS = ms(o.Timing.AdvertInterval)
	r.sum.MasterDownBackupMS = ms(o.Timing.MasterDownInterval(Nodes()[1].Priority))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("demo: panic: %v", p)
		}
		cerr := r.cleanup()
		if err == nil {
			err = cerr
		}
		sum = r.sum
		sum.OK = err == nil
		if err != nil {
			sum.Error = err.Error()
		}
	}()
	err = r.story(ctx)
	return r.sum, err
}

func (r *run) story(ctx context.Context) error {
	t := r.o.Timing
	r.n.Explain("vigil demo: the keepalived MASTER/BACKUP tutorial, replayed in network namespaces.")
	r.n.Explain("Two web servers share one address, 192.168.1.100 (the VIP). Whoever is VRRP MASTER holds it;")
	r.n.Explain("when the master dies, the BACKUP takes the VIP over and the client does not need to know.")
	if t.Version == 3 {
		r.n.Explain("--fast: VRRPv3 with advert_int 0.1 s, so every timer below is ten times shorter than in the tutorial.")
	}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"building the network", r.setup},
		{"step 1 (start both daemons)", r.stepStart},
		{"step 2 (the client fetches the VIP)", r.stepFetch},
		{"step 3 (power cut on node1)", r.stepPowerCut},
		{"step 4 (node1 comes back and preempts)", r.stepPreempt},
		{"step 5 (graceful stop of node1)", r.stepGraceful},
	}
	for _, s := range steps {
		if err := s.f(ctx); err != nil {
			r.echoLogs()
			if ctx.Err() != nil {
				return fmt.Errorf("%w during %s", ErrInterrupted, s.name)
			}
			err = fmt.Errorf("%s failed: %w", s.name, err)
			if r.o.Keep && r.lab != nil {
				// Leave the lab up to look into what went wrong.
				r.stopPolling()
				r.n.Section("FAILED: " + err.Error())
				r.keep(ctx)
			}
			return err
		}
	}
	r.stopPolling()
	r.summary()
	if r.o.Keep {
		r.keep(ctx)
	}
	return nil
}

// setup builds the lab, writes the configuration files and starts the web
// servers.
func (r *run) setup(ctx context.Context) error {
	r.n.Section("The network")
	if removed, err := lab.Sweep(); err != nil {
		r.n.Event("warning: could not remove the namespaces of an earlier interrupted run: %v", err)
	} else if len(removed) > 0 {
		r.n.Event("removed %d namespaces left by an earlier interrupted run: %s", len(removed), strings.Join(removed, " "))
	}
	l, err := lab.New("demo")
	if err != nil {
		return err
	}
	r.lab = l
	r.sum.Namespaces = strings.TrimSuffix(l.SwitchNS(), "sw")
	tmp := os.TempDir()
	if len(tmp) > 40 {
		// The API sockets live below it, and a unix socket's path has at
		// most 107 bytes.
		tmp = "/tmp"
	}
	for _, d := range sweepDirs(tmp) {
		r.n.Event("removed %s, left by an earlier interrupted run", d)
	}
	dir, err := os.MkdirTemp(tmp, fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	r.dir = dir
	for i, nd := range Nodes() {
		h, err := l.AddHost(nd.Name, lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{nd.Addr + "/24"}})
		if err != nil {
			return err
		}
		n := &node{Node: nd, host: h, dir: filepath.Join(dir, nd.Name)}
		n.conf = filepath.Join(n.dir, "keepalived.conf")
		n.sock = filepath.Join(n.dir, "vigil.sock")
		n.pidFile = filepath.Join(n.dir, "vigil.pid")
		n.api = api.NewClient(n.sock)
		r.nodes[i] = n
	}
	c, err := l.AddHost("client", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{ClientAddr + "/24"}})
	if err != nil {
		return err
	}
	r.client = c
	n1, n2 := r.nodes[0], r.nodes[1]
	r.n.Explain(`
    client %s
        |
  ------+----------------- LAN 192.168.1.0/24 ------------------+
        |                                                       |
  node1 %s (eth0)                               node2 %s (eth0)
  vigil: state MASTER, priority %d                     vigil: state BACKUP, priority %d
  web page "Hello from node1"                           web page "Hello from node2"

  VIP %s, on the eth0 of whichever node is MASTER (label eth0:1)

Each box is a Linux network namespace joined to the others by veth cables and a bridge;
nothing is created in this machine's own network. Namespaces: %s{node1,node2,client,sw}`,
		ClientAddr, n1.Addr, n2.Addr, n1.Priority, n2.Priority, VIP+"/24", r.sum.Namespaces)
	if err := r.waitLinks(ctx, 15*time.Second, n1.host, n2.host, c); err != nil {
		return err
	}

	r.n.Section("The configuration files")
	r.n.Explain("The tutorial's /etc/keepalived/keepalived.conf for each node; the second differs only in")
	r.n.Explain("router_id, state and priority. vigil reads keepalived's files unchanged.")
	for _, n := range r.nodes {
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		text := n.Config(r.o.Timing)
		if err := os.WriteFile(n.conf, []byte(text), 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		r.n.Explain("\n--- %s: %s", n.Name, n.conf)
		r.n.Block(text)
	}

	for _, n := range r.nodes {
		w, err := listenWeb(n.host, n.Node)
		if err != nil {
			return err
		}
		n.web = w
		r.webWG.Go(func() { _ = w.Serve() })
	}
	return nil
}

// stepStart starts both daemons and waits for node1 to be MASTER.
func (r *run) stepStart(ctx context.Context) error {
	t := r.o.Timing
	n1, n2 := r.nodes[0], r.nodes[1]
	r.n.Section("Step 1: start keepalived (here: vigil) on both nodes")
	r.n.Explain(`The tutorial runs "/etc/init.d/keepalived start" on both nodes; here each node runs
  vigil run -f keepalived.conf --api-socket vigil.sock -p vigil.pid
inside its namespace. Whatever the file says, an instance below priority 255 starts as
BACKUP (as keepalived does) and becomes MASTER only when it has heard no better router
for Master_Down_Interval = 3 × advert_int + Skew_Time: for node1 %s.`, t.Formula(n1.Priority))
	start := time.Now()
	if err := r.startDaemon(ctx, n1); err != nil {
		return err
	}
	if err := r.waitAPI(ctx, n1); err != nil {
		return err
	}
	if err := r.startDaemon(ctx, n2); err != nil {
		return err
	}
	r.n.Event("waiting for node1 to become MASTER ...")
	at, err := r.waitMaster(ctx, n1, start, r.waitBudget(t.MasterDownInterval(n1.Priority)))
	if err != nil {
		return err
	}
	if err := r.waitState(ctx, n2, "BACKUP", n1.Addr, r.waitBudget(2*t.AdvertInterval)); err != nil {
		return err
	}
	r.sum.StartupMS = ms(at.Sub(start))
	r.echoLogs()
	if len(r.seenDiag) > 0 {
		r.n.Explain(`(vigil reports each configuration warning with file:line:column, and runs.)`)
	}
	r.n.EventAt(at, "node1 is MASTER, %s after it started; node2 is BACKUP and hears node1's adverts", Secs(at.Sub(start)))

	r.n.Explain("\nThe tutorial checks with `ip addr` which node holds the VIP (label eth0:1):")
	owners := 0
	for _, n := range r.nodes {
		out, err := n.host.Run("ip", "addr", "show", "eth0")
		if err != nil {
			return err
		}
		r.n.Event("%s# ip addr show eth0", n.Name)
		r.n.Block(out)
		if holdsVIP(out) {
			owners++
			if n != n1 {
				return fmt.Errorf("the VIP is on %s, not on node1", n.Name)
			}
		}
	}
	if owners != 1 {
		return fmt.Errorf("the VIP is on %d nodes, want exactly node1", owners)
	}
	r.n.Explain("-> eth0:1 (%s) is on node1 only. If it showed on both, the pair would be in split brain.", VIP)
	r.n.Explain("\nvigil also answers on its API socket (keepalived has no equivalent):")
	for _, n := range r.nodes {
		s, err := r.status(ctx, n)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := status.WriteText(&b, s); err != nil {
			return err
		}
		r.n.Event("# vigil status --api-socket %s", n.sock)
		r.n.Block(b.String())
	}
	return nil
}

// stepFetch has the client fetch the page once and starts polling.
func (r *run) stepFetch(ctx context.Context) error {
	r.n.Section("Step 2: the client opens http://" + VIP + "/")
	r.n.Explain(`The client only knows the VIP. It finds the MAC address behind it with ARP, and node1,
which holds the VIP, answers.`)
	r.web = NewClient(r.client.NS(), "http://"+VIP+"/", r.o.RequestTimeout)
	s, body := r.web.Fetch(ctx)
	r.n.EventAt(s.Sent, "client# curl http://%s/", VIP)
	if s.Err != "" {
		return fmt.Errorf("the client could not fetch the VIP: %s", s.Err)
	}
	r.n.Block(body)
	if s.Node != "node1" {
		return fmt.Errorf("the VIP answered with %s's page, want node1's", s.Node)
	}
	if err := r.showNeigh(); err != nil {
		return err
	}
	pollCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopPoll, r.pollDone = stop, make(chan struct{})
	go func() {
		defer close(r.pollDone)
		r.web.Poll(pollCtx, r.o.PollInterval)
	}()
	r.n.Event("from now on the client requests the page every %s (each on a new connection, %s timeout)",
		r.o.PollInterval, r.o.RequestTimeout)
	return nil
}

// stepPowerCut kills node1's daemon with SIGKILL and unplugs its cable, and
// measures node2's takeover.
func (r *run) stepPowerCut(ctx context.Context) error {
	t := r.o.Timing
	n1, n2 := r.nodes[0], r.nodes[1]
	mdi := t.MasterDownInterval(n2.Priority)
	r.n.Section("Step 3: power cut on node1")
	r.n.Explain(`node1 dies without a word: its vigil gets SIGKILL (no chance to say goodbye) and its
network cable is pulled, so its web server vanishes too. (A kill -9 alone would leave the
VIP and the web server of node1 answering: a killed daemon, keepalived's too, leaves the
VIP where it was.) node2 stops hearing node1's adverts and waits Master_Down_Interval
before it takes over: %s.
node2 counts from the last advert it heard, which left node1 up to one advert_int before
the cut, so the takeover should come %s to %s after it.`,
		t.Formula(n2.Priority), Secs(mdi-t.AdvertInterval), Secs(mdi))
	r.echoLogs()
	cut := time.Now()
	if err := n1.proc.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill node1's vigil: %w", err)
	}
	if err := n1.host.SetCable("eth0", false); err != nil {
		return err
	}
	r.n.EventAt(cut, "node1# kill -9 %d   (and node1's cable is pulled)", n1.proc.PID())
	masterAt, err := r.waitMaster(ctx, n2, cut, r.waitBudget(mdi))
	if err != nil {
		return err
	}
	r.echoLogs()
	r.n.EventAt(masterAt, "node2 is MASTER: %s after the power cut", Secs(masterAt.Sub(cut)))
	ph, err := r.measure(ctx, "power_cut", n2, cut, masterAt)
	if err != nil {
		return err
	}
	ph.ExpectedMinMS, ph.ExpectedMS = ms(mdi-t.AdvertInterval), ms(mdi)
	r.sum.Phases = append(r.sum.Phases, ph)
	r.n.Explain(`
Takeover measured: %s from the cut to node2's MASTER (expected %s to %s: %s).
The client was without an answer for %s: %d of its %d requests in that time failed%s.
They fail because nobody answers for the VIP until node2 takes it over and announces it
with gratuitous ARP.`,
		Secs(dur(ph.MasterMS)), Secs(mdi-t.AdvertInterval), Secs(mdi),
		Verdict(dur(ph.MasterMS), mdi-t.AdvertInterval, mdi, 250*time.Millisecond),
		Secs(dur(ph.ClientMS)), ph.FailedRequests, ph.Requests, errorsText(ph.Errors))
	if err := r.showVIP(n2, n2); err != nil {
		return err
	}
	return r.showNeigh()
}

// stepPreempt plugs node1 back in, restarts its daemon and measures the
// preemption.
func (r *run) stepPreempt(ctx context.Context) error {
	t := r.o.Timing
	n1, n2 := r.nodes[0], r.nodes[1]
	mdi := t.MasterDownInterval(n1.Priority)
	r.n.Section("Step 4: node1 comes back and takes the VIP back (preemption)")
	r.n.Explain(`The power is back: node1's cable is plugged in and vigil starts again. The killed daemon
left the VIP on node1's eth0; vigil removes such leftovers when it starts. node1 starts as
BACKUP, hears node2 advertising priority %d, and since its own %d is higher and preemption
is on (keepalived's default), it ignores those adverts; its Master_Down_Timer runs out
(%s) and it takes the VIP back.
The switch takes about a millisecond: node1 sends its first advert as MASTER, adds the VIP
and announces it with gratuitous ARP; node2 drops the VIP when it hears that advert. A
request finds one of them holding the VIP, unless it is caught in that very millisecond.`, n2.Priority, n1.Priority, t.Formula(n1.Priority))
	back := time.Now()
	if err := n1.host.SetCable("eth0", true); err != nil {
		return err
	}
	r.n.EventAt(back, "node1's cable is plugged in again")
	if err := r.waitLinks(ctx, 15*time.Second, n1.host); err != nil {
		return err
	}
	start := time.Now()
	if err := r.startDaemon(ctx, n1); err != nil {
		return err
	}
	masterAt, err := r.waitMaster(ctx, n1, start, r.waitBudget(mdi))
	if err != nil {
		return err
	}
	if err := r.waitState(ctx, n2, "BACKUP", n1.Addr, r.waitBudget(2*t.AdvertInterval)); err != nil {
		return err
	}
	r.echoLogs()
	r.n.EventAt(masterAt, "node1 is MASTER again: %s after its vigil started; node2 went back to BACKUP", Secs(masterAt.Sub(start)))
	ph, err := r.measure(ctx, "preemption", n1, start, masterAt)
	if err != nil {
		return err
	}
	ph.ExpectedMS = ms(mdi)
	r.sum.Phases = append(r.sum.Phases, ph)
	r.n.Explain(`
Preemption measured: %s from node1's start to its MASTER (expected about %s: %s).
The client got node1's page %s after the restart.
%s`,
		Secs(dur(ph.MasterMS)), Secs(mdi), Verdict(dur(ph.MasterMS), mdi, mdi, 250*time.Millisecond),
		Secs(dur(ph.ClientMS)), switchText(ph))
	r.n.Explain("\nThe tutorial's check: the VIP is back on node1, and gone from node2.")
	for _, n := range r.nodes {
		if err := r.showVIP(n, n1); err != nil {
			return err
		}
	}
	return nil
}

// stepGraceful stops node1's daemon with SIGTERM and measures the handover.
func (r *run) stepGraceful(ctx context.Context) error {
	t := r.o.Timing
	n1, n2 := r.nodes[0], r.nodes[1]
	skew := t.SkewTime(n2.Priority)
	r.n.Section("Step 5: graceful stop of node1 (service keepalived stop)")
	r.n.Explain(`The tutorial's "service keepalived stop" sends SIGTERM. keepalived then sends a priority-0
advert and drops the VIP at once; the backup takes over after Skew_Time (%s), and for
that moment nobody holds the VIP. vigil hands over make-before-break instead: it sends the
priority-0 advert but keeps the VIP until it hears node2 advertising as MASTER, and only
then removes it and exits. Expected: node2 MASTER after about %s, and no request unanswered.`,
		Secs(skew), Secs(skew))
	r.echoLogs()
	term := time.Now()
	if err := n1.proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop node1's vigil: %w", err)
	}
	r.n.EventAt(term, "node1# kill -TERM %d", n1.proc.PID())
	masterAt, err := r.waitMaster(ctx, n2, term, r.waitBudget(t.MasterDownInterval(n2.Priority)))
	if err != nil {
		return err
	}
	if !n1.proc.Wait(r.waitBudget(t.MasterDownInterval(1) + t.AdvertInterval)) {
		return errors.New("node1's vigil did not exit after SIGTERM")
	}
	exited := time.Now()
	exitErr := n1.proc.Err()
	code := 0
	var ee *exec.ExitError
	if errors.As(exitErr, &ee) {
		code = ee.ExitCode()
	} else if exitErr != nil {
		return fmt.Errorf("node1's vigil: %w", exitErr)
	}
	r.echoLogs()
	r.n.EventAt(masterAt, "node2 is MASTER: %s after SIGTERM", Secs(masterAt.Sub(term)))
	ph, err := r.measure(ctx, "graceful_stop", n2, term, masterAt)
	if err != nil {
		return err
	}
	r.n.EventAt(exited, "node1's vigil has exited with status %d (seen %s after SIGTERM)", code, Secs(exited.Sub(term)))
	ph.ExpectedMS = ms(skew)
	ph.ExitCode, ph.ExitMS = &code, ms(exited.Sub(term))
	r.sum.Phases = append(r.sum.Phases, ph)
	r.n.Explain(`
Handover measured: node2 MASTER %s after SIGTERM (expected about %s: %s).
The client got node2's page %s after SIGTERM.
%s`,
		Secs(dur(ph.MasterMS)), Secs(skew), Verdict(dur(ph.MasterMS), skew, skew, 250*time.Millisecond),
		Secs(dur(ph.ClientMS)), switchText(ph))
	if code != 0 {
		return fmt.Errorf("node1's vigil exited with status %d after SIGTERM, want 0", code)
	}
	r.n.Explain("\nnode1's vigil removed the VIP before it exited; node2 holds it:")
	for _, n := range r.nodes {
		if err := r.showVIP(n, n2); err != nil {
			return err
		}
	}
	return nil
}

// measure waits until the client has been answered by the new master and
// has settled, and sums up the client's requests since the event.
func (r *run) measure(ctx context.Context, name string, to *node, event, masterAt time.Time) (Phase, error) {
	var first Sample
	err := r.waitFor(ctx, r.waitBudget(r.o.RequestTimeout), "the client to get "+to.Name+"'s page", func() (bool, error) {
		s, ok := FirstAnswer(r.web.Samples(), to.Name, event)
		first = s
		return ok, nil
	})
	if err != nil {
		return Phase{}, err
	}
	r.n.EventAt(first.Done, "the client got %q (%s after the event)", strings.TrimSpace(pageText(to.Node)), Secs(first.Done.Sub(event)))
	end := first.Done
	if masterAt.After(end) {
		end = masterAt
	}
	end = end.Add(r.margin)
	err = r.waitFor(ctx, r.margin+r.o.RequestTimeout+5*time.Second, "the client's requests to finish", func() (bool, error) {
		return time.Now().After(end) && Settled(r.web.Samples(), end), nil
	})
	if err != nil {
		return Phase{}, err
	}
	w := Summarise(r.web.Samples(), event, end)
	var failures []Span
	for _, f := range w.FailedSamples[:min(len(w.FailedSamples), maxFailures)] {
		failures = append(failures, Span{SentMS: ms(f.Sent.Sub(event)), DoneMS: ms(f.Done.Sub(event)), Err: f.Err})
	}
	return Phase{
		Failures:       failures,
		Name:           name,
		NewMaster:      to.Name,
		MasterMS:       ms(masterAt.Sub(event)),
		ClientMS:       ms(first.Done.Sub(event)),
		Requests:       w.Requests,
		FailedRequests: w.Failed,
		CutRequests:    w.Cut,
		Errors:         w.Errors,
	}, nil
}

func (r *run) summary() {
	t := r.o.Timing
	r.n.Section("Summary")
	r.n.Explain("VRRPv%d, advert_int %s; node2's Master_Down_Interval %s.", t.Version, t.AdvertInterval, t.Formula(Nodes()[1].Priority))
	r.n.Explain("%-40s %12s %12s %12s   %s", "", "new MASTER", "expected", "client", "failed")
	names := map[string]string{
		"power_cut":     "power cut (kill -9 + cable) on node1",
		"preemption":    "node1 back, preempts (from its start)",
		"graceful_stop": "graceful stop of node1 (SIGTERM)",
	}
	for _, p := range r.sum.Phases {
		exp := Secs(dur(p.ExpectedMS))
		if p.ExpectedMinMS > 0 {
			exp = fmt.Sprintf("%.2f-%.2f s", p.ExpectedMinMS/1000, p.ExpectedMS/1000)
		}
		failed := fmt.Sprintf("%d/%d", p.FailedRequests, p.Requests)
		if p.CutRequests > 0 {
			failed += fmt.Sprintf(" (%d cut in flight)", p.CutRequests)
		}
		r.n.Explain("%-40s %12s %12s %12s   %s", names[p.Name], Secs(dur(p.MasterMS)), exp, Secs(dur(p.ClientMS)), failed)
	}
	r.n.Explain(`("new MASTER": from the event to the new master's transition; "client": to the first page
the client got from it; "failed": the client's failed requests out of those sent meanwhile.)`)
}

// keep restarts node1's daemon if it is not running and leaves the lab up,
// echoing the daemons' logs, until ctx is done.
func (r *run) keep(ctx context.Context) {
	n1, n2 := r.nodes[0], r.nodes[1]
	r.n.Section("The lab stays up (--keep)")
	if n1.proc != nil && r.daemonAlive(n1) != nil {
		if err := r.startDaemon(ctx, n1); err != nil {
			r.n.Event("cannot start node1's vigil again: %v", err)
		}
	}
	self := r.o.Binary
	ns := r.sum.Namespaces
	var b strings.Builder
	fmt.Fprintf(&b, "Try, as root in another terminal:\n")
	fmt.Fprintf(&b, "  ip netns exec %sclient curl -s http://%s/\n", ns, VIP)
	fmt.Fprintf(&b, "  ip netns exec %snode1 ip addr show eth0\n", ns)
	for _, n := range r.nodes {
		if n.proc != nil {
			fmt.Fprintf(&b, "  %s status --api-socket %s      (%s's vigil, pid %d)\n", self, n.sock, n.Name, n.proc.PID())
		}
	}
	if n1.proc != nil && n2.proc != nil {
		fmt.Fprintf(&b, "  kill -9 %d   or   kill -TERM %d      (stop node1's vigil)\n", n1.proc.PID(), n1.proc.PID())
	}
	fmt.Fprintf(&b, "  ip netns exec %snode2 bash      (a shell on node2)\n", ns)
	fmt.Fprintf(&b, "The configuration files are in %s. The daemons' logs follow.\nPress Ctrl-C to tear the lab down.", r.dir)
	r.n.Explain("%s", b.String())
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			r.echoLogs()
			return
		case <-tick.C:
			r.echoLogs()
		}
	}
}

// startDaemon runs `vigil run` inside the node.
func (r *run) startDaemon(ctx context.Context, n *node) error {
	if n.proc != nil {
		r.echoLogs()
	}
	args := []string{"run", "-f", n.conf, "--api-socket", n.sock, "-p", n.pidFile}
	p, err := n.host.Start(r.o.Binary, args...)
	if err != nil {
		return err
	}
	n.proc = p
	r.n.Event("%s# vigil %s   (pid %d)", n.Name, strings.Join(args, " "), p.PID())
	return nil
}

// waitAPI waits until the node's daemon answers on its socket.
func (r *run) waitAPI(ctx context.Context, n *node) error {
	return r.waitFor(ctx, 20*time.Second, n.Name+"'s vigil to answer on its API socket", func() (bool, error) {
		if err := r.daemonAlive(n); err != nil {
			return false, err
		}
		_, err := r.status(ctx, n)
		return err == nil, nil
	})
}

// waitMaster waits until n is MASTER through a transition at or after
// since, and returns the transition's time.
func (r *run) waitMaster(ctx context.Context, n *node, since time.Time, budget time.Duration) (time.Time, error) {
	var at time.Time
	err := r.waitFor(ctx, budget, n.Name+" to become MASTER", func() (bool, error) {
		if err := r.daemonAlive(n); err != nil {
			return false, err
		}
		s, err := r.status(ctx, n)
		if err != nil {
			return false, nil
		}
		in, ok := instance(s)
		if !ok || in.State != "MASTER" {
			return false, nil
		}
		t, ok := lastTransition(s.Transitions, "MASTER", since)
		if !ok {
			return false, nil
		}
		at = t
		return true, nil
	})
	return at, err
}

// waitState waits until n is in state and, when master is valid, has heard
// that master.
func (r *run) waitState(ctx context.Context, n *node, state, master string, budget time.Duration) error {
	return r.waitFor(ctx, budget, fmt.Sprintf("%s to be %s", n.Name, state), func() (bool, error) {
		if err := r.daemonAlive(n); err != nil {
			return false, err
		}
		s, err := r.status(ctx, n)
		if err != nil {
			return false, nil
		}
		in, ok := instance(s)
		return ok && in.State == state && (master == "" || in.Master == master), nil
	})
}

func (r *run) daemonAlive(n *node) error {
	select {
	case <-n.proc.Done():
		out := strings.TrimSpace(n.proc.Output())
		if len(out) > 2000 {
			out = "..." + out[len(out)-2000:]
		}
		return fmt.Errorf("%s's vigil exited (%v): %s", n.Name, n.proc.Err(), out)
	default:
		return nil
	}
}

func (r *run) status(ctx context.Context, n *node) (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return n.api.Status(ctx)
}

// instance returns the demo's instance from a snapshot.
func instance(s status.Snapshot) (status.Instance, bool) {
	for _, in := range s.Instances {
		if in.Name == Instance {
			return in, true
		}
	}
	return status.Instance{}, false
}

// lastTransition returns the time of the instance's latest transition to
// state at or after since.
func lastTransition(trs []status.Transition, state string, since time.Time) (time.Time, bool) {
	var at time.Time
	ok := false
	for _, tr := range trs {
		if tr.Kind == "instance" && tr.Name == Instance && tr.To == state && !tr.At.Before(since) && tr.At.After(at) {
			at, ok = tr.At, true
		}
	}
	return at, ok
}

// waitBudget is how long to wait for something the timers predict after d:
// generous, because the machine may be busy.
func (r *run) waitBudget(d time.Duration) time.Duration {
	return 3*d + 10*time.Second
}

// waitFor polls cond (and echoes the daemons' logs) until it holds, it
// fails, ctx is done or timeout passes.
func (r *run) waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		r.echoLogs()
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitLinks waits until the hosts' interfaces are up and their bridge ports
// forward (the kernel applies carrier changes with a delay of up to a
// second).
func (r *run) waitLinks(ctx context.Context, timeout time.Duration, hosts ...*lab.Host) error {
	for _, h := range hosts {
		for _, ifc := range h.Ifaces {
			err := r.waitFor(ctx, timeout, h.Name()+"'s "+ifc.Name+" to come up", func() (bool, error) {
				link, _ := exec.Command("ip", "-n", h.NS(), "-o", "link", "show", "dev", ifc.Name).Output()
				port, _ := exec.Command("bridge", "-n", r.lab.SwitchNS(), "link", "show", "dev", ifc.Peer).Output()
				return strings.Contains(string(link), "state UP") && strings.Contains(string(port), "state forwarding"), nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// showVIP runs the tutorial's `ip addr | grep eth0:1` on n, and checks
// that n holds the VIP exactly when n is owner.
func (r *run) showVIP(n, owner *node) error {
	out, err := n.host.Run("ip", "addr", "show", "eth0")
	if err != nil {
		return err
	}
	r.n.Event("%s# ip addr show eth0 | grep eth0:1", n.Name)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "eth0:1") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	if len(lines) == 0 {
		r.n.Block("(nothing)")
	} else {
		r.n.Block(strings.Join(lines, "\n"))
	}
	switch has := holdsVIP(out); {
	case has && n != owner:
		return fmt.Errorf("%s still holds the VIP; %s should be its only holder", n.Name, owner.Name)
	case !has && n == owner:
		return fmt.Errorf("%s does not hold the VIP (eth0:1) although it should", n.Name)
	}
	return nil
}

// showNeigh prints the client's ARP entry for the VIP.
func (r *run) showNeigh() error {
	out, err := r.client.Run("ip", "neigh", "show", VIP)
	if err != nil {
		return err
	}
	r.n.Event("client# ip neigh show %s", VIP)
	r.n.Block(out)
	if mac := neighMAC(out); mac != "" {
		for _, n := range r.nodes {
			if strings.EqualFold(n.host.Iface("eth0").MAC, mac) {
				r.n.Explain("-> the client sends to %s, %s's MAC address.", mac, n.Name)
			}
		}
	}
	return nil
}

var neighRE = regexp.MustCompile(`lladdr ([0-9a-f:]{17})`)

// neighMAC returns the link-layer address of an `ip neigh` line.
func neighMAC(out string) string {
	m := neighRE.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// holdsVIP reports whether `ip addr show` output has the VIP with the
// tutorial's label.
func holdsVIP(out string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "inet" && f[1] == VIP+"/24" && slices.Contains(f, "eth0:1") {
			return true
		}
	}
	return false
}

var logTimeRE = regexp.MustCompile(`^time=(\S+) (?:level=INFO )?`)

// echoLogs prints the daemons' new log lines, stamped with their own times.
func (r *run) echoLogs() {
	for _, n := range r.nodes {
		if n == nil || n.proc == nil {
			continue
		}
		out := n.proc.Output()
		off := r.logOffsets[n.proc]
		end := strings.LastIndexByte(out, '\n') + 1
		if end <= off {
			continue
		}
		r.logOffsets[n.proc] = end
		repeated := 0
		var repeatedAt time.Time
		for _, line := range strings.Split(strings.TrimSuffix(out[off:end], "\n"), "\n") {
			at, text := logLine(line)
			if at.IsZero() {
				at = time.Now()
			}
			if d, ok := configDiag(text); ok {
				if r.seenDiag[d] {
					repeated++
					repeatedAt = at
					continue
				}
				r.seenDiag[d] = true
			}
			if repeated > 0 {
				r.n.EventAt(repeatedAt, "  %s vigil: (%d configuration warnings, as above)", n.Name, repeated)
				repeated = 0
			}
			r.n.EventAt(at, "  %s vigil: %s", n.Name, text)
		}
		if repeated > 0 {
			r.n.EventAt(repeatedAt, "  %s vigil: (%d configuration warnings, as above)", n.Name, repeated)
		}
	}
}

var diagRE = regexp.MustCompile(`^level=WARN msg=configuration diagnostic="[^"]*?:([0-9]+:[0-9]+: .*)"$`)

// configDiag returns a configuration warning of the daemon's log without
// its file name.
func configDiag(text string) (string, bool) {
	m := diagRE.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// logLine splits a slog text line into its time and the rest.
func logLine(line string) (time.Time, string) {
	m := logTimeRE.FindStringSubmatchIndex(line)
	if m == nil {
		return time.Time{}, line
	}
	at, err := time.Parse(time.RFC3339Nano, line[m[2]:m[3]])
	if err != nil {
		return time.Time{}, line
	}
	return at, line[m[1]:]
}

func (r *run) stopPolling() {
	if r.stopPoll != nil {
		r.stopPoll()
		<-r.pollDone
		r.stopPoll = nil
	}
}

// cleanup stops everything the demo started and deletes the lab.
func (r *run) cleanup() error {
	r.stopPolling()
	if r.lab == nil && r.dir == "" {
		return nil
	}
	r.n.Section("Cleaning up")
	var errs []error
	for _, n := range r.nodes {
		if n != nil && n.web != nil {
			errs = append(errs, n.web.Close())
		}
	}
	r.webWG.Wait()
	if r.lab != nil {
		var pids []string
		for _, n := range r.nodes {
			if n != nil && n.proc != nil {
				select {
				case <-n.proc.Done():
				default:
					pids = append(pids, fmt.Sprint(n.proc.PID()))
				}
			}
		}
		r.echoLogs()
		if err := r.lab.Close(); err != nil {
			errs = append(errs, err)
		}
		left, err := leftovers(r.sum.Namespaces)
		if err != nil {
			errs = append(errs, err)
		} else if len(left) > 0 {
			errs = append(errs, fmt.Errorf("demo: namespaces left behind: %s", strings.Join(left, " ")))
		}
		if len(pids) > 0 {
			r.n.Event("killed the daemons still running (pid %s)", strings.Join(pids, ", "))
		}
		r.n.Event("deleted the namespaces %s*", r.sum.Namespaces)
	}
	if r.dir != "" {
		errs = append(errs, os.RemoveAll(r.dir))
		r.n.Event("removed %s", r.dir)
	}
	return errors.Join(errs...)
}

// dirPrefix starts the name of the demo's temporary directory, which
// continues with the demo's PID: vigil-demo-<pid>-<random>.
const dirPrefix = "vigil-demo-"

var dirRE = regexp.MustCompile(`^` + dirPrefix + `([0-9]+)-[0-9]+$`)

// sweepDirs removes the temporary directories of demos that no longer run
// (killed with SIGKILL) and returns their paths.
func sweepDirs(tmp string) []string {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		m := dirRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		var pid int
		fmt.Sscan(m[1], &pid)
		if pid == os.Getpid() || processAlive(pid) {
			continue
		}
		p := filepath.Join(tmp, e.Name())
		if os.RemoveAll(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// leftovers lists the namespaces whose names start with prefix.
func leftovers(prefix string) ([]string, error) {
	if prefix == "" {
		return nil, nil
	}
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var left []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, e.Name())
		}
	}
	return left, nil
}

// dur converts fractional milliseconds back to a duration.
func dur(msec float64) time.Duration { return time.Duration(msec * float64(time.Millisecond)) }

// switchText tells what the client saw while the VIP moved between two
// live nodes.
func switchText(p Phase) string {
	text := fmt.Sprintf("Of the %d requests the client sent meanwhile, %d went unanswered", p.Requests, p.Unanswered())
	if p.Unanswered() == 0 {
		text += " (the VIP was held by one node or the other all along)."
	} else {
		var when []string
		for _, f := range p.Failures {
			if !Cut(f.Err) {
				when = append(when, fmt.Sprintf("+%s", Secs(dur(f.SentMS))))
			}
		}
		text += fmt.Sprintf(" (sent at %s).", strings.Join(when, ", "))
	}
	if p.CutRequests > 0 {
		var when []string
		for _, f := range p.Failures {
			if Cut(f.Err) {
				when = append(when, fmt.Sprintf("sent at +%s, reset at +%s", Secs(dur(f.SentMS)), Secs(dur(f.DoneMS))))
			}
		}
		text += fmt.Sprintf(`
%d were cut in flight (%s): they had opened their connection with the old
master just before the switch, and once the client's ARP entry pointed to the new one, their
next packets reached a host that knew nothing of them. No VRRP daemon can save a TCP
connection whose server moved; a retry in the client does.`, p.CutRequests, strings.Join(when, "; "))
	}
	return text
}

// errorsText is " (31 timeout, ...)" or "".
func errorsText(errs map[string]int) string {
	if len(errs) == 0 {
		return ""
	}
	return " (" + Window{Errors: errs}.ErrorText() + ")"
}
