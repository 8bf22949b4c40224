// Package mail sends keepalived's SMTP alerts (global_defs
// notification_email, notification_email_from, smtp_server, smtp_helo_name,
// smtp_connect_timeout; smtp_alert per instance, group and checker) with
// keepalived 2.2.7's subjects, bodies and SMTP dialogue
// (keepalived/core/smtp.c, keepalived/vrrp/vrrp_notify.c).
//
// Alerts are queued and sent by one goroutine: a slow or dead SMTP server
// never delays the caller. The queue is bounded; alerts that find it full
// are dropped and counted.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"os/user"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults.
const (
	// DefaultConnectTimeout is smtp_connect_timeout's default (keepalived
	// DEFAULT_SMTP_CONNECTION_TIMEOUT, 30 s); it bounds the connection and
	// each reply.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultPort is used when smtp_server has no port.
	DefaultPort = "25"
	// DefaultQueueLen is the number of alerts waiting to be sent.
	DefaultQueueLen = 64
	// DefaultMailer is the X-Mailer header keepalived sends; vigil sends the
	// same so that existing mail filters keep working.
	DefaultMailer = "Keepalived"

	maxSubject = 255 // keepalived MAX_HEADERS_LENGTH (256) less the NUL
	maxBody    = 511 // keepalived MAX_BODY_LENGTH (512) less the NUL
)

