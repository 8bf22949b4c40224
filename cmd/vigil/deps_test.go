package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoBGPLibrariesLinked: GoBGP and what it brings (gRPC, viper, toml)
// live in the vigil-bgp helper; linked into vigil they would be resident
// in every daemon (about 12 MB of text and rodata), BGP or not.
func TestNoBGPLibrariesLinked(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed %d packages", len(deps))
	}
	for _, d := range deps {
		for _, banned := range []string{"github.com/osrg/gobgp", "google.golang.org/grpc", "github.com/spf13/viper", "github.com/pelletier/go-toml", "github.com/BurntSushi/toml"} {
			if d == banned || strings.HasPrefix(d, banned+"/") {
				t.Errorf("vigil links %s (keep it in cmd/vigil-bgp)", d)
			}
		}
	}
}
