package hb

import (
	"io"
	"log/slog"
	"os"
)

// watchdog drives ha.cf's `watchdog DEVICE` as heartbeat does: the device
// is opened when the node starts, written once at once and once with every
// status heartbeat this node sends, and closed with the magic character 'V'
// on a clean stop, which tells the kernel driver to disarm the timer. A
// node that dies without that (kill -9, a crash, a graceful stop that never
// finished) leaves the timer armed, and the kernel resets the machine once
// the driver's margin passes with no write, so it cannot hold its resources
// beside the peer that took them over.
//
// A device that cannot be opened is logged and the node runs without one,
// as heartbeat does; a write that fails closes the device for good (the
// kernel then resets the machine, as heartbeat's failed write would).
//
// Concurrency: owned by the goroutine of Node.Run.
type watchdog struct {
	dev string
	w   io.WriteCloser
	log *slog.Logger
}

// openWatchdog opens dev for writing; "" (no directive) gives a watchdog
// that does nothing, as does a device that cannot be opened.
func openWatchdog(dev string, log *slog.Logger) *watchdog {
	wd := &watchdog{dev: dev, log: log}
	if dev == "" {
		return wd
	}
	// os.OpenFile sets close-on-exec, as heartbeat does for the device:
	// resource scripts must not inherit (and keep alive) the timer.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		log.Error("cannot open watchdog device; running without it", "device", dev, "err", err)
		return wd
	}
	wd.w = f
	log.Info("using watchdog device", "device", dev)
	wd.tickle()
	return wd
}

// armed says whether the device is open.
func (wd *watchdog) armed() bool { return wd.w != nil }

// tickle restarts the kernel's timer with one byte (not 'V').
func (wd *watchdog) tickle() {
	if wd.w == nil {
		return
	}
	if _, err := wd.w.Write([]byte{0}); err != nil {
		wd.log.Error("watchdog write failed; closing the device", "device", wd.dev, "err", err)
		wd.w.Close()
		wd.w = nil
	}
}

// stop is the clean close: 'V', then close, so the driver disarms.
func (wd *watchdog) stop() {
	if wd.w == nil {
		return
	}
	if _, err := wd.w.Write([]byte{'V'}); err != nil {
		wd.log.Error("watchdog magic close write failed", "device", wd.dev, "err", err)
	} else {
		wd.log.Info("closing watchdog device", "device", wd.dev)
	}
	wd.w.Close()
	wd.w = nil
}

// abandon closes the device without the magic character: the driver keeps
// the timer running and resets the machine when it expires.
func (wd *watchdog) abandon() {
	if wd.w == nil {
		return
	}
	wd.log.Error("closing watchdog device without disarming it: the kernel will reset this machine", "device", wd.dev)
	wd.w.Close()
	wd.w = nil
}
