package track

import (
	"flag"
	"os"
	"testing"
)

// TestMain runs up to four tests at once unless -parallel is given: the
// tests mostly wait on VRRP timers and service restarts, not on the CPU,
// so more labs at a time keep the package's wall time down on a 2-core
// machine.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}
