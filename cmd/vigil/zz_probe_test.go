package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

func TestProbeTickDuringLoad(t *testing.T) {
	var b strings.Builder
	b.WriteString("vrrp_instance VI_1 {\n interface lo\n virtual_router_id 71\n priority 150\n advert_int 0.1\n virtual_ipaddress {\n 192.168.51.100/24\n }\n}\n")
	b.WriteString("vrrp_instance BIG {\n    interface lo\n    virtual_router_id 1\n    priority 100\n    advert_int 0.1\n    virtual_ipaddress {\n        192.168.60.1/32\n    }\n    virtual_ipaddress_excluded {\n")
	for i := 0; b.Len() < 50<<20; i++ {
		fmt.Fprintf(&b, "        10.%d.%d.%d/32\n", i>>16&255, i>>8&255, i&255)
	}
	b.WriteString("    }\n}\n")
	p := filepath.Join(t.TempDir(), "k.conf")
	os.WriteFile(p, []byte(b.String()), 0o644)
	b = strings.Builder{}
	stop := make(chan struct{})
	worst := make(chan time.Duration)
	go func() {
		var w time.Duration
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		last := time.Now()
		junk := make([][]byte, 0, 64)
		for {
			select {
			case <-stop:
				worst <- w
				return
			case now := <-tk.C:
				w = max(w, now.Sub(last))
				last = time.Now()
				junk = append(junk[:0], make([]byte, 512)) // the loop allocates a little
			}
		}
	}()
	r := &reloader{}
	start := time.Now()
	res, err := r.run(context.Background(), func() (loaded, diag.Diagnostics) { return loadConfig(runFlags{file: p, configID: "x", vrrpOnly: true}) },
		func(context.Context, loaded) ([]string, []string, error) { return nil, nil, nil })
	close(stop)
	t.Logf("reload %v (%v, %v); worst tick gap %v", time.Since(start), res.Applied, err, <-worst)
}
