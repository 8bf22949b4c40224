package probe

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// smtpServer runs a scripted SMTP server: banner, then a reply to each
// command line it receives. It records the commands.
func smtpServer(t *testing.T, banner string, replies map[string]string) (net.Listener, chan []string) {
	t.Helper()
	l := listen(t, "127.0.0.1:0")
	got := make(chan []string, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				var cmds []string
				defer func() { got <- cmds }()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.Write([]byte(banner))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					cmds = append(cmds, line)
					verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
					c.Write([]byte(replies[verb]))
					if verb == "QUIT" {
						return
					}
				}
			}(c)
		}
	}()
	return l, got
}

func TestSMTP(t *testing.T) {
	noLeak(t)
	ok := map[string]string{"HELO": "250 mail.example.com\r\n", "QUIT": "221 bye\r\n"}
	tests := []struct {
		name    string
		banner  string
		replies map[string]string
		helo    string
		wantOK  bool
		reason  string
		cmds    []string
	}{
		{
			name: "conversation", banner: "220 mail.example.com ESMTP\r\n", replies: ok, wantOK: true,
			cmds: []string{"HELO smtpchecker.keepalived.org\r\n", "QUIT\r\n"},
		},
		{
			name: "helo_name", banner: "220 ready\r\n", replies: ok, helo: "lb1.example.com", wantOK: true,
			cmds: []string{"HELO lb1.example.com\r\n", "QUIT\r\n"},
		},
		{name: "bad banner", banner: "554 go away\r\n", replies: ok, reason: "bad greeting banner", cmds: nil},
		// check_smtp.c smtp_get_status wants "220" then a space.
		{name: "multi-line banner fails as in keepalived", banner: "220-first\r\n220 second\r\n", replies: ok, reason: "bad greeting banner"},
		{name: "bad HELO reply", banner: "220 ready\r\n", replies: map[string]string{"HELO": "501 no\r\n"}, reason: "bad HELO response",
			cmds: []string{"HELO smtpchecker.keepalived.org\r\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, got := smtpServer(t, tt.banner, tt.replies)
			r := (&SMTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: 2 * time.Second}, HeloName: tt.helo}).Check(ctxT(t))
			if r.OK != tt.wantOK {
				t.Fatalf("OK %v (%s), want %v", r.OK, r.Reason, tt.wantOK)
			}
			if tt.reason != "" {
				wantReason(t, r.Reason, tt.reason)
			}
			if tt.cmds != nil {
				if diff := cmp.Diff(tt.cmds, <-got); diff != "" {
					t.Errorf("commands (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("silent server times out", func(t *testing.T) {
		l := listen(t, "127.0.0.1:0")
		done := make(chan struct{})
		t.Cleanup(func() { close(done) })
		go func() {
			c, err := l.Accept()
			if err == nil {
				<-done
				c.Close()
			}
		}()
		r := (&SMTP{Conn: Conn{Addr: ap(l.Addr()), Timeout: 200 * time.Millisecond}}).Check(ctxT(t))
		if r.OK {
			t.Fatal("silent server passed")
		}
		wantReason(t, r.Reason, "read banner from")
		wantReason(t, r.Reason, "timeout after 200ms")
	})
}
