package hb

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/internal/hb/hbconf"
	"github.com/vigil-ha/vigil/internal/script"
)

// RespawnNoRestart is the exit status with which a respawn client asks not
// to be started again (heartbeat's respawn: status 100).
const RespawnNoRestart = 100

// Respawn runs an ha.cf `respawn USER PATH [ARGS]` client as USER and starts
// it again whenever it exits, as heartbeat does, until ctx is done (then it
// kills the client's process group and returns). A client that exits with
// status 100 is not restarted. A client that keeps dying is restarted at
// most once per second, backing off to once a minute.
//
// Concurrency: one goroutine per Respawn call; it owns its child.
func Respawn(ctx context.Context, r hbconf.Respawn, log *slog.Logger) error {
	if len(r.Argv) == 0 {
		return errors.New("hb: respawn without a program")
	}
	cred, err := script.LookupUser(r.User, "")
	if err != nil {
		return err
	}
	delay := time.Second
	for {
		start := time.Now()
		cmd := exec.Command(r.Argv[0], r.Argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM,
			Credential: &syscall.Credential{Uid: cred.UID, Gid: cred.GID}}
		cmd.Env = []string{"PATH=" + script.DefaultPath}
		cmd.Dir = "/"
		if err := cmd.Start(); err != nil {
			log.Error("respawn: cannot start", "program", r.Argv[0], "user", r.User, "err", err)
		} else {
			log.Info("respawn: started", "program", r.Argv[0], "user", r.User, "pid", cmd.Process.Pid)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-ctx.Done():
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
				}
				return nil
			case err := <-done:
				code := cmd.ProcessState.ExitCode()
				if code == RespawnNoRestart {
					log.Info("respawn: client asked not to be restarted (exit 100)", "program", r.Argv[0])
					<-ctx.Done()
					return nil
				}
				log.Warn("respawn: client exited; restarting", "program", r.Argv[0], "err", err, "ran", time.Since(start).Round(time.Millisecond))
			}
		}
		if time.Since(start) > time.Minute {
			delay = time.Second
		} else {
			delay = min(delay*2, time.Minute)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}
