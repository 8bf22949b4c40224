package ipvs

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDaemonAttrs(t *testing.T) {
	got, err := daemonAttrs(SyncMaster, &SyncConfig{Interface: "eth1", SyncID: 51, Port: 8848, TTL: 2, Group: netip.MustParseAddr("224.0.0.81"), MaxLen: 1400})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x40, 0x00, 0x03, 0x80, // len 64, IPVS_CMD_ATTR_DAEMON | NLA_F_NESTED
		0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, // STATE master
		0x09, 0x00, 0x02, 0x00, 'e', 't', 'h', '1', 0x00, 0x00, 0x00, 0x00, // MCAST_IFN "eth1\0" + pad
		0x08, 0x00, 0x03, 0x00, 0x33, 0x00, 0x00, 0x00, // SYNC_ID 51
		0x06, 0x00, 0x04, 0x00, 0x78, 0x05, 0x00, 0x00, // SYNC_MAXLEN 1400
		0x08, 0x00, 0x05, 0x00, 224, 0, 0, 81, // MCAST_GROUP, network order
		0x06, 0x00, 0x07, 0x00, 0x90, 0x22, 0x00, 0x00, // MCAST_PORT 8848, host order
		0x05, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, // MCAST_TTL 2
	}
	if !bytes.Equal(got, want) {
		t.Errorf("NEW_DAEMON attributes\n got % x\nwant % x", got, want)
	}
	d, err := parseDaemon(got)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != SyncMaster || d.Interface != "eth1" || d.SyncID != 51 || d.Port != 8848 || d.TTL != 2 || d.MaxLen != 1400 || d.Group != netip.MustParseAddr("224.0.0.81") {
		t.Errorf("round trip: %+v", d)
	}
	del, _ := daemonAttrs(SyncBackup, nil)
	if want := []byte{0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00}; !bytes.Equal(del, want) {
		t.Errorf("DEL_DAEMON attributes % x, want % x", del, want)
	}
}

// fakeSync records commands and holds the kernel's rule: one daemon per
// state.
type fakeSync struct {
	mu      sync.Mutex
	running map[SyncState]bool
	log     []string
	fail    int // Start fails this many times
}

func (f *fakeSync) Start(s SyncState, c SyncConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		f.log = append(f.log, "start "+s.String()+" failed")
		return syscall.ENODEV
	}
	if f.running[s] {
		return syscall.EEXIST
	}
	f.running[s] = true
	f.log = append(f.log, "start "+s.String()+" "+c.Interface)
	return nil
}

func (f *fakeSync) Stop(s SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running[s] {
		f.log = append(f.log, "stop "+s.String())
	}
	delete(f.running, s)
	return nil
}

func (f *fakeSync) wait(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		got := slices.Clone(f.log)
		f.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("commands %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncFollower(t *testing.T) {
	// A daemon left by a killed run is restarted with this configuration.
	fk := &fakeSync{running: map[SyncState]bool{SyncBackup: true}}
	f := NewSyncFollower(SyncConfig{Interface: "eth1", SyncID: 51}, fk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	fk.wait(t, "stop backup", "start backup eth1")
	f.Set(true)
	fk.wait(t, "stop backup", "start backup eth1", "stop backup", "start master eth1")
	f.Set(true) // no change, no command
	f.Set(false)
	fk.wait(t, "stop backup", "start backup eth1", "stop backup", "start master eth1", "stop master", "start backup eth1")
	cancel()
	<-done
	fk.wait(t, "stop backup", "start backup eth1", "stop backup", "start master eth1", "stop master", "start backup eth1", "stop backup")
}

func TestSyncFollowerRetries(t *testing.T) {
	fk := &fakeSync{running: map[SyncState]bool{}, fail: 2}
	f := NewSyncFollower(SyncConfig{Interface: "eth1"}, fk, nil)
	f.Retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	fk.wait(t, "start backup failed", "start backup failed", "start backup eth1")
}

// A reload's new configuration restarts the running daemon in the same
// state (the kernel cannot change a running one); an unchanged one sends
// nothing.
func TestSyncFollowerReconfigures(t *testing.T) {
	fk := &fakeSync{running: map[SyncState]bool{}}
	f := NewSyncFollower(SyncConfig{Interface: "eth1", SyncID: 51}, fk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	fk.wait(t, "start backup eth1")
	if !f.SetConfig(SyncConfig{Interface: "eth2", SyncID: 51}) {
		t.Fatal("a new interface is no change")
	}
	fk.wait(t, "start backup eth1", "stop backup", "start backup eth2")
	f.Set(true)
	fk.wait(t, "start backup eth1", "stop backup", "start backup eth2", "stop backup", "start master eth2")
	if f.SetConfig(SyncConfig{Interface: "eth2", SyncID: 51}) {
		t.Error("the running configuration is a change")
	}
	f.SetConfig(SyncConfig{Interface: "eth2", SyncID: 52})
	fk.wait(t, "start backup eth1", "stop backup", "start backup eth2", "stop backup", "start master eth2", "stop master", "start master eth2")
	cancel()
	<-done
}
