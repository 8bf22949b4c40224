package config

import (
	"strings"
	"testing"
	"testing/fstest"
)

// keepalived 2.2.7 drops a BFD_CHECK naming no bfd_instance defined above
// it ("BFD_CHECK - BFD bfd1 not configured", check_bfd.c
// bfd_name_handler()) and runs the rest; -t exits 5, not 4.
func TestBFDCheckUnknownInstance(t *testing.T) {
	const src = `virtual_server 192.168.200.100 80 {
    lb_kind NAT
    protocol TCP
    real_server 192.168.201.102 80 {
        BFD_CHECK {
            name bfd1
        }
        TCP_CHECK {
        }
    }
}
`
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() {
		t.Fatalf("refused: %v", ds)
	}
	found := false
	for _, d := range ds {
		found = found || (d.Pos.Line == 5 && strings.Contains(d.Msg, "BFD_CHECK: no bfd_instance named bfd1 above this line; the checker is ignored, as keepalived does"))
	}
	if !found {
		t.Errorf("no warning at the BFD_CHECK:\n%v", ds)
	}
	if cks := cfg.VirtualServers[0].RealServers[0].Checkers; len(cks) != 1 || cks[0].Type != TCPCheck {
		t.Errorf("checkers %+v, want the TCP_CHECK alone", cks)
	}
}

// keepalived 2.2.7 reads "::ffff:192.168.200.21" as an IPv6 address, and an
// IPv4 instance drops it ("(VI_1): address family must match VRRP instance
// [::ffff:192.168.200.21] - ignoring"); vigil used to add 192.168.200.21.
func TestMappedVIPIgnored(t *testing.T) {
	const src = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.200.16/24
        ::ffff:192.168.200.21
    }
}
`
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() || len(ds) != 1 || ds[0].Pos.Line != 6 || !strings.Contains(ds[0].Msg, "IPv4-mapped IPv6 address") {
		t.Errorf("diagnostics:\n%v\nwant one warning at line 6", ds)
	}
	if vips := cfg.Instances[0].VirtualIPs; len(vips) != 1 || vips[0].Prefix.String() != "192.168.200.16/24" {
		t.Errorf("VIPs %v, want 192.168.200.16/24 alone", vips)
	}
}

// keepalived 2.2.7 -t accepts "virtual_server fwmark 0" (exit 5: it
// defaults the protocol to UDP and makes the port-0 service persistent), a
// service no traffic reaches; vigil ignores the block with a warning
// instead of refusing the file.
func TestFWMarkZeroIgnored(t *testing.T) {
	const src = `virtual_server fwmark 0 {
    lb_kind NAT
    real_server 10.1.1.1 80 {
        TCP_CHECK {
        }
    }
}
virtual_server fwmark 7 {
    lb_kind NAT
    real_server 10.1.1.1 80 {
        TCP_CHECK {
        }
    }
}
`
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() {
		t.Fatalf("refused: %v", ds)
	}
	found := false
	for _, d := range ds {
		found = found || (d.Pos.Line == 1 && d.Pos.Col == 23 && strings.Contains(d.Msg, "the virtual_server is ignored"))
	}
	if !found {
		t.Errorf("no warning at the mark:\n%v", ds)
	}
	if len(cfg.VirtualServers) != 1 || cfg.VirtualServers[0].FWMark != 7 {
		t.Errorf("virtual servers %+v, want fwmark 7 alone", cfg.VirtualServers)
	}
}

// A regex PCRE2 takes and RE2 does not (a lookahead), and a regex line with
// two patterns: keepalived 2.2.7 runs both files (the second: "regex
// missing or too many fields", no regex); vigil warns and checks the url
// without the regex instead of refusing the file.
func TestRegexVigilCannotRun(t *testing.T) {
	const src = `virtual_server 10.0.0.1 80 {
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 80 {
        HTTP_GET {
            url {
                path /a
                regex "ok(?=!)"
            }
            url {
                path /b
                regex ok fine
            }
        }
    }
}
`
	cfg, ds := Load(fstest.MapFS{"k.conf": {Data: []byte(src)}}, "k.conf", Options{})
	if ds.HasErrors() {
		t.Fatalf("refused: %v", ds)
	}
	lines := map[int]string{}
	for _, d := range ds {
		lines[d.Pos.Line] = d.Msg
	}
	if !strings.Contains(lines[8], "vigil checks this url without the regex") || !strings.Contains(lines[12], "want one (quoted) pattern; ignored") {
		t.Errorf("diagnostics:\n%v", ds)
	}
	for _, u := range cfg.VirtualServers[0].RealServers[0].Checkers[0].HTTP.URLs {
		if u.Regex != "" {
			t.Errorf("url %s kept regex %q", u.Path, u.Regex)
		}
	}
}
