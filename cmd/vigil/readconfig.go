package main

import (
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
)

// readConfig loads the keepalived.conf at the absolute path abs from the
// host, within limits, for `vigil run`, its reloads and `vigil check`.
// Besides config.Load's diagnostics, a file that defines no instance and
// no virtual server is a warning (it runs, with nothing to do). large
// (nil: none) is config.Options.Large.
func readConfig(abs, configID string, limits config.Limits, large func()) (*config.Config, diag.Diagnostics) {
	cfg, ds := config.Load(hostFS{}, abs, config.Options{ConfigID: configID, Root: "/", Limits: limits, Large: large})
	if !ds.HasErrors() && !cfg.Runs() {
		ds.Warnf(diag.Pos{File: abs}, "no vrrp_instance and no virtual_server: vigil runs with nothing to fail over or balance")
		ds.Sort()
	}
	return cfg, ds
}

// hostFS is the host's file system for config.Load. config.Load never
// opens what Stat says is not a regular file; hostFS opens without
// blocking besides (O_NONBLOCK), so that a file swapped for a FIFO between
// the Stat and the open cannot hang a reload either.
type hostFS struct{}

func (hostFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return os.OpenFile("/"+name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}

func (hostFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	return os.Stat("/" + name)
}

func (h hostFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	return os.ReadDir("/" + name)
}

// limitsFlag is --config-limit: NAME=N, repeatable.
type limitsFlag struct{ l *config.Limits }

func (f limitsFlag) String() string {
	if f.l == nil || *f.l == (config.Limits{}) {
		return ""
	}
	return f.l.String()
}
func (f limitsFlag) Set(s string) error { return f.l.Set(s) }
func (limitsFlag) Type() string         { return "NAME=N" }

// addLimitsFlag adds --config-limit to a command's flags.
func addLimitsFlag(fs *pflag.FlagSet, l *config.Limits) {
	fs.Var(limitsFlag{l}, "config-limit", "raise a limit of the configuration's budget: bytes, lines, files or expansions=N (K, M, G suffixes; defaults "+config.DefaultLimits().String()+"); repeatable")
}

// limitArgs gives the --config-limit values that set l's non-zero fields.
func limitArgs(l config.Limits) []string {
	var out []string
	for _, x := range []struct {
		name string
		n    int64
	}{{"bytes", l.Bytes}, {"lines", l.Lines}, {"files", l.Files}, {"expansions", l.Expansions}} {
		if x.n > 0 {
			out = append(out, x.name+"="+strconv.FormatInt(x.n, 10))
		}
	}
	return out
}
