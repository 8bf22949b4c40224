package bgp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/pkg/server"

	"github.com/vigil-ha/vigil/internal/bgp/bgptest"
)

// TestMain builds the vigil-bgp helper the runtime's tests run (unless
// $VIGIL_BGP_HELPER names one) and points $VIGIL_BGP_HELPER at it.
func TestMain(m *testing.M) {
	code, err := withHelper(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func withHelper(m *testing.M) (int, error) {
	if os.Getenv(HelperEnv) != "" {
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "vigil-bgp-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, HelperName)
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vigil-bgp")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build ./cmd/vigil-bgp: %w\n%s", err, out)
	}
	os.Setenv(HelperEnv, bin)
	return m.Run(), nil
}

// receiver is bgptest's peer under the names the runtime's tests use.
type receiver struct {
	*bgptest.Receiver
	srv  *server.BgpServer
	port int
}

func startReceiver(tb testing.TB) *receiver {
	r := bgptest.StartReceiver(tb)
	return &receiver{Receiver: r, srv: r.Srv, port: r.Port}
}

func (r *receiver) received() uint64 { return r.Received() }

func (r *receiver) waitReceived(tb testing.TB, want uint64, timeout time.Duration) time.Duration {
	tb.Helper()
	return r.WaitReceived(tb, want, timeout)
}
