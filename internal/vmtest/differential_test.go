package vmtest

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/e2e"
	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

// diffConf covers what keepalived programs into IPVS besides the seed: every
// scheduler with its flags, NAT / DR / TUN, weights (0 included),
// persistence with granularity, UDP with one-packet scheduling, a firewall
// mark service, IPv6, a virtual_server_group and the default scheduler.
const diffConf = `global_defs {
	router_id DIFF
}
virtual_server_group WEB {
	10.1.1.1-3 80
	fwmark 9
}
virtual_server group WEB {
	lb_algo wrr
	lb_kind NAT
	protocol TCP
	real_server 10.2.1.1 8080 {
		weight 2
	}
}
virtual_server 10.1.0.1 80 {
	lb_algo rr
	lb_kind NAT
	protocol TCP
	real_server 10.2.0.1 8080 {
		weight 1
	}
	real_server 10.2.0.2 8081 {
		weight 3
	}
}
virtual_server 10.1.0.2 80 {
	lb_algo wlc
	lb_kind DR
	protocol TCP
	persistence_timeout 300
	persistence_granularity 255.255.255.0
	real_server 10.2.0.3 80 {
		weight 2
	}
	real_server 10.2.0.4 80 {
		weight 0
	}
}
virtual_server 10.1.0.3 53 {
	lb_algo lc
	lb_kind TUN
	protocol UDP
	ops
	real_server 10.2.0.5 53 {
		weight 1
	}
}
virtual_server 10.1.0.4 443 {
	lb_algo sh
	sh-port
	sh-fallback
	lb_kind NAT
	protocol TCP
	real_server 10.2.0.6 443 {
		weight 1
	}
	real_server 10.2.0.7 443 {
		weight 4
	}
}
virtual_server 10.1.0.5 80 {
	lb_algo mh
	mh-port
	lb_kind DR
	protocol TCP
	real_server 10.2.0.8 80 {
		weight 1
	}
}
virtual_server 10.1.0.6 80 {
	lb_kind NAT
	protocol TCP
	persistence_timeout 60
	real_server 10.2.0.9 80 {
		weight 7
	}
}
virtual_server fwmark 7 {
	lb_algo sed
	lb_kind DR
	real_server 10.2.0.10 0 {
		weight 1
	}
}
virtual_server 2001:db8::1 80 {
	lb_algo nq
	lb_kind NAT
	protocol TCP
	real_server 2001:db8::2 8080 {
		weight 5
	}
}
virtual_server 10.1.0.7 80 {
	lb_algo dh
	lb_kind DR
	protocol TCP
	real_server 10.2.0.11 80 {
		weight 1
	}
}
virtual_server 10.1.0.8 80 {
	lb_algo lblc
	lb_kind NAT
	protocol TCP
	real_server 10.2.0.12 80 {
		weight 1
	}
}
virtual_server 10.1.0.9 80 {
	lb_algo lblcr
	lb_kind TUN
	protocol TCP
	real_server 10.2.0.13 80 {
		weight 1
	}
}
virtual_server 10.1.0.10 80 {
	lb_algo fo
	lb_kind NAT
	protocol TCP
	real_server 10.2.0.14 80 {
		weight 1
	}
	real_server 10.2.0.15 80 {
		weight 9
	}
}
virtual_server 10.1.0.11 80 {
	lb_algo ovf
	lb_kind NAT
	protocol TCP
	real_server 10.2.0.16 80 {
		weight 1
	}
}
`

