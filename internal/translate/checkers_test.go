package translate

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
)

const checkersConf = `track_file rs_file {
    file /run/vigil-test-rs
    weight 10
}
virtual_server 10.0.0.1 80 {
    delay_loop 10
    lb_algo rr
    lb_kind NAT
    protocol TCP
    virtualhost www.vs.example
    real_server 10.0.0.2 80 {
        TCP_CHECK {
            connect_port 8080
            connect_timeout 2.5
            retry 2
        }
        HTTP_GET {
            url {
                path /health
                status_code 200-299 404
            }
            url {
                path /index.html
                digest 9B3A0C85A887A256D6939DA88AABD8CD
            }
        }
        SMTP_CHECK {
            helo_name mail.example.com
        }
        DNS_CHECK {
            type aaaa
            name example.org
        }
        UDP_CHECK {
            payload 0102
        }
        PING_CHECK {
        }
        MISC_CHECK {
            misc_path "/bin/true arg"
            misc_dynamic
        }
        FILE_CHECK {
            track_file rs_file
        }
    }
}
`

// Each checker block becomes its probe with the configuration's options,
// keepalived's retry policy and a name that tells checkers of the same type
// apart.
func TestCheckerSpecs(t *testing.T) {
	_, spec := loadLVS(t, checkersConf)
	if len(spec.Checks) != 1 {
		t.Fatalf("checks: %+v", spec.Checks)
	}
	var names, types []string
	for _, c := range spec.Checks[0].Checkers {
		names = append(names, c.Name)
		types = append(types, fmt.Sprintf("%T", c.Checker))
	}
	wantTypes := []string{"*probe.TCP", "*probe.HTTP", "*probe.SMTP", "*probe.DNS", "*probe.UDP", "*probe.Ping", "*probe.Misc", "*probe.File"}
	if !reflect.DeepEqual(types, wantTypes) {
		t.Fatalf("checker types %v, want %v", types, wantTypes)
	}
	if names[0] != "TCP_CHECK#1 10.0.0.2:80" || names[1] != "HTTP_GET#2 10.0.0.2:80" {
		t.Errorf("names %v", names)
	}
	cs := spec.Checks[0].Checkers
	tcp := cs[0]
	if c := tcp.Checker.(*probe.TCP); c.Conn.ConnectPort != 8080 || c.Conn.Timeout != 2500*time.Millisecond || c.Conn.Addr != netip.MustParseAddrPort("10.0.0.2:80") {
		t.Errorf("TCP_CHECK %+v", c.Conn)
	}
	if tcp.Policy.Retry != 2 || tcp.Policy.DelayLoop != 10*time.Second || tcp.Policy.Kind != check.KindTCP {
		t.Errorf("TCP_CHECK policy %+v", tcp.Policy)
	}
	h := cs[1].Checker.(*probe.HTTP)
	if h.VirtualHost != "www.vs.example" || len(h.URLs) != 2 || cs[1].Policy.Steps != 2 ||
		!reflect.DeepEqual(h.URLs[0].Status, []probe.StatusRange{{Min: 200, Max: 299}, {Min: 404, Max: 404}}) ||
		h.URLs[1].Digest != "9b3a0c85a887a256d6939da88aabd8cd" {
		t.Errorf("HTTP_GET %+v (steps %d)", h, cs[1].Policy.Steps)
	}
	if s := cs[2].Checker.(*probe.SMTP); s.HeloName != "mail.example.com" {
		t.Errorf("SMTP_CHECK %+v", s)
	}
	if d := cs[3].Checker.(*probe.DNS); d.Name != "example.org" || d.Type != 28 {
		t.Errorf("DNS_CHECK %+v", d)
	}
	if u := cs[4].Checker.(*probe.UDP); !reflect.DeepEqual(u.Payload, []byte{1, 2}) {
		t.Errorf("UDP_CHECK %+v", u)
	}
	if m := cs[6].Checker.(*probe.Misc); !reflect.DeepEqual(m.Argv, []string{"/bin/true", "arg"}) || !m.Dynamic {
		t.Errorf("MISC_CHECK %+v", m)
	}
	if f := cs[7].Checker.(*probe.File); f.Path != "/run/vigil-test-rs" {
		t.Errorf("FILE_CHECK %+v", f)
	}
	keys := map[string]bool{}
	for _, c := range cs {
		keys[c.Key] = true
	}
	if len(keys) != len(cs) {
		t.Errorf("%d checkers share %d keys", len(cs), len(keys))
	}
}

// A changed checker option changes the checker's key (a reload restarts
// that checker), a moved line does not.
func TestCheckerKeys(t *testing.T) {
	_, a := loadLVS(t, checkersConf)
	_, moved := loadLVS(t, "\n\n"+checkersConf)
	_, changed := loadLVS(t, replaceOnce(t, checkersConf, "helo_name mail.example.com", "helo_name other.example.com"))
	if !reflect.DeepEqual(a.CheckerKeys(), moved.CheckerKeys()) {
		t.Error("keys differ after lines moved")
	}
	ka, kc := a.CheckerKeys(), changed.CheckerKeys()
	var differ []int
	for i := range ka {
		if ka[i] != kc[i] {
			differ = append(differ, i)
		}
	}
	if !reflect.DeepEqual(differ, []int{2}) {
		t.Errorf("keys that changed: %v, want only SMTP_CHECK's (2)", differ)
	}
	// Timing is not what a checker checks: keepalived keeps the state of a
	// checker whose retry or delay_loop changed (migrate_checkers), and so
	// does the key; connect_timeout is part of the connection it compares.
	_, timing := loadLVS(t, replaceOnce(t, replaceOnce(t, checkersConf, "retry 2", "retry 4\n            delay_before_retry 7"), "delay_loop 10", "delay_loop 4"))
	if !reflect.DeepEqual(a.CheckerKeys(), timing.CheckerKeys()) {
		t.Error("keys differ after retry, delay_before_retry and delay_loop changed")
	}
	if reflect.DeepEqual(a.Checks[0].Checkers[0].Policy, timing.Checks[0].Checkers[0].Policy) {
		t.Error("the new timing did not reach the checker's policy")
	}
	_, conn := loadLVS(t, replaceOnce(t, checkersConf, "connect_timeout 2.5", "connect_timeout 3"))
	if reflect.DeepEqual(a.CheckerKeys()[0], conn.CheckerKeys()[0]) {
		t.Error("TCP_CHECK's key unchanged after connect_timeout changed")
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	out := strings.Replace(s, old, new, 1)
	if out == s {
		t.Fatalf("%q not found", old)
	}
	return out
}
