package ipvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The kernel's connection synchronisation daemon (ip_vs_sync.c), driven as
// keepalived's ipvs_syncd_cmd drives it. cloudflare/ipvs v0.12.0 does not
// expose the daemon commands, so they are sent here over the same generic
// netlink family (include/uapi/linux/ip_vs.h).
const (
	cmdNewDaemon = 9  // IPVS_CMD_NEW_DAEMON
	cmdDelDaemon = 10 // IPVS_CMD_DEL_DAEMON
	cmdGetDaemon = 11 // IPVS_CMD_GET_DAEMON

	cmdAttrDaemon = 3 // IPVS_CMD_ATTR_DAEMON (nested)

	daemonAttrState       = 1 // u32: IP_VS_STATE_MASTER / BACKUP
	daemonAttrMcastIfn    = 2 // nul-terminated string
	daemonAttrSyncID      = 3 // u32
	daemonAttrSyncMaxlen  = 4 // u16
	daemonAttrMcastGroup  = 5 // u32, network order (in_addr)
	daemonAttrMcastGroup6 = 6 // 16 bytes (in6_addr)
	daemonAttrMcastPort   = 7 // u16, host order
	daemonAttrMcastTTL    = 8 // u8

	genlVersion = 1 // IPVS_GENL_VERSION
)

// SyncState is a sync daemon's role (IP_VS_STATE_MASTER, _BACKUP).
type SyncState uint32

const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// SyncConfig is global_defs lvs_sync_daemon: the interface the daemon
// multicasts on and the optional attributes (zero: the kernel's default,
// maxlen from the MTU, group 224.0.0.81, port 8848, TTL 1).
type SyncConfig struct {
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Port      uint16
	TTL       uint8
	Group     netip.Addr
}

// SyncDaemon is one running kernel sync daemon as GET_DAEMON reports it.
type SyncDaemon struct {
	State SyncState
	SyncConfig
}

// daemonAttrs encodes the nested IPVS_CMD_ATTR_DAEMON of a NEW_DAEMON (cfg
// set) or DEL_DAEMON (cfg nil) command.
func daemonAttrs(state SyncState, cfg *SyncConfig) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(cmdAttrDaemon, func(nae *netlink.AttributeEncoder) error {
		nae.Uint32(daemonAttrState, uint32(state))
		if cfg == nil {
			return nil
		}
		nae.String(daemonAttrMcastIfn, cfg.Interface)
		nae.Uint32(daemonAttrSyncID, uint32(cfg.SyncID))
		if cfg.MaxLen != 0 {
			nae.Uint16(daemonAttrSyncMaxlen, cfg.MaxLen)
		}
		if cfg.Group.Is4() {
			b := cfg.Group.As4()
			nae.Bytes(daemonAttrMcastGroup, b[:])
		} else if cfg.Group.Is6() {
			b := cfg.Group.As16()
			nae.Bytes(daemonAttrMcastGroup6, b[:])
		}
		if cfg.Port != 0 {
			nae.Uint16(daemonAttrMcastPort, cfg.Port)
		}
		if cfg.TTL != 0 {
			nae.Uint8(daemonAttrMcastTTL, cfg.TTL)
		}
		return nil
	})
	return ae.Encode()
}

// parseDaemon decodes one GET_DAEMON reply.
func parseDaemon(b []byte) (SyncDaemon, error) {
	var d SyncDaemon
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return d, err
	}
	for ad.Next() {
		if ad.Type() != cmdAttrDaemon {
			continue
		}
		ad.Nested(func(nad *netlink.AttributeDecoder) error {
			for nad.Next() {
				switch nad.Type() {
				case daemonAttrState:
					d.State = SyncState(nad.Uint32())
				case daemonAttrMcastIfn:
					d.Interface = nad.String()
				case daemonAttrSyncID:
					d.SyncID = uint8(nad.Uint32())
				case daemonAttrSyncMaxlen:
					d.MaxLen = nad.Uint16()
				case daemonAttrMcastGroup:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok {
						d.Group = a.Unmap()
					}
				case daemonAttrMcastGroup6:
					if a, ok := netip.AddrFromSlice(nad.Bytes()); ok && !a.IsUnspecified() {
						d.Group = a
					}
				case daemonAttrMcastPort:
					d.Port = nad.Uint16()
				case daemonAttrMcastTTL:
					d.TTL = nad.Uint8()
				}
			}
			return nil
		})
	}
	return d, ad.Err()
}

// SyncConn sends the daemon commands. It talks to the IPVS of the network
// namespace it was opened in.
//
// Concurrency: safe for concurrent use (one request at a time).
type SyncConn struct {
	mu  sync.Mutex
	c   *genetlink.Conn
	fam uint16
}

// DialSync opens a generic netlink socket to IPVS in the namespace of the
// calling thread.
func DialSync() (*SyncConn, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("ipvs: generic netlink: %w", err)
	}
	f, err := c.GetFamily("IPVS")
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ipvs: generic netlink family IPVS: %w", err)
	}
	return &SyncConn{c: c, fam: f.ID}, nil
}

// Close closes the socket; running daemons keep running.
func (s *SyncConn) Close() error { return s.c.Close() }

func (s *SyncConn) do(cmd uint8, data []byte, flags netlink.HeaderFlags) ([]genetlink.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}, Data: data}, s.fam, netlink.Request|flags)
}

