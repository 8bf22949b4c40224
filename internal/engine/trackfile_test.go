package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/runspec"
	"github.com/vigil-ha/vigil/internal/track"
	"github.com/vigil-ha/vigil/internal/vrrp"
)

// One track_file whose directory is missing must not stop the others being
// watched: keepalived 2.2.7 removes that one ("Track file directory for
// NAME does not exist - removing") and follows the rest. Real time: the
// watcher reads inotify.
func TestTrackFileMissingDirectoryKeepsOthers(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := tutorialInstance(vrrp.StateBackup, 100)
	in.Trackers = []runspec.TrackRef{
		{Kind: track.File, Name: "gone", Weight: 1},
		{Kind: track.File, Name: "good", Weight: 1},
	}
	spec := runspec.Spec{
		Instances: []runspec.InstanceSpec{in},
		Files: []runspec.FileSpec{
			{Name: "gone", Path: filepath.Join(dir, "no-such-dir", "v")},
			{Name: "good", Path: good},
		},
	}
	h := newFakeHost(&fakeLAN{}, "a", map[string]string{"eth0": "192.168.1.105/24"})
	e, err := New(spec, Options{Net: h})
	if err != nil {
		t.Fatal(err)
	}
	n := runNode(t, h, e)
	if err := os.WriteFile(good+".tmp", []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(good+".tmp", good); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := n.snapshot(t)
		if p := s.Instances[0].EffectivePriority; p == 107 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("priority %d after the good track file reads 7, want 107 (trackers %+v)", p, s.Instances[0].Trackers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
