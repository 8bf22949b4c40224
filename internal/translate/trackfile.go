package translate

import (
	"github.com/vigil-ha/vigil/internal/config"
	"github.com/vigil-ha/vigil/internal/diag"
	"github.com/vigil-ha/vigil/internal/track/filewatch"
)

// goneTrackFiles returns, by name, the track_file blocks keepalived 2.2.7
// removes at start because their file cannot be resolved (track_file.c
// init_track_files, filewatch.Resolve): the file's directory does not exist
// ("Track file directory for NAME does not exist - removing"), or the path
// is not accessible. The tracker goes from every instance, sync group or
// FILE_CHECK that names it: it is not counted, not read as 0. A removed
// file that used names is reported at its block; keepalived forgets one
// that nothing tracks without a word.
func goneTrackFiles(c *config.Config, used map[string]bool, ds *diag.Diagnostics) map[string]bool {
	gone := map[string]bool{}
	for _, f := range c.TrackFiles {
		if _, err := filewatch.Resolve(f.File); err != nil {
			gone[f.Name] = true
			if used[f.Name] {
				ds.Warnf(f.Pos, "track_file %s: %v; the tracker is removed and not counted, as keepalived does", f.Name, err)
			}
		}
	}
	return gone
}