// Options configures a Mailer.
type Options struct {
	// Server is smtp_server: "host", "host:port" or "[v6addr]:port".
	Server string
	// HeloName is smtp_helo_name; "" means the local host name
	// (keepalived's local_name), or "localhost" when that is unknown.
	HeloName string
	// From is notification_email_from; "" means USER@LOCALNAME as keepalived.
	From string
	// To is notification_email.
	To []string
	// RouterID is global_defs router_id, written in every subject.
	RouterID string
	// ConnectTimeout is smtp_connect_timeout; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// NoEmailFaults is no_email_faults: no alert for a FAULT state.
	NoEmailFaults bool
	// QueueLen bounds the queue; 0 means DefaultQueueLen.
	QueueLen int
	// Mailer is the X-Mailer header; "" means DefaultMailer.
	Mailer string
	// Logger receives delivery failures and drops; nil discards.
	Logger *slog.Logger
	// Now stamps the Date header at enqueue time; nil means time.Now.
	Now func() time.Time
	// Dial connects to the server; nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Message is one alert.
type Message struct {
	Subject string
	Body    string
	// Date is stamped by Send when zero.
	Date time.Time
}

// Stats counts a Mailer's alerts.
type Stats struct {
	Queued  uint64
	Sent    uint64
	Failed  uint64 // delivery attempted and failed
	Dropped uint64 // queue full, or Run not running when it stopped
}

// Mailer queues and sends alerts. Send, Instance, Group and Stats are safe for
// concurrent use and never block; Run owns the sending goroutine.
type Mailer struct {
	o     Options
	log   *slog.Logger
	queue chan Message

	queued, sent, failed, dropped atomic.Uint64
	// done counts the queued alerts handled (sent, failed, or dropped
	// at the end), for Drain.
	done atomic.Uint64

	mu   sync.Mutex
	last map[string]string // last state alerted per instance/group

	localOnce sync.Once
	helo      string
	from      string
}

// New returns a Mailer. It starts nothing.
func New(o Options) *Mailer {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.QueueLen <= 0 {
		o.QueueLen = DefaultQueueLen
	}
	if o.Mailer == "" {
		o.Mailer = DefaultMailer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	if o.Server != "" {
		if _, _, err := net.SplitHostPort(o.Server); err != nil {
			o.Server = net.JoinHostPort(strings.Trim(o.Server, "[]"), DefaultPort)
		}
	}
	m := &Mailer{o: o, log: o.Logger, queue: make(chan Message, o.QueueLen), last: map[string]string{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m
}

// Enabled reports whether alerts can be sent: keepalived sends only when
// notification_email lists someone and smtp_server is set.
func (m *Mailer) Enabled() bool { return len(m.o.To) > 0 && m.o.Server != "" }

// Send queues an alert and reports whether it was queued; it never blocks.
func (m *Mailer) Send(msg Message) bool {
	if !m.Enabled() {
		return false
	}
	if msg.Date.IsZero() {
		msg.Date = m.o.Now()
	}
	select {
	case m.queue <- msg:
		m.queued.Add(1)
		return true
	default:
		if m.dropped.Add(1)%10 == 1 {
			m.log.Warn("smtp alert queue full, dropping alert", "subject", msg.Subject, "dropped", m.dropped.Load())
		}
		return false
	}
}

// Instance sends a vrrp_instance's smtp_alert for its new state ("MASTER",
// "BACKUP", "FAULT", "STOP", "DELETED"), as keepalived's vrrp_smtp_notifier:
// not twice in a row for the same state, and not for FAULT under
// no_email_faults. It reports whether an alert was queued.
func (m *Mailer) Instance(name, state string) bool {
	return m.stateAlert("INSTANCE/"+name, state, func() (Message, bool) { return InstanceMessage(m.o.RouterID, name, state) })
}

// Group is Instance for a vrrp_sync_group (vrrp_sync_smtp_notifier).
func (m *Mailer) Group(name, state string) bool {
	return m.stateAlert("GROUP/"+name, state, func() (Message, bool) { return GroupMessage(m.o.RouterID, name, state) })
}

func (m *Mailer) stateAlert(k, state string, build func() (Message, bool)) bool {
	if !m.Enabled() || m.o.NoEmailFaults && state == "FAULT" {
		return false
	}
	msg, ok := build()
	if !ok {
		return false
	}
	m.mu.Lock()
	if m.last[k] == state {
		m.mu.Unlock()
		return false
	}
	m.last[k] = state
	m.mu.Unlock()
	return m.Send(msg)
}

// RouterID is the router_id the Mailer writes in subjects.
func (m *Mailer) RouterID() string { return m.o.RouterID }

// Stats returns the counters.
func (m *Mailer) Stats() Stats {
	return Stats{Queued: m.queued.Load(), Sent: m.sent.Load(), Failed: m.failed.Load(), Dropped: m.dropped.Load()}
}

// Drain waits until every alert queued so far was delivered, failed or
// dropped, or ctx ends: a stopping daemon gives its "Stopping" alerts a
// moment, as keepalived's VRRP process runs one second past its shutdown
// notifications (vrrp_terminate_phase1, vrrp_shutdown_timer_thread).
func (m *Mailer) Drain(ctx context.Context) error {
	queued := m.queued.Load()
	for m.done.Load() < queued {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Run sends queued alerts one at a time until ctx ends; a delivery in
// progress is abandoned then, and alerts still queued are counted as
// dropped.
func (m *Mailer) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case <-m.queue:
					m.dropped.Add(1)
					m.done.Add(1)
				default:
					return nil
				}
			}
		case msg := <-m.queue:
			if err := m.deliver(ctx, msg); err != nil {
				m.failed.Add(1)
				m.log.Warn("smtp alert not sent", "server", m.o.Server, "subject", msg.Subject, "err", err)
			} else {
				m.sent.Add(1)
			}
			m.done.Add(1)
		}
	}
}

// deliver runs keepalived's SMTP dialogue (smtp.c SMTP_FSM): greeting 220,
// HELO 250, MAIL FROM 250, RCPT TO 250 for each recipient, DATA 354, the
// message 250, QUIT 221. Each step has ConnectTimeout. After an unexpected
// reply, QUIT is sent and the alert counts as failed.
func (m *Mailer) deliver(ctx context.Context, msg Message) (err error) {
	dctx, cancel := context.WithTimeout(ctx, m.o.ConnectTimeout)
	conn, err := m.o.Dial(dctx, "tcp", m.o.Server)
	cancel()
	if err != nil {
		return fmt.Errorf("mail: connect %s: %w", m.o.Server, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tc := textproto.NewConn(conn)

	step := func(name string, want int, format string, args ...any) error {
		if err := conn.SetDeadline(time.Now().Add(m.o.ConnectTimeout)); err != nil {
			return err
		}
		if format != "" {
			if err := tc.PrintfLine(format, args...); err != nil {
				return fmt.Errorf("mail: send %s: %w", name, err)
			}
		}
		if _, _, err := tc.ReadResponse(want); err != nil {
			var perr *textproto.Error
			if errors.As(err, &perr) {
				_ = tc.PrintfLine("QUIT")
				return fmt.Errorf("mail: error processing %s on SMTP server %s, status %d: %s", name, m.o.Server, perr.Code, perr.Msg)
			}
			return fmt.Errorf("mail: %s: %w", name, err)
		}
		return nil
	}
	helo, from := m.identity()
	if err := step("(E)SMTP greeting", 220, ""); err != nil {
		return err
	}
	if err := step("HELO", 250, "HELO %s", helo); err != nil {
		return err
	}
	if err := step("MAIL", 250, "MAIL FROM:<%s>", from); err != nil {
		return err
	}
	for _, to := range m.o.To {
		if err := step("RCPT", 250, "RCPT TO:<%s>", to); err != nil {
			return err
		}
	}
	if err := step("DATA", 354, "DATA"); err != nil {
		return err
	}
	if err := conn.SetDeadline(time.Now().Add(m.o.ConnectTimeout)); err != nil {
		return err
	}
	w := tc.DotWriter()
	if _, err := w.Write(Format(msg, from, m.o.To, m.o.Mailer)); err != nil {
		return fmt.Errorf("mail: send message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: send message: %w", err)
	}
	if err := step("BODY", 250, ""); err != nil {
		return err
	}
	return step("QUIT", 221, "QUIT")
}

// identity is the HELO name and sender, with keepalived's defaults
// (global_data.c init_global_data) worked out once, at the first delivery.
func (m *Mailer) identity() (helo, from string) {
	m.localOnce.Do(func() {
		m.helo, m.from = m.o.HeloName, m.o.From
		if m.helo != "" && m.from != "" {
			return
		}
		local := LocalName()
		if m.helo == "" {
			m.helo = local
			if m.helo == "" {
				m.helo = "localhost" // smtp.c helo_cmd
			}
		}
		if m.from == "" {
			m.from = DefaultFrom(local)
		}
	})
	return m.helo, m.from
}

// Format renders the message as keepalived's SMTP_HEADERS_CMD and
// SMTP_BODY_CMD: Date, From, Subject, X-Mailer and To headers, a blank line,
// the body, and an empty line before the terminating dot (added by the
// caller's dot-writer). The Date is "%a, %d %b %Y %H:%M:%S %z" in the
// message's time zone.
func Format(msg Message, from string, to []string, mailer string) []byte {
	var b strings.Builder
	b.WriteString("Date: " + msg.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700") + "\r\n")
	b.WriteString("From: " + from + "\r\n")
	b.WriteString("Subject: " + msg.Subject + "\r\n")
	b.WriteString("X-Mailer: " + mailer + "\r\n")
	b.WriteString("To: " + strings.Join(to, ", ") + "\r\n")
	b.WriteString("\r\n")
	b.WriteString(msg.Body + "\r\n\r\n")
	return []byte(b.String())
}

// LocalName is keepalived's local_name: the canonical name of the host's
// node name, or the node name when it does not resolve, or "" when unknown.
func LocalName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cname, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil && cname != "" {
		return strings.TrimSuffix(cname, ".")
	}
	return host
}

// DefaultFrom is keepalived's default notification_email_from:
// USER@LOCALNAME for the daemon's user.
func DefaultFrom(localName string) string {
	name := "root"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if localName == "" {
		localName = "localhost"
	}
	return name + "@" + localName
}

// InstanceMessage is the alert for a vrrp_instance entering state
// (vrrp_notify.c vrrp_smtp_notifier): subject "[ROUTER_ID] VRRP Instance
// NAME - Entering MASTER state". ok is false for a state keepalived sends no
// alert for.
func InstanceMessage(routerID, name, state string) (msg Message, ok bool) {
	var what, body string
	switch state {
	case "MASTER":
		what, body = "Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="
	case "BACKUP":
		what, body = "Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case "FAULT":
		what, body = "Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case "STOP":
		what, body = "Stopping", "=> VRRP Instance stopping <="
	case "DELETED":
		what, body = "Deleted", "=> VRRP Deleted at reload <="
	default:
		return Message{}, false
	}
	return message(fmt.Sprintf("[%s] VRRP Instance %s - %s", routerID, name, what), body), true
}

// GroupMessage is the alert for a vrrp_sync_group entering state
// (vrrp_notify.c vrrp_sync_smtp_notifier).
func GroupMessage(routerID, name, state string) (msg Message, ok bool) {
	var what, body string
	switch state {
	case "MASTER":
		what, body = "Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="
	case "BACKUP":
		what, body = "Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="
	case "FAULT":
		what, body = "Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="
	case "STOP":
		what, body = "Stopping", "=> All VRRP group instances are now stopping <="
	default:
		return Message{}, false
	}
	return message(fmt.Sprintf("[%s] VRRP Group %s - %s", routerID, name, what), body), true
}

// RealServerMessage is a checker's alert for a real server (smtp.c
// SMTP_MSG_RS): subject "[ROUTER_ID] Realserver RS of virtual server VS -
// UP|DOWN", body from the checker, e.g. "=> TCP CHECK failed on service <=".
// rs and vs are formatted as notify.FormatService.
func RealServerMessage(routerID, rs, vs string, up bool, body string) Message {
	s := "DOWN"
	if up {
		s = "UP"
	}
	return message(fmt.Sprintf("[%s] Realserver %s of virtual server %s - %s", routerID, rs, vs, s), body)
}

// VirtualServerMessage is a virtual server's alert (SMTP_MSG_VS): subject
// "[ROUTER_ID] Virtualserver VS - WHAT".
func VirtualServerMessage(routerID, vs, what, body string) Message {
	return message(fmt.Sprintf("[%s] Virtualserver %s - %s", routerID, vs, what), body)
}

func message(subject, body string) Message {
	if len(subject) > maxSubject {
		subject = subject[:maxSubject]
	}
	if len(body) > maxBody {
		body = body[:maxBody]
	}
	return Message{Subject: subject, Body: body}
}
