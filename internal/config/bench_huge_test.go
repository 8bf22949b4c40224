package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hugeConfigs are the generated 50 MB configurations of
// BenchmarkLoad50MB: a realistic mix (24,000 instances and 24,000
// virtual servers of 10 real servers), one instance with 2.6 million
// VIPs, and 1.4 million distinct unknown keywords.
var hugeConfigs = []struct {
	name string
	gen  func() string
}{
	{"mixed", func() string { return largeConfig(24000, 24000) }},
	{"vips", func() string {
		var b strings.Builder
		b.WriteString("vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress {\n")
		for i := 0; b.Len() < 50<<20; i++ {
			fmt.Fprintf(&b, "  10.%d.%d.%d/32\n", i>>16&255, i>>8&255, i&255)
		}
		b.WriteString(" }\n}\n")
		return b.String()
	}},
	{"unknown-keywords", func() string {
		var b strings.Builder
		for i := 0; b.Len() < 50<<20; i++ {
			fmt.Fprintf(&b, "unknown_keyword_%d value %d\n", i, i)
		}
		return b.String()
	}},
}

// BenchmarkLoad50MB loads each generated 50 MB file from disk with the
// default limits and reports the time of one load (s/load) and the peak
// resident memory the load added (peak-MB, and peak-x-input: that peak
// over the input size). Targets: 5 s and 10× the input. Run it alone:
//
//	go test -run '^$' -bench Load50MB -benchtime 1x ./internal/config
//
// With VIGIL_HUGE_CONFIG_DIR set, the files are also written there (to
// time `vigil check -f DIR/mixed.conf`).
func BenchmarkLoad50MB(b *testing.B) {
	for _, hc := range hugeConfigs {
		b.Run(hc.name, func(b *testing.B) {
			dir := b.TempDir()
			src := hc.gen()
			if err := os.WriteFile(filepath.Join(dir, "k.conf"), []byte(src), 0o644); err != nil {
				b.Fatal(err)
			}
			if out := os.Getenv("VIGIL_HUGE_CONFIG_DIR"); out != "" {
				// For measuring `vigil check` on them.
				if err := os.WriteFile(filepath.Join(out, hc.name+".conf"), []byte(src), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			size := len(src)
			src = ""
			b.SetBytes(int64(size))
			var worst time.Duration
			var peak int64
			for b.Loop() {
				b.StopTimer()
				runtime.GC()
				debug.FreeOSMemory()
				base, reset := rssBaseline()
				b.StartTimer()
				start := time.Now()
				cfg, ds := Load(os.DirFS(dir), "k.conf", Options{})
				took := time.Since(start)
				b.StopTimer()
				if ds.HasErrors() {
					b.Fatalf("%s: %v", hc.name, ds[0])
				}
				if p := peakRSS() - base; reset && p > peak {
					peak = p
				}
				runtime.KeepAlive(cfg)
				worst = max(worst, took)
				b.StartTimer()
			}
			b.ReportMetric(worst.Seconds(), "s/load")
			if peak > 0 {
				b.ReportMetric(float64(peak)/(1<<20), "peak-MB")
				b.ReportMetric(float64(peak)/float64(size), "peak-x-input")
			}
		})
	}
}

// rssBaseline resets the kernel's peak RSS mark of this process
// (/proc/self/clear_refs, "5") and returns the current RSS; reset is false
// when the mark cannot be reset.
func rssBaseline() (rss int64, reset bool) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return 0, false
	}
	return procStatus("VmRSS"), true
}

func peakRSS() int64 { return procStatus("VmHWM") }

// procStatus reads a "kB" field of /proc/self/status in bytes.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}
