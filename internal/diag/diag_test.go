package diag

import "testing"

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