// ipvsTable is `ipvsadm -Ln` with the per-namespace order removed: the
// header line dropped, each service's destinations sorted, services sorted
// (the kernel's hash order differs between namespaces), connection counters
// blanked.
func ipvsTable(out string) string {
	var blocks [][]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0, strings.HasPrefix(line, "IP Virtual Server"), strings.HasPrefix(line, "Prot "), strings.HasPrefix(line, "  -> RemoteAddress"):
		case strings.HasPrefix(line, "  -> "):
			if len(blocks) > 0 && len(f) >= 4 {
				b := &blocks[len(blocks)-1]
				*b = append(*b, strings.Join(f[:4], " "))
			}
		default:
			blocks = append(blocks, []string{strings.Join(f, " ")})
		}
	}
	var lines []string
	for _, b := range blocks {
		slices.Sort(b[1:])
		lines = append(lines, strings.Join(b, "\n  "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestKernelDifferential: keepalived 2.2.7 (its checker process) and vigil
// each program IPVS from the same configuration, in two namespaces; `ipvsadm
// -Ln` must show the same services, schedulers, flags, persistence,
// methods and weights.
func TestKernelDifferential(t *testing.T) {
	netnstest.IPVS(t)
	t.Parallel()
	kaBin := netnstest.RequireCommand(t, "keepalived")
	netnstest.RequireCommand(t, "ipvsadm")
	seed := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "config", "testdata", "seeds", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	l := netnstest.New(t, "ipvsdiff")
	// The seed's real servers answer its TCP_CHECKs, in both namespaces.
	rs := []string{"192.168.118.129/24", "192.168.118.130/24", "192.168.118.131/24"}
	ka := netnstest.AddHost(t, l, "ka", lab.Iface{Name: "eth0", LAN: "a", Addrs: rs})
	vg := netnstest.AddHost(t, l, "vg", lab.Iface{Name: "eth0", LAN: "b", Addrs: rs})
	for _, h := range []*lab.Host{ka, vg} {
		listen(t, h, ":80")
	}

	for _, tc := range []struct{ name, conf string }{
		{"seed 002 master", seed("002_lvs_dr.conf")},
		{"seed 002 backup", seed("002_lvs_dr_backup.conf")},
		{"schedulers, methods, weights", diffConf},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kdir, vdir := t.TempDir(), t.TempDir()
			for _, d := range []string{kdir, vdir} {
				if err := os.WriteFile(filepath.Join(d, "keepalived.conf"), []byte(tc.conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			kp, err := ka.Start("env", append([]string{"TMPDIR=" + kdir, kaBin}, e2e.KeepalivedArgs("-C", "-f", filepath.Join(kdir, "keepalived.conf"),
				"-p", filepath.Join(kdir, "main.pid"), "-c", filepath.Join(kdir, "checkers.pid"), "-r", filepath.Join(kdir, "vrrp.pid"))...)...)
			if err != nil {
				t.Fatal(err)
			}
			vp, err := vg.Start(netnstest.VigilBinary(t), "run", "-C", "-f", filepath.Join(vdir, "keepalived.conf"),
				"--api-socket", filepath.Join(vdir, "vigil.sock"), "-p", filepath.Join(vdir, "main.pid"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				kp.Kill()
				vp.Kill()
				for _, h := range []*lab.Host{ka, vg} {
					if _, err := h.Run("ipvsadm", "-C"); err != nil {
						t.Error(err)
					}
				}
				if t.Failed() {
					t.Logf("keepalived:\n%s\nvigil:\n%s", kp.Output(), vp.Output())
				}
			}()
			// Both tables equal, not empty, on two reads a second apart.
			var kt, vt string
			same := 0
			deadline := time.Now().Add(60 * time.Second)
			for same < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("ipvsadm -Ln differs\nkeepalived:\n%s\nvigil:\n%s", kt, vt)
				}
				time.Sleep(time.Second)
				ko, err1 := ka.Run("ipvsadm", "-L", "-n")
				vo, err2 := vg.Run("ipvsadm", "-L", "-n")
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				kt, vt = ipvsTable(ko), ipvsTable(vo)
				if kt != "" && kt == vt && strings.Contains(kt, "->") {
					same++
				} else {
					same = 0
				}
			}
			t.Logf("keepalived and vigil, ipvsadm -Ln:\n%s", kt)
		})
	}
}

// listen accepts and closes TCP connections on addr in h (a real server for
// TCP_CHECK).
func listen(t *testing.T, h *lab.Host, addr string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
}