// Start starts the daemon in state; one already running in that state is
// an error (syscall.EEXIST), as in the kernel.
func (s *SyncConn) Start(state SyncState, cfg SyncConfig) error {
	b, err := daemonAttrs(state, &cfg)
	if err != nil {
		return err
	}
	if _, err := s.do(cmdNewDaemon, b, netlink.Acknowledge); err != nil {
		return fmt.Errorf("ipvs: start sync daemon %v on %s: %w", state, cfg.Interface, err)
	}
	return nil
}

// Stop stops the daemon in state; none running is not an error.
func (s *SyncConn) Stop(state SyncState) error {
	b, err := daemonAttrs(state, nil)
	if err != nil {
		return err
	}
	if _, err := s.do(cmdDelDaemon, b, netlink.Acknowledge); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("ipvs: stop sync daemon %v: %w", state, err)
	}
	return nil
}

// Daemons lists the running daemons (ipvsadm -L --daemon).
func (s *SyncConn) Daemons() ([]SyncDaemon, error) {
	msgs, err := s.do(cmdGetDaemon, nil, netlink.Dump)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list sync daemons: %w", err)
	}
	var out []SyncDaemon
	for _, m := range msgs {
		d, err := parseDaemon(m.Data)
		if err != nil {
			return nil, fmt.Errorf("ipvs: sync daemon reply: %w", err)
		}
		if d.State != 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// SyncController is a SyncConn or a fake of one.
type SyncController interface {
	Start(SyncState, SyncConfig) error
	Stop(SyncState) error
}

// SyncFollower keeps the kernel's sync daemon in the role of one VRRP
// instance, as keepalived does for lvs_sync_daemon (vrrp.c
// vrrp_state_become_master / vrrp_state_leave_master, ipvswrapper.c
// ipvs_syncd_master / ipvs_syncd_backup): a backup daemon from the start, the
// master daemon while the instance is MASTER (the backup one stopped first),
// the backup daemon again when it leaves MASTER, both stopped at exit.
//
// Concurrency: Set is safe from any goroutine and never blocks; Run owns the
// netlink commands.
type SyncFollower struct {
	// Retry is the interval between attempts after the kernel refused a
	// daemon (default 5 s).
	Retry time.Duration

	cfg  SyncConfig
	ctl  SyncController
	log  *slog.Logger
	kick chan struct{}

	mu     sync.Mutex
	master bool
	next   SyncConfig // the configuration Run applies (SetConfig)
}

// NewSyncFollower prepares a follower; it starts nothing.
func NewSyncFollower(cfg SyncConfig, ctl SyncController, log *slog.Logger) *SyncFollower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SyncFollower{Retry: 5 * time.Second, cfg: cfg, next: cfg, ctl: ctl, log: log, kick: make(chan struct{}, 1)}
}

// SetConfig replaces the daemon's configuration (a reload) and reports
// whether it changed; Run then stops the running daemon and starts it
// again, in the same state, with the new one. It never blocks.
func (f *SyncFollower) SetConfig(cfg SyncConfig) bool {
	f.mu.Lock()
	changed := cfg != f.next
	f.next = cfg
	f.mu.Unlock()
	if changed {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
	return changed
}

// Set records whether the instance is MASTER; Run applies the latest value.
func (f *SyncFollower) Set(master bool) {
	f.mu.Lock()
	f.master = master
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run starts the backup daemon, follows Set until ctx ends, then stops both
// daemons.
func (f *SyncFollower) Run(ctx context.Context) error {
	var running SyncState // the daemon this follower started
	apply := func(want SyncState) {
		f.mu.Lock()
		cfg := f.next
		f.mu.Unlock()
		if running == want && cfg == f.cfg {
			return
		}
		if running != 0 && cfg != f.cfg {
			// The kernel has no command to change a running daemon.
			if err := f.ctl.Stop(running); err != nil {
				f.log.Warn("lvs_sync_daemon", "err", err)
			}
			f.log.Info("lvs_sync_daemon restarts with its new configuration", "state", running.String(), "interface", cfg.Interface, "syncid", cfg.SyncID)
			running = 0
		}
		f.cfg = cfg
		other := SyncBackup
		if want == SyncBackup {
			other = SyncMaster
		}
		if err := f.ctl.Stop(other); err != nil {
			f.log.Warn("lvs_sync_daemon", "err", err)
		}
		err := f.ctl.Start(want, f.cfg)
		if errors.Is(err, syscall.EEXIST) {
			// Left by an earlier run (kill -9): restart with this
			// configuration.
			_ = f.ctl.Stop(want)
			err = f.ctl.Start(want, f.cfg)
		}
		if err != nil {
			f.log.Error("lvs_sync_daemon", "err", err)
			running = 0
			return
		}
		f.log.Info("lvs_sync_daemon", "state", want.String(), "interface", f.cfg.Interface, "syncid", f.cfg.SyncID)
		running = want
	}
	desired := func() SyncState {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.master {
			return SyncMaster
		}
		return SyncBackup
	}
	apply(desired())
	for {
		// A daemon the kernel refused (an interface not there yet) is
		// tried again.
		var retry <-chan time.Time
		var t *time.Timer
		if running == 0 {
			t = time.NewTimer(f.Retry)
			retry = t.C
		}
		select {
		case <-retry:
			apply(desired())
		case <-ctx.Done():
			for _, s := range []SyncState{SyncMaster, SyncBackup} {
				if err := f.ctl.Stop(s); err != nil {
					f.log.Warn("lvs_sync_daemon", "err", err)
				}
			}
			return nil
		case <-f.kick:
			apply(desired())
		}
		if t != nil {
			t.Stop()
		}
	}
}
