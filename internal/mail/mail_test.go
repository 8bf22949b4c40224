package mail

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeSMTP is an SMTP server on loopback that records what clients send.
type fakeSMTP struct {
	ln       net.Listener
	rcptCode string // reply to RCPT, "250" unless set
	silent   bool   // accept and never answer

	mu    sync.Mutex
	lines [][]string // one transcript per connection
	conns []net.Conn
	wg    sync.WaitGroup
}

func newFakeSMTP(t *testing.T, configure func(*fakeSMTP)) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, rcptCode: "250"}
	if configure != nil {
		configure(f)
	}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fakeSMTP) addr() string { return f.ln.Addr().String() }

func (f *fakeSMTP) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		idx := len(f.lines)
		f.lines = append(f.lines, nil)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.handle(c, idx)
	}
}

func (f *fakeSMTP) handle(c net.Conn, idx int) {
	defer f.wg.Done()
	defer c.Close()
	if f.silent {
		_, _ = bufio.NewReader(c).ReadString(0) // until the client gives up
		return
	}
	w := func(s string) { _, _ = c.Write([]byte(s + "\r\n")) }
	rec := func(s string) {
		f.mu.Lock()
		f.lines[idx] = append(f.lines[idx], s)
		f.mu.Unlock()
	}
	r := bufio.NewReader(c)
	w("220 fake.example ESMTP")
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\r\n")
		rec(line)
		switch {
		case inData && line == ".":
			inData = false
			w("250 2.0.0 queued")
		case inData:
		case strings.HasPrefix(line, "HELO "):
			w("250-fake.example hello")
			w("250 PIPELINING")
		case strings.HasPrefix(line, "MAIL FROM:"):
			w("250 ok")
		case strings.HasPrefix(line, "RCPT TO:"):
			w(f.rcptCode + " rcpt")
		case line == "DATA":
			inData = true
			w("354 go ahead")
		case line == "QUIT":
			w("221 bye")
			return
		default:
			w("500 what?")
		}
	}
}

func (f *fakeSMTP) transcripts() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.lines))
	for i, l := range f.lines {
		out[i] = append([]string(nil), l...)
	}
	return out
}

