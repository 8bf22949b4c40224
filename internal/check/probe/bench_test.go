package probe

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// The scale benchmark: 10,000 real servers on loopback, each with one
// TCP_CHECK (or HTTP_GET) at delay_loop 1 s. It runs inside a lab namespace
// (so the 10,000 connections a second and their TIME_WAIT sockets stay
// there) as two processes re-executed from this test binary: one serving
// the 10,000 ports (127.0.0.x × many ports), one running the Runner. The
// Runner process measures its own CPU (getrusage), RSS and how late each
// attempt starts against its schedule, and prints them as JSON.
//
//	go test -run '^$' -bench Runner10k -benchtime 1x ./internal/check/probe
//
// VIGIL_BENCH_N (10000) and VIGIL_BENCH_SECONDS (20, measured after 5 s of
// warm-up) change the size and length; VIGIL_BENCH_PROFILE=file writes a
// CPU profile of the checker process, VIGIL_BENCH_EXECTRACE=file one second
// of its execution trace (go tool trace), VIGIL_BENCH_TRACE=file lists the
// attempts late or slow by more than 50 ms, VIGIL_BENCH_OUT=file keeps the
// checker's output, VIGIL_BENCH_NSTAT=file the namespace's TCP counters,
// VIGIL_BENCH_POLLERS=n sets Options.Pollers.
// Targets (issue 19): TCP_CHECK within 1.2× of its floor's CPU; HTTP_GET
// under 60% of one core with p99 lateness under 20 ms; 200 MB RSS.
// Besides %cpu the benchmark reports µs of CPU per check, which compares
// the Runner with the floor when a loaded machine holds either below
// 10,000 checks a second.
//
// Lateness is how much later than due an attempt starts, split into the
// wait for the timetable (timer, dispatcher) and the wait from there to
// the start (a free worker, a poller's turn). It leaves out the server's
// response time, except where a bounded pool of workers makes the
// attempts due wait for those stuck on a slow server; completion
// lateness (start lateness plus the attempt's duration) includes it. The
// server is a process of this binary sharing the machine: its CPU is
// reported too, and when the machine is loaded it, not the checker, is
// often what falls behind.
//
// The tcp-floor and http-floor sub-benchmarks are the reference: the same
// connections (and GETs) made by a bare loop of blocking system calls, no
// Runner.
// On loopback the kernel runs both ends of each handshake in the caller's
// system time, so this floor is what any TCP_CHECK implementation pays
// here; vigil's own cost is the difference.

const (
	benchRole  = "VIGIL_BENCH_ROLE"
	benchBody  = "hello from a real server\n"
	benchPort0 = 20000
	benchPerIP = 200
)

