package translate

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/diag"
)

// trackFileConf tracks two files from an instance and from a real server:
// "here" in an existing directory (the file itself need not exist), "gone"
// in a directory that does not; "unused" is missing too but tracked by
// nothing.
func trackFileConf(dir string) string {
	return fmt.Sprintf(`track_file here {
    file %[1]s/here
}
track_file gone {
    file %[1]s/missing/gone
}
track_file unused {
    file %[1]s/missing/unused
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.168.1.100/24
    }
    track_file {
        here weight 5
        gone weight 10
    }
}
virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        FILE_CHECK {
            track_file gone
        }
        FILE_CHECK {
            track_file here
        }
    }
}
`, dir)
}

// keepalived 2.2.7 init_track_files: a tracked file whose directory does
// not exist is removed ("Track file directory for gone does not exist -
// removing") from every instance and real server that tracks it: it is not
// counted, where vigil used to keep it and read it as 0. The warning names
// the track_file block (line 4); one nothing tracks is forgotten silently.
func TestTrackFileDirectoryMissing(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, trackFileConf(dir))

	wantWarning := func(t *testing.T, ds diag.Diagnostics) {
		t.Helper()
		if ds.HasErrors() {
			t.Fatalf("a missing directory is not an error (keepalived runs on): %v", ds.Err())
		}
		var got []string
		for _, d := range ds {
			got = append(got, fmt.Sprintf("%d %v %s", d.Pos.Line, d.Severity, d.Msg))
		}
		if len(got) != 1 || !strings.HasPrefix(got[0], "4 warning track_file gone: ") ||
			!strings.Contains(got[0], filepath.Join(dir, "missing")) || !strings.Contains(got[0], "the tracker is removed and not counted") {
			t.Errorf("diagnostics %q: want one warning at line 4 naming the missing directory", got)
		}
	}

	t.Run("vrrp_instance", func(t *testing.T) {
		spec, ds := FromConfig(cfg)
		wantWarning(t, ds)
		var files, tracked []string
		for _, f := range spec.Files {
			files = append(files, f.Name)
		}
		for _, tr := range spec.Instances[0].Trackers {
			tracked = append(tracked, fmt.Sprintf("%v %s %d", tr.Kind, tr.Name, tr.Weight))
		}
		if diff := cmp.Diff([]string{"here"}, files); diff != "" {
			t.Errorf("watched files (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"track_file here 5"}, tracked); diff != "" {
			t.Errorf("VI_1 trackers (-want +got):\n%s", diff)
		}
	})

	t.Run("FILE_CHECK", func(t *testing.T) {
		spec, ds := DirectorFromConfig(cfg)
		wantWarning(t, ds)
		var names []string
		for _, ck := range spec.Checks[0].Checkers {
			names = append(names, ck.Name)
		}
		want := []string{"TCP_CHECK#1 10.0.0.2:80", "FILE_CHECK#3 10.0.0.2:80"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("checkers (-want +got):\n%s", diff)
		}
	})
}
