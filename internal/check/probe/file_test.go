package probe

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/vigil-ha/vigil/internal/check"
)

func TestFile(t *testing.T) {
	type res struct {
		OK    bool
		Delta *int
	}
	w := func(v int) *int { return &v }
	tests := []struct {
		name    string
		content *string // nil: no file
		weight  int
		reverse bool
		want    res
	}{
		{name: "weight 0: 0 is up", content: ptr("0\n"), want: res{OK: true}},
		{name: "weight 0: non-zero is down", content: ptr("1\n"), want: res{}},
		{name: "weight 0 reverse: 0 is down", content: ptr("0"), reverse: true, want: res{}},
		{name: "weight 0 reverse: non-zero is up", content: ptr("7"), reverse: true, want: res{OK: true}},
		{name: "weight 0: no file is 0", content: nil, want: res{OK: true}},
		{name: "weight 1 (default): value is offset", content: ptr("  25\n"), weight: 1, want: res{OK: true, Delta: w(25)}},
		{name: "weight 3: hex value", content: ptr("0x10"), weight: 3, want: res{OK: true, Delta: w(48)}},
		{name: "octal value", content: ptr("010"), weight: 1, want: res{OK: true, Delta: w(8)}},
		{name: "negative offset", content: ptr("-5"), weight: 2, want: res{OK: true, Delta: w(-10)}},
		{name: "reverse negates", content: ptr("5"), weight: 2, reverse: true, want: res{OK: true, Delta: w(-10)}},
		{name: "garbage is 0", content: ptr("abc"), weight: 4, want: res{OK: true, Delta: w(0)}},
		{name: "empty file is 0", content: ptr(""), weight: 4, want: res{OK: true, Delta: w(0)}},
		// Only a product at or below INT_MIN is a fault (IPVS_WEIGHT_FAULT).
		{name: "fault", content: ptr("-2147483648"), weight: 1, want: res{}},
		{name: "large negative is no fault", content: ptr("-1000000"), weight: 1000, want: res{OK: true, Delta: w(-1000000000)}},
		{name: "product below INT_MIN is a fault", content: ptr("-3000000"), weight: 1000, want: res{}},
		{name: "large product clamped", content: ptr("2000000000"), weight: 2, want: res{OK: true, Delta: w(2147483647)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			if tt.content != nil {
				if err := os.WriteFile(p, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := (&File{Path: p, Weight: tt.weight, Reverse: tt.reverse}).Check(context.Background())
			if diff := cmp.Diff(tt.want, res{r.OK, r.WeightDelta}); diff != "" {
				t.Errorf("(-want +got) [%s]:\n%s", r.Reason, diff)
			}
		})
	}
	t.Run("out of range value keeps the previous one", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		f := &File{Path: p, Weight: 1}
		os.WriteFile(p, []byte("9"), 0o644)
		f.Check(context.Background())
		os.WriteFile(p, []byte("99999999999"), 0o644)
		r := f.Check(context.Background())
		if !r.OK || r.WeightDelta == nil || *r.WeightDelta != 9 {
			t.Errorf("result %+v (%s), want the previous value 9", r, r.Reason)
		}
	})
}

func ptr(s string) *string { return &s }

// A FILE_CHECK file that is a FIFO must not hang the check: keepalived opens
// it O_NONBLOCK and reads once. With no writer a blocking open would wait
// for one; with a silent writer a read would wait for data.
func TestFileFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &File{Path: path, Weight: 1}
	run := func(what string, want int) {
		t.Helper()
		ch := make(chan check.Result, 1)
		go func() { ch <- f.Check(context.Background()) }()
		select {
		case r := <-ch:
			if !r.OK || r.WeightDelta == nil || *r.WeightDelta != want {
				t.Errorf("%s: Check = %+v; want OK with offset %d", what, r, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Check blocked on a FIFO", what)
		}
	}
	run("no writer", 0)
	w, err := os.OpenFile(path, os.O_RDWR, 0) // holds the FIFO open
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	run("silent writer", 0)
	if _, err := w.WriteString("12\n"); err != nil {
		t.Fatal(err)
	}
	run("writer wrote 12", 12)
}
