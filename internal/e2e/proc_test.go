package e2e

import (
	"os"
	"testing"
)

// TestReadProcSplitsRSS: the resident set of this test process is read with
// its anonymous part, which is never larger than the whole.
func TestReadProcSplitsRSS(t *testing.T) {
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = 1 // resident, anonymous
	}
	u, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.Anon < 32<<20 || u.RSS < u.Anon || u.CPU <= 0 {
		t.Errorf("usage %+v: want anonymous ≥ 32 MiB, RSS ≥ anonymous, some CPU", u)
	}
	_ = big[len(big)-1]
}