type benchReport struct {
	Kind       string
	Servers    int
	Seconds    float64
	Checks     int
	Failures   int
	FirstFail  string
	CPUPercent float64 // of one core, user+system
	UserPct    float64
	SysPct     float64
	// CPUPerCheck and UserPerCheck are the CPU time of one check, µs:
	// on a loaded machine the floor's loop may fall behind 10,000 a
	// second, and its %cpu then compares fewer connections.
	CPUPerCheck, UserPerCheck float64
	RSSMB                     float64
	HWMMB                     float64
	P50, P99                  float64 // lateness, ms
	Max                       float64
	DurP99                    float64 // attempt duration, ms
	// The lateness p99 split in two: from due to taken from the
	// timetable (timer and dispatcher), and from there to started (wait
	// for a free worker). DoneP99 is how late attempts complete:
	// lateness plus duration, which includes the server's own delay.
	DispP99, WaitP99, DoneP99 float64
	// Load is the 1-minute load average at the end of the run.
	Load string
	// ServerPct is the CPU the benchmark's server process spent in the
	// same time (% of one core), which competes with the checker.
	ServerPct  float64
	Stats      Stats
	Goroutines int
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// benchAddr is the i'th real server: 127.0.0.(1+i/200) port 20000+i%200.
func benchAddr(i int) netip.AddrPort {
	ip := netip.AddrFrom4([4]byte{127, 0, byte(1 + i/benchPerIP/250), byte(1 + i/benchPerIP%250)})
	return netip.AddrPortFrom(ip, uint16(benchPort0+i%benchPerIP))
}

func BenchmarkRunner10k(b *testing.B) {
	for _, kind := range []string{"tcp-floor", "tcp", "http-floor", "http"} {
		b.Run(kind, func(b *testing.B) {
			n := benchEnvInt("VIGIL_BENCH_N", 10000)
			secs := benchEnvInt("VIGIL_BENCH_SECONDS", 20)
			l := netnstest.New(b, "bench")
			h := netnstest.AddHost(b, l, "h")
			self, err := os.Executable()
			if err != nil {
				b.Fatal(err)
			}
			env := []string{benchRole + "=server", "VIGIL_BENCH_KIND=" + kind, "VIGIL_BENCH_N=" + strconv.Itoa(n), "VIGIL_BENCH_POLLERS=" + os.Getenv("VIGIL_BENCH_POLLERS")}
			srv, err := h.Start("env", append(env, self, "-test.run=^TestBenchChild$", "-test.v")...)
			if err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(srv.Output(), "BENCH READY") {
				select {
				case <-srv.Done():
					b.Fatalf("server child exited: %s", srv.Output())
				default:
				}
				if time.Now().After(deadline) {
					b.Fatalf("server child not ready: %s", srv.Output())
				}
				time.Sleep(100 * time.Millisecond)
			}
			env[0] = benchRole + "=checker"
			env = append(env, "VIGIL_BENCH_SECONDS="+strconv.Itoa(secs), "VIGIL_BENCH_SERVER_PID="+strconv.Itoa(srv.Cmd.Process.Pid))
			// Not h.Run: its 30 s limit is too short for the run on a
			// loaded machine.
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+240)*time.Second)
			outb, err := h.Command(ctx, "env", append(env, self, "-test.run=^TestBenchChild$", "-test.v", "-test.timeout=10m")...).CombinedOutput()
			cancel()
			out := string(outb)
			if p := os.Getenv("VIGIL_BENCH_OUT"); p != "" {
				os.WriteFile(p, []byte(out), 0o644)
			}
			if err != nil {
				b.Fatalf("checker child: %v\n%s", err, out)
			}
			if p := os.Getenv("VIGIL_BENCH_NSTAT"); p != "" {
				st, _ := h.Run("nstat", "-az")
				os.WriteFile(p, []byte(st), 0o644)
			}
			i := strings.Index(out, "BENCH ")
			if i < 0 {
				b.Fatalf("no report from the checker child:\n%s", out)
			}
			line, _, _ := strings.Cut(out[i+len("BENCH "):], "\n")
			var rep benchReport
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				b.Fatalf("report %q: %v", line, err)
			}
			if rep.Checks > 0 {
				rep.CPUPerCheck = rep.CPUPercent / 100 * rep.Seconds / float64(rep.Checks) * 1e6
				rep.UserPerCheck = rep.UserPct / 100 * rep.Seconds / float64(rep.Checks) * 1e6
			}
			b.Logf("%s: %d real servers, delay_loop 1s, %d checks in %.0fs (%d failed%s): CPU %.1f%% of one core (user %.1f%%, system %.1f%%), %.1f µs CPU a check (user %.1f µs), RSS %.0f MB (peak %.0f MB), lateness p50 %.2f ms p99 %.2f ms max %.1f ms (p99 due→dispatched %.2f ms, dispatched→started %.2f ms), attempt p99 %.2f ms, completion lateness p99 %.2f ms, peak %d attempts in flight, %d goroutines, load %s, server CPU %.1f%%",
				rep.Kind, rep.Servers, rep.Checks, rep.Seconds, rep.Failures, firstFail(rep.FirstFail), rep.CPUPercent, rep.UserPct, rep.SysPct, rep.CPUPerCheck, rep.UserPerCheck, rep.RSSMB, rep.HWMMB, rep.P50, rep.P99, rep.Max, rep.DispP99, rep.WaitP99, rep.DurP99, rep.DoneP99, rep.Stats.PeakInFlight, rep.Goroutines, rep.Load, rep.ServerPct)
			b.ReportMetric(rep.CPUPercent, "%cpu")
			b.ReportMetric(rep.CPUPerCheck, "µs-cpu/check")
			b.ReportMetric(rep.HWMMB, "MB-rss")
			b.ReportMetric(rep.P99, "ms-p99-late")
			b.ReportMetric(float64(rep.Checks)/rep.Seconds, "checks/s")
			b.ReportMetric(0, "ns/op")
			if rep.Failures > 0 {
				b.Errorf("%d checks failed, first: %s", rep.Failures, rep.FirstFail)
			}
		})
	}
}

func firstFail(s string) string {
	if s == "" {
		return ""
	}
	return "; first: " + s
}

