package main

import (
	"testing"

	"github.com/vigil-ha/vigil/internal/config"
)

func TestConnSyncChanged(t *testing.T) {
	a := &config.ConntrackSync{Interface: "eth2", Port: 3780}
	moved := *a
	moved.Pos.Line = 40
	other := *a
	other.Port = 3790
	for _, tc := range []struct {
		name    string
		a, b    *config.ConntrackSync
		changed bool
	}{
		{"none", nil, nil, false},
		{"added", nil, a, true},
		{"removed", a, nil, true},
		{"moved lines only", a, &moved, false},
		{"port", a, &other, true},
	} {
		if got := connSyncChanged(tc.a, tc.b); got != tc.changed {
			t.Errorf("%s: changed %v, want %v", tc.name, got, tc.changed)
		}
	}
}
