package cdp

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Launch starts headless Chromium through command (e.g. a lab host's
// Command, so the browser lives in a test namespace) with the DevTools pipe
// on fds 3/4, and returns its client. The browser is stopped when the test
// ends; its output is logged if the test failed.
func Launch(tb testing.TB, ctx context.Context, command func(context.Context, string, ...string) *exec.Cmd, chromium string) *Client {
	tb.Helper()
	toR, toW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	fromR, fromW, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := command(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
		"--user-data-dir="+tb.TempDir(), "--remote-debugging-pipe", "about:blank")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{toR, fromW} // fd 3: commands in, fd 4: replies out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	toR.Close()
	fromW.Close()
	tb.Cleanup(func() {
		toW.Close() // Chromium exits when its command pipe closes
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			if cmd.Cancel != nil {
				_ = cmd.Cancel() // a lab command kills its process group
			} else {
				_ = cmd.Process.Kill()
			}
			<-exited
		}
		fromR.Close()
		if tb.Failed() {
			tb.Logf("chromium output:\n%s", out.String())
		}
	})
	return New(toW, fromR)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
