package diag

import (
	"strings"
	"testing"
)

func TestDiagnosticString(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Diagnostic
		want string
	}{
		{"full", Diagnostic{Pos{"k.conf", 3, 5}, Error, "priority 300 out of range 1..255"}, "k.conf:3:5: error: priority 300 out of range 1..255"},
		{"no column", Diagnostic{Pos{"k.conf", 3, 0}, Warning, "x"}, "k.conf:3: warning: x"},
		{"whole file", Diagnostic{Pos{"k.conf", 0, 0}, Error, "y"}, "k.conf: error: y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSortAndErr(t *testing.T) {
	var ds Diagnostics
	ds.Warnf(Pos{"b", 1, 1}, "w")
	ds.Errorf(Pos{"a", 9, 1}, "e2")
	ds.Errorf(Pos{"a", 2, 4}, "e1")
	ds.Sort()
	if ds[0].Msg != "e1" || ds[1].Msg != "e2" || ds[2].Msg != "w" {
		t.Fatalf("order %v", ds)
	}
	if !ds.HasErrors() || ds.Err() == nil {
		t.Fatal("errors not reported")
	}
	if (Diagnostics{{Severity: Warning}}).Err() != nil {
		t.Fatal("warnings alone must not be an error")
	}
}

// A list stops growing at Limit; the marker after it turns into an error
// when an error was left out.
func TestLimit(t *testing.T) {
	var ds Diagnostics
	for i := range 3 * Limit {
		ds.Warnf(Pos{File: "f", Line: i + 1}, "w %d", i)
	}
	if len(ds) != Limit+1 || ds.HasErrors() {
		t.Fatalf("%d diagnostics, errors %v", len(ds), ds.HasErrors())
	}
	if got := ds[Limit]; got.Pos.Line != Limit+1 || !strings.Contains(got.Msg, "only the first") {
		t.Fatalf("marker: %v", got)
	}
	ds.Errorf(Pos{File: "f", Line: 1}, "late error")
	if len(ds) != Limit+1 || !ds.HasErrors() {
		t.Fatalf("after an error: %d diagnostics, errors %v", len(ds), ds.HasErrors())
	}
}