// TestBenchChild is the two halves of BenchmarkRunner10k; it does nothing
// unless the benchmark runs it.
func TestBenchChild(t *testing.T) {
	role := os.Getenv(benchRole)
	if role == "" {
		t.Skip("run by BenchmarkRunner10k")
	}
	raiseNoFile(t)
	n := benchEnvInt("VIGIL_BENCH_N", 10000)
	kind := os.Getenv("VIGIL_BENCH_KIND")
	switch role {
	case "server":
		benchServe(t, n, kind)
	case "checker":
		benchCheck(t, n, kind, benchEnvInt("VIGIL_BENCH_SECONDS", 20))
	}
}

func raiseNoFile(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
}

func benchServe(t *testing.T, n int, kind string) {
	resp := []byte(fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(benchBody), benchBody))
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", benchAddr(i).String())
		if err != nil {
			t.Fatalf("listener %d: %v", i, err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				if !strings.HasPrefix(kind, "http") {
					c.Close()
					continue
				}
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					br := bufio.NewReaderSize(c, 512)
					for {
						line, err := br.ReadSlice('\n')
						if err != nil || len(line) == 2 {
							break
						}
					}
					c.Write(resp)
				}()
			}
		}()
	}
	fmt.Println("BENCH READY")
	select {} // killed by the lab
}

// benchFloor makes n connections a second with bare blocking system calls,
// spread in 10 ms rounds, and reports their CPU cost. With get, each
// connection also sends a GET and reads the response to the end.
func benchFloor(t *testing.T, n, secs int, get bool) {
	buf := make([]byte, 4096)
	ru0, t0 := rusage(t), time.Now()
	end := t0.Add(time.Duration(secs) * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	count, i := 0, 0
	for time.Now().Before(end) {
		<-tick.C
		for k := 0; k < n/100; k++ {
			a := benchAddr(i % n)
			i++
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := syscall.Connect(fd, &syscall.SockaddrInet4{Addr: a.Addr().As4(), Port: int(a.Port())}); err != nil {
				t.Fatal(err)
			}
			if get {
				if _, err := syscall.Write(fd, []byte("GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: "+a.String()+"\r\n\r\n")); err != nil {
					t.Fatal(err)
				}
				h := md5.New()
				for {
					r, err := syscall.Read(fd, buf)
					if err != nil {
						t.Fatal(err)
					}
					if r == 0 {
						break
					}
					h.Write(buf[:r])
				}
			}
			syscall.Close(fd)
			count++
		}
	}
	ru1, t1 := rusage(t), time.Now()
	wall := t1.Sub(t0).Seconds()
	rep := benchReport{
		Kind: map[bool]string{false: "tcp-floor", true: "http-floor"}[get], Servers: n, Seconds: wall, Checks: count,
		CPUPercent: (tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)) / wall * 100,
		UserPct:    (tv(ru1.Utime) - tv(ru0.Utime)) / wall * 100, SysPct: (tv(ru1.Stime) - tv(ru0.Stime)) / wall * 100,
	}
	rep.RSSMB, rep.HWMMB = memStatus(t)
	b, _ := json.Marshal(rep)
	fmt.Printf("BENCH %s\n", b)
}

var traceFile *os.File

