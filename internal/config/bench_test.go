package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// largeConfig generates a configuration with instances vrrp_instances and
// servers virtual servers of 10 real servers with a TCP_CHECK each.
func largeConfig(instances, servers int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id bench\n    enable_script_security\n    script_user nobody\n}\n")
	b.WriteString("vrrp_script chk {\n    script \"/usr/local/bin/chk.sh\"\n    interval 2\n    weight -20\n}\n")
	for i := 0; i < instances; i++ {
		// 250 VRIDs per interface keep every (interface, VRID) unique.
		fmt.Fprintf(&b, `vrrp_instance VI_%d {
    state BACKUP
    interface eth%d
    virtual_router_id %d
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass pw%d
    }
    virtual_ipaddress {
        10.%d.%d.1/24 dev eth%d
        10.%d.%d.2/24
    }
    track_script {
        chk
    }
}
`, i, i/250, i%250+1, 100+i%100, i%1000, i/250, i%250, i/250, i/250, i%250)
	}
	for v := 0; v < servers; v++ {
		fmt.Fprintf(&b, "virtual_server 172.16.%d.%d 80 {\n    delay_loop 6\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n", v/250, v%250+1)
		for r := 0; r < 10; r++ {
			fmt.Fprintf(&b, `    real_server 192.168.%d.%d 8080 {
        weight %d
        TCP_CHECK {
            connect_timeout 3
            retry 3
            delay_before_retry 2
        }
    }
`, v%250, r+1, r+1)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func TestLargeConfigIsClean(t *testing.T) {
	src := largeConfig(1000, 1000)
	if out := os.Getenv("VIGIL_LARGE_CONFIG"); out != "" {
		// For measuring `vigil check` on it (peak RSS).
		if err := os.WriteFile(out, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if len(ds) > 0 {
		t.Fatalf("%d diagnostics, first: %v", len(ds), ds[0])
	}
	rs := 0
	for _, vs := range cfg.VirtualServers {
		rs += len(vs.RealServers)
	}
	if len(cfg.Instances) != 1000 || len(cfg.VirtualServers) != 1000 || rs != 10000 {
		t.Fatalf("%d instances, %d virtual servers, %d real servers", len(cfg.Instances), len(cfg.VirtualServers), rs)
	}
}

// BenchmarkLoadLarge loads 1,000 vrrp_instances and 1,000 virtual servers
// of 10 real servers with TCP_CHECKs (104,000 lines, 2.1 MB). Targets: under
// 100 ms and 50 MB per load.
func BenchmarkLoadLarge(b *testing.B) {
	src := largeConfig(1000, 1000)
	fsys := fstest.MapFS{"k.conf": {Data: []byte(src)}}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ds := Load(fsys, "k.conf", Options{}); len(ds) > 0 {
			b.Fatal(ds[0])
		}
	}
}
