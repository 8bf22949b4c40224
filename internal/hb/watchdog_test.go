package hb

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func fakeDevice(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readDevice(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWatchdogTicksThenMagicClose(t *testing.T) {
	p := fakeDevice(t)
	wd := openWatchdog(p, slog.New(slog.DiscardHandler))
	if !wd.armed() {
		t.Fatal("device not opened")
	}
	if got := readDevice(t, p); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("after open: %q, want one tick", got)
	}
	wd.tickle()
	wd.tickle()
	if got := readDevice(t, p); !bytes.Equal(got, []byte{0, 0, 0}) {
		t.Fatalf("after two tickles: %q, want three ticks", got)
	}
	wd.stop()
	if got := readDevice(t, p); !bytes.Equal(got, []byte{0, 0, 0, 'V'}) {
		t.Fatalf("after stop: %q, want the ticks then 'V'", got)
	}
	if wd.armed() {
		t.Fatal("still open after stop")
	}
	wd.tickle() // closed: nothing more is written
	wd.stop()
	if got := readDevice(t, p); len(got) != 4 {
		t.Fatalf("writes after stop: %q", got)
	}
}

func TestWatchdogAbandonLeavesItArmed(t *testing.T) {
	p := fakeDevice(t)
	wd := openWatchdog(p, slog.New(slog.DiscardHandler))
	wd.tickle()
	wd.abandon()
	got := readDevice(t, p)
	if !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("after abandon: %q, want two ticks and no 'V'", got)
	}
	wd.stop() // already closed: no 'V' either
	if got := readDevice(t, p); bytes.IndexByte(got, 'V') >= 0 {
		t.Fatalf("'V' written after abandon: %q", got)
	}
}

func TestWatchdogNone(t *testing.T) {
	for _, dev := range []string{"", filepath.Join(t.TempDir(), "missing", "watchdog")} {
		wd := openWatchdog(dev, slog.New(slog.DiscardHandler))
		if wd.armed() {
			t.Fatalf("%q: armed", dev)
		}
		wd.tickle()
		wd.stop()
		wd.abandon()
	}
}

type failWriter struct{ closed int }

func (f *failWriter) Write([]byte) (int, error) { return 0, errors.New("EIO") }
func (f *failWriter) Close() error              { f.closed++; return nil }

func TestWatchdogWriteFailureCloses(t *testing.T) {
	fw := &failWriter{}
	wd := &watchdog{dev: "fake", w: fw, log: slog.New(slog.DiscardHandler)}
	wd.tickle()
	if wd.armed() || fw.closed != 1 {
		t.Fatalf("armed %v, closed %d times; want closed once", wd.armed(), fw.closed)
	}
	wd.tickle()
	wd.stop()
	if fw.closed != 1 {
		t.Fatalf("closed %d times", fw.closed)
	}
}