func runMailer(t *testing.T, m *Mailer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func waitStats(t *testing.T, m *Mailer, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := m.Stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out; stats %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var fixedNow = time.Date(2021, 3, 1, 9, 44, 8, 0, time.FixedZone("", 0))

// TestDialogue checks the exact SMTP dialogue and message of an instance
// alert against keepalived 2.2.7 smtp.c.
func TestDialogue(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	m := New(Options{
		Server: srv.addr(), HeloName: "lb1.example", From: "keepalived@lb1.example",
		To: []string{"ops@example.com", "oncall@example.com"}, RouterID: "LVS_DEVEL",
		Now: func() time.Time { return fixedNow },
	})
	stop := runMailer(t, m)
	defer stop()
	if !m.Instance("VI_1", "MASTER") {
		t.Fatal("alert not queued")
	}
	waitStats(t, m, func(s Stats) bool { return s.Sent == 1 })
	want := []string{
		"HELO lb1.example",
		"MAIL FROM:<keepalived@lb1.example>",
		"RCPT TO:<ops@example.com>",
		"RCPT TO:<oncall@example.com>",
		"DATA",
		"Date: Mon, 01 Mar 2021 09:44:08 +0000",
		"From: keepalived@lb1.example",
		"Subject: [LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state",
		"X-Mailer: Keepalived",
		"To: ops@example.com, oncall@example.com",
		"",
		"=> VRRP Instance is now owning VRRP VIPs <=",
		"",
		".",
		"QUIT",
	}
	if diff := cmp.Diff([][]string{want}, srv.transcripts()); diff != "" {
		t.Errorf("SMTP dialogue (-want +got):\n%s", diff)
	}
}

// TestStateAlerts: no alert twice for the same state (last_email_state), and
// none for FAULT under no_email_faults.
func TestStateAlerts(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	m := New(Options{Server: srv.addr(), HeloName: "h", From: "f@h", To: []string{"a@b"}, RouterID: "r", NoEmailFaults: true})
	stop := runMailer(t, m)
	defer stop()
	got := []bool{
		m.Instance("VI_1", "MASTER"),
		m.Instance("VI_1", "MASTER"),
		m.Instance("VI_1", "FAULT"),
		m.Instance("VI_1", "BACKUP"),
		m.Instance("VI_2", "BACKUP"),
		m.Group("G", "BACKUP"),
		m.Instance("VI_1", "UNKNOWN-STATE"),
	}
	if diff := cmp.Diff([]bool{true, false, false, true, true, true, false}, got); diff != "" {
		t.Errorf("queued (-want +got):\n%s", diff)
	}
	waitStats(t, m, func(s Stats) bool { return s.Sent == 4 })
	var subjects []string
	for _, tr := range srv.transcripts() {
		for _, l := range tr {
			if strings.HasPrefix(l, "Subject: ") {
				subjects = append(subjects, strings.TrimPrefix(l, "Subject: "))
			}
		}
	}
	want := []string{
		"[r] VRRP Instance VI_1 - Entering MASTER state",
		"[r] VRRP Instance VI_1 - Entering BACKUP state",
		"[r] VRRP Instance VI_2 - Entering BACKUP state",
		"[r] VRRP Group G - Entering BACKUP state",
	}
	if diff := cmp.Diff(want, subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}
}

// TestDeadServer: a server that accepts and never answers does not delay
// Send; deliveries time out, the queue bound drops the excess, counted.
func TestDeadServer(t *testing.T) {
	srv := newFakeSMTP(t, func(f *fakeSMTP) { f.silent = true })
	m := New(Options{Server: srv.addr(), HeloName: "h", From: "f@h", To: []string{"a@b"}, RouterID: "r",
		ConnectTimeout: 200 * time.Millisecond, QueueLen: 2})
	stop := runMailer(t, m)
	defer stop()
	start := time.Now()
	queued := 0
	for i := 0; i < 10; i++ {
		if m.Send(Message{Subject: "s", Body: "b"}) {
			queued++
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("10 Sends to a dead server took %v", el)
	}
	s := waitStats(t, m, func(s Stats) bool { return s.Failed == uint64(queued) })
	if s.Sent != 0 || s.Dropped+s.Queued != 10 || s.Dropped == 0 {
		t.Errorf("stats %+v; want all queued ones failed and the rest dropped", s)
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := New(Options{Server: addr, To: []string{"a@b"}, ConnectTimeout: time.Second})
	stop := runMailer(t, m)
	defer stop()
	m.Send(Message{Subject: "s"})
	waitStats(t, m, func(s Stats) bool { return s.Failed == 1 })
}

// TestRecipientRejected: an unexpected reply ends the dialogue with QUIT.
func TestRecipientRejected(t *testing.T) {
	srv := newFakeSMTP(t, func(f *fakeSMTP) { f.rcptCode = "550" })
	m := New(Options{Server: srv.addr(), HeloName: "h", From: "f@h", To: []string{"a@b"}, RouterID: "r"})
	stop := runMailer(t, m)
	defer stop()
	m.Send(Message{Subject: "s", Body: "b"})
	waitStats(t, m, func(s Stats) bool { return s.Failed == 1 })
	want := [][]string{{"HELO h", "MAIL FROM:<f@h>", "RCPT TO:<a@b>", "QUIT"}}
	if diff := cmp.Diff(want, srv.transcripts()); diff != "" {
		t.Errorf("dialogue (-want +got):\n%s", diff)
	}
}

// TestDotStuffing: a body line starting with "." is doubled on the wire
// (keepalived does not do this; vigil follows RFC 5321 §4.5.2).
func TestDotStuffing(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	m := New(Options{Server: srv.addr(), HeloName: "h", From: "f@h", To: []string{"a@b"}})
	stop := runMailer(t, m)
	defer stop()
	m.Send(Message{Subject: "s", Body: ".hidden"})
	waitStats(t, m, func(s Stats) bool { return s.Sent == 1 })
	tr := srv.transcripts()[0]
	found := false
	for _, l := range tr {
		if l == "..hidden" {
			found = true
		}
	}
	if !found {
		t.Errorf("body line not dot-stuffed: %q", tr)
	}
}

func TestDisabled(t *testing.T) {
	for _, o := range []Options{{Server: "127.0.0.1"}, {To: []string{"a@b"}}} {
		m := New(o)
		if m.Enabled() || m.Send(Message{Subject: "x"}) || m.Instance("VI_1", "MASTER") {
			t.Errorf("Mailer with %+v sends", o)
		}
	}
	if m := New(Options{Server: "smtp.example", To: []string{"a@b"}}); m.o.Server != "smtp.example:25" {
		t.Errorf("server without port: %q, want port 25", m.o.Server)
	}
	if m := New(Options{Server: "[2001:db8::1]:587", To: []string{"a@b"}}); m.o.Server != "[2001:db8::1]:587" {
		t.Errorf("IPv6 server: %q", m.o.Server)
	}
}

func TestMessages(t *testing.T) {
	type ok struct {
		Msg Message
		OK  bool
	}
	mk := func(m Message, b bool) ok { return ok{m, b} }
	tests := []struct {
		name string
		got  ok
		want ok
	}{
		{"instance backup", mk(InstanceMessage("r", "VI_1", "BACKUP")), ok{Message{Subject: "[r] VRRP Instance VI_1 - Entering BACKUP state", Body: "=> VRRP Instance is no longer owning VRRP VIPs <="}, true}},
		{"instance fault", mk(InstanceMessage("r", "VI_1", "FAULT")), ok{Message{Subject: "[r] VRRP Instance VI_1 - Entering FAULT state", Body: "=> VRRP Instance is no longer owning VRRP VIPs <="}, true}},
		{"instance stop", mk(InstanceMessage("r", "VI_1", "STOP")), ok{Message{Subject: "[r] VRRP Instance VI_1 - Stopping", Body: "=> VRRP Instance stopping <="}, true}},
		{"instance deleted", mk(InstanceMessage("r", "VI_1", "DELETED")), ok{Message{Subject: "[r] VRRP Instance VI_1 - Deleted", Body: "=> VRRP Deleted at reload <="}, true}},
		{"instance other", mk(InstanceMessage("r", "VI_1", "INIT")), ok{}},
		{"group master", mk(GroupMessage("r", "G", "MASTER")), ok{Message{Subject: "[r] VRRP Group G - Entering MASTER state", Body: "=> All VRRP group instances are now in MASTER state <="}, true}},
		{"group fault", mk(GroupMessage("r", "G", "FAULT")), ok{Message{Subject: "[r] VRRP Group G - Entering FAULT state", Body: "=> All VRRP group instances are now in FAULT state <="}, true}},
		{"group stop", mk(GroupMessage("r", "G", "STOP")), ok{Message{Subject: "[r] VRRP Group G - Stopping", Body: "=> All VRRP group instances are now stopping <="}, true}},
		{"group deleted", mk(GroupMessage("r", "G", "DELETED")), ok{}},
		{"real server", mk(RealServerMessage("r", "[10.0.0.2]:tcp:80", "[10.0.0.1]:tcp:80", false, "=> TCP CHECK failed on service <="), true),
			ok{Message{Subject: "[r] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN", Body: "=> TCP CHECK failed on service <="}, true}},
		{"virtual server", mk(VirtualServerMessage("r", "[10.0.0.1]:tcp:80", "QUORUM LOST", "=> quorum lost <="), true),
			ok{Message{Subject: "[r] Virtualserver [10.0.0.1]:tcp:80 - QUORUM LOST", Body: "=> quorum lost <="}, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	long := RealServerMessage(strings.Repeat("r", 300), "rs", "vs", true, strings.Repeat("b", 600))
	if len(long.Subject) != 255 || len(long.Body) != 511 {
		t.Errorf("truncation: subject %d body %d bytes, want 255 and 511", len(long.Subject), len(long.Body))
	}
}

// TestDefaultIdentity: without smtp_helo_name and notification_email_from,
// keepalived's defaults are used: the local name, and USER@LOCALNAME.
func TestDefaultIdentity(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	m := New(Options{Server: srv.addr(), To: []string{"a@b"}})
	stop := runMailer(t, m)
	defer stop()
	m.Send(Message{Subject: "s"})
	waitStats(t, m, func(s Stats) bool { return s.Sent == 1 })
	local := LocalName()
	helo := local
	if helo == "" {
		helo = "localhost"
	}
	tr := srv.transcripts()[0]
	want := []string{"HELO " + helo, "MAIL FROM:<" + DefaultFrom(local) + ">"}
	if diff := cmp.Diff(want, tr[:2]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.Contains(tr[1], "@") {
		t.Errorf("sender %q has no domain", tr[1])
	}
}

// TestDrain: Drain returns once what was queued is handled (a stopping
// daemon's "Stopping" alerts), and at its context's end when the server
// does not answer.
func TestDrain(t *testing.T) {
	srv := newFakeSMTP(t, nil)
	m := New(Options{Server: srv.addr(), HeloName: "h", From: "f@h", To: []string{"a@b"}, RouterID: "r"})
	stop := runMailer(t, m)
	defer stop()
	if !m.Instance("VI_1", "STOP") || !m.Group("G", "STOP") {
		t.Fatal("stop alerts not queued")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.Sent != 2 {
		t.Fatalf("after Drain: %+v, want 2 sent", s)
	}
	var subjects []string
	for _, tr := range srv.transcripts() {
		for _, l := range tr {
			if strings.HasPrefix(l, "Subject: ") {
				subjects = append(subjects, strings.TrimPrefix(l, "Subject: "))
			}
		}
	}
	if diff := cmp.Diff([]string{"[r] VRRP Instance VI_1 - Stopping", "[r] VRRP Group G - Stopping"}, subjects); diff != "" {
		t.Errorf("subjects (-want +got):\n%s", diff)
	}

	// A server that never answers: Drain ends with its context.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dead := New(Options{Server: l.Addr().String(), HeloName: "h", From: "f@h", To: []string{"a@b"}, RouterID: "r", ConnectTimeout: time.Minute})
	stopDead := runMailer(t, dead)
	defer stopDead()
	dead.Instance("VI_1", "STOP")
	short, cancelShort := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancelShort()
	if err := dead.Drain(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain with a silent server: %v, want the deadline", err)
	}
}