func benchCheck(t *testing.T, n int, kind string, secs int) {
	if p := os.Getenv("VIGIL_BENCH_TRACE"); p != "" {
		traceFile, _ = os.Create(p)
	}
	tracing := traceFile != nil
	if strings.HasSuffix(kind, "-floor") {
		benchFloor(t, n, secs, kind == "http-floor")
		return
	}
	sum := md5.Sum([]byte(benchBody))
	digest := hex.EncodeToString(sum[:])
	servers := make([]RealServer, n)
	for i := range servers {
		a := benchAddr(i)
		var c check.Checker
		k := check.KindTCP
		if kind == "http" {
			k = check.KindHTTP
			c = &HTTP{Conn: Conn{Addr: a}, URLs: []URL{{Path: "/", Digest: digest}}}
		} else {
			c = &TCP{Conn: Conn{Addr: a}}
		}
		servers[i] = RealServer{ID: a.String(), Weight: 1, Checkers: []Checker{{
			Name: k.String(), Check: c, Policy: check.Defaults(k, time.Second),
		}}}
	}
	var (
		measuring atomic.Bool
		mu        sync.Mutex
		late      = make([]float64, 0, n*(secs+1))
		dur       = make([]float64, 0, n*(secs+1))
		disp      = make([]float64, 0, n*(secs+1))
		wait      = make([]float64, 0, n*(secs+1))
		doneLate  = make([]float64, 0, n*(secs+1))
		failures  int
		first     string
	)
	r, err := NewRunner(Options{Servers: servers, Pollers: benchEnvInt("VIGIL_BENCH_POLLERS", 0), OnCheck: func(d CheckDone) {
		if !measuring.Load() {
			return
		}
		mu.Lock()
		late = append(late, float64(d.Started.Sub(d.Scheduled))/float64(time.Millisecond))
		if tracing && (d.Started.Sub(d.Scheduled) > 50*time.Millisecond || d.Result.Latency > 50*time.Millisecond) {
			fmt.Fprintf(traceFile, "slow %s sched %s late %v took %v\n", d.Server, d.Scheduled.Format("05.000"), d.Started.Sub(d.Scheduled), d.Result.Latency)
		}
		dur = append(dur, float64(d.Result.Latency)/float64(time.Millisecond))
		disp = append(disp, float64(d.Dispatched.Sub(d.Scheduled))/float64(time.Millisecond))
		wait = append(wait, float64(d.Started.Sub(d.Dispatched))/float64(time.Millisecond))
		doneLate = append(doneLate, float64(d.Started.Add(d.Result.Latency).Sub(d.Scheduled))/float64(time.Millisecond))
		if !d.Result.OK {
			failures++
			if first == "" {
				first = d.Result.Reason
			}
		}
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	// keepalived's start: a 1 s bootstrap plus warmup up to delay_loop;
	// then let the schedule settle.
	time.Sleep(5 * time.Second)
	srvPid := benchEnvInt("VIGIL_BENCH_SERVER_PID", 0)
	srv0 := procCPU(srvPid)
	ru0, t0 := rusage(t), time.Now()
	measuring.Store(true)
	if p := os.Getenv("VIGIL_BENCH_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if p := os.Getenv("VIGIL_BENCH_EXECTRACE"); p != "" {
		// One second of execution trace, from the middle of the run.
		go func() {
			f, err := os.Create(p)
			if err != nil {
				return
			}
			defer f.Close()
			time.Sleep(time.Duration(secs) * time.Second / 2)
			if trace.Start(f) == nil {
				time.Sleep(time.Second)
				trace.Stop()
			}
		}()
	}
	time.Sleep(time.Duration(secs) * time.Second)
	measuring.Store(false)
	ru1, t1 := rusage(t), time.Now()
	srv1 := procCPU(srvPid)
	rss, hwm := memStatus(t)
	goroutines := runtime.NumGoroutine()
	stats := r.Stats()
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(late)
	pct := func(p float64) float64 {
		if len(late) == 0 {
			return 0
		}
		return late[min(len(late)-1, int(p*float64(len(late))))]
	}
	wall := t1.Sub(t0).Seconds()
	cpu := (tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)) / wall * 100
	rep := benchReport{
		Kind: kind, Servers: n, Seconds: wall, Checks: len(late), Failures: failures, FirstFail: first,
		CPUPercent: cpu, UserPct: (tv(ru1.Utime) - tv(ru0.Utime)) / wall * 100, SysPct: (tv(ru1.Stime) - tv(ru0.Stime)) / wall * 100,
		RSSMB: rss, HWMMB: hwm, P50: pct(0.50), P99: pct(0.99), Goroutines: goroutines,
	}
	if len(late) > 0 {
		rep.Max = late[len(late)-1]
	}
	rep.DurP99, rep.DispP99, rep.WaitP99, rep.DoneP99 = p99(dur), p99(disp), p99(wait), p99(doneLate)
	rep.ServerPct = (srv1 - srv0) / wall * 100
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.Load, _, _ = strings.Cut(string(b), " ")
	}
	rep.Stats = stats
	b, _ := json.Marshal(rep)
	fmt.Printf("BENCH %s\n", b)
}

// p99 sorts v and returns its 99th percentile (0 when empty).
func p99(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[min(len(v)-1, int(0.99*float64(len(v))))]
}

// procCPU returns the user+system CPU seconds of process pid (0 if it
// cannot be read).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis; utime and stime
	// are the 14th and 15th of the line, in clock ticks (100 a second).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}

func rusage(t *testing.T) syscall.Rusage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru
}

func tv(v syscall.Timeval) float64 { return float64(v.Sec) + float64(v.Usec)/1e6 }

// memStatus returns VmRSS and VmHWM in MB.
func memStatus(t *testing.T) (rss, hwm float64) {
	b, err := os.ReadFile(filepath.Join("/proc", "self", "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
