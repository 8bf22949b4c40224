package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/engine"
	"github.com/vigil-ha/vigil/internal/owner"
	"github.com/vigil-ha/vigil/internal/runspec"
)

// claimOwnership makes this daemon the one owner of the virtual routers of
// spec in its network namespace, or says who already is: another vigil
// (by its lock, naming its pid and command line) or a keepalived whose
// configuration uses one of them. The caller closes the registry at exit,
// which gives the routers up.
func claimOwnership(spec runspec.Spec, configID string) (*owner.Registry, error) {
	keys := engine.OwnerKeys(spec)
	procs, err := owner.Keepalived("")
	if err != nil {
		return nil, err
	}
	if err := owner.CheckKeepalived(procs, keys, func(path string) ([]owner.Key, error) {
		return keepalivedKeys(path, configID)
	}); err != nil {
		return nil, err
	}
	dir := os.Getenv("VIGIL_RUN_DIR") // tests; the default is /run/vigil
	reg, err := owner.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := reg.Claim(keys); err != nil {
		reg.Close()
		return nil, err
	}
	return reg, nil
}

// keepalivedKeys reads the virtual routers of a keepalived configuration
// file with vigil's own parser.
func keepalivedKeys(path, configID string) ([]owner.Key, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, err
	}
	cfg, ds := config.Load(os.DirFS("/"), abs, config.Options{ConfigID: configID, Root: "/"})
	if cfg == nil {
		return nil, fmt.Errorf("%s: %v", abs, ds)
	}
	var keys []owner.Key
	for _, in := range cfg.Instances {
		keys = append(keys, owner.Key{Interface: in.Interface, IPv6: in.Family == config.Inet6, VRID: uint8(in.VRID)})
	}
	return keys, nil
}
