package nft

import (
	"flag"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/lab"
	"github.com/vigil-ha/vigil/internal/lb"
	"github.com/vigil-ha/vigil/internal/netnstest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// goldenState covers every shape of service the table has.
func goldenState() lb.State {
	s := lb.NewState()
	add := func(k lb.ServiceKey, svc lb.Service, ds ...any) {
		s.Services[k] = svc
		for i := 0; i < len(ds); i += 2 {
			s.Dests[lb.DestKey{Service: k, Addr: netip.MustParseAddrPort(ds[i].(string))}] = lb.Dest{Weight: uint32(ds[i+1].(int)), Method: lb.NAT}
		}
	}
	vip := netip.MustParseAddr("192.168.118.110")
	add(lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: vip, Port: 80}, lb.Service{Scheduler: "rr", Netmask: 0xffffffff},
		"10.0.0.2:8080", 1, "10.0.0.3:8080", 1)
	add(lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: vip, Port: 443}, lb.Service{Scheduler: "wlc", Timeout: 300, Netmask: 0xffffff00},
		"10.0.0.2:443", 3, "10.0.0.3:443", 1, "10.0.0.4:443", 0)
	add(lb.ServiceKey{Family: lb.IPv4, Proto: lb.UDP, Addr: vip, Port: 53}, lb.Service{Scheduler: "sh", Flags: lb.FlagSHPort, Netmask: 0xffffffff},
		"10.0.0.2:53", 1, "10.0.0.3:53", 1)
	add(lb.ServiceKey{Family: lb.IPv4, Proto: lb.TCP, Addr: vip, Port: 0}, lb.Service{Scheduler: "rr", Timeout: 360, Netmask: 0xffffffff},
		"10.0.0.2:0", 1)
	add(lb.ServiceKey{Family: lb.IPv4, FWMark: 5}, lb.Service{Scheduler: "dh", Netmask: 0xffffffff},
		"10.0.0.2:8080", 1)
	add(lb.ServiceKey{Family: lb.IPv4, Proto: lb.SCTP, Addr: vip, Port: 9}, lb.Service{Scheduler: "fo", Netmask: 0xffffffff},
		"10.0.0.2:9", 0)
	add(lb.ServiceKey{Family: lb.IPv6, Proto: lb.TCP, Addr: netip.MustParseAddr("fd01::110"), Port: 80}, lb.Service{Scheduler: "wrr", Timeout: 60, Netmask: 64},
		"[fd00::2]:8080", 2, "[fd00::3]:8080", 1)
	return s
}

// elementsRE matches the element lists, whose order is the kernel's hash
// order.
var elementsRE = regexp.MustCompile(`(?s)elements = \{(.*?)\}`)

// counterRE matches a named counter; nft lists them in an order that is
// not the order they were added in.
var counterRE = regexp.MustCompile(`(?m)^\tcounter \S+ \{\n\t\tpackets \d+ bytes \d+\n\t\}\n\n`)

func normalise(listing string) string {
	counters := counterRE.FindAllString(listing, -1)
	if len(counters) > 0 {
		slices.Sort(counters)
		at := counterRE.FindStringIndex(listing)[0]
		listing = counterRE.ReplaceAllString(listing, "")
		listing = listing[:at] + strings.Join(counters, "") + listing[at:]
	}
	return elementsRE.ReplaceAllStringFunc(listing, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		var els []string
		for _, e := range strings.Split(inner, ",") {
			if e = strings.Join(strings.Fields(e), " "); e != "" {
				els = append(els, e)
			}
		}
		slices.Sort(els)
		return "elements = {\n\t\t\t" + strings.Join(els, ",\n\t\t\t") + " }"
	})
}

// TestGoldenTable compares `nft list table inet vigil` after one Apply with
// testdata/table.golden (go test -run Golden -update rewrites it).
func TestGoldenTable(t *testing.T) {
	l := netnstest.New(t, "lbgold")
	h := netnstest.AddHost(t, l, "dir", lab.Iface{Name: "eth0", LAN: "lan", Addrs: []string{"10.0.0.1/24"}})
	var be *Backend
	if err := h.Do(func() error { var err error; be, err = New(Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st := goldenState()
	if err := be.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	got := normalise(mustRun(t, h, "nft", "list", "table", "inet", "vigil"))
	path := "testdata/table.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(w), got); diff != "" {
		t.Errorf("nft list table inet vigil (-want +got):\n%s", diff)
	}

	// Observe reads back exactly what was applied.
	be.cache = nil
	obs, err := be.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Equal(project(st)) {
		t.Errorf("observed:\n%v\nwant:\n%v", obs, st)
	}
	// Applying the same state again sends nothing.
	if err := be.Apply(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if got2 := normalise(mustRun(t, h, "nft", "list", "table", "inet", "vigil")); got2 != got {
		t.Errorf("re-apply changed the table")
	}
}
