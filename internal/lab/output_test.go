package lab

import "testing"

func TestOutputFrom(t *testing.T) {
	p := &Proc{}
	w := (*procWriter)(p)
	w.Write([]byte("gc 1 @0.1s\n"))
	w.Write([]byte("gc 2"))
	for _, tt := range []struct {
		off  int
		want string
	}{
		{0, "gc 1 @0.1s\ngc 2"},
		{-3, "gc 1 @0.1s\ngc 2"},
		{11, "gc 2"},
		{15, ""},
		{99, ""},
	} {
		if got := p.OutputFrom(tt.off); got != tt.want {
			t.Errorf("OutputFrom(%d) = %q, want %q", tt.off, got, tt.want)
		}
	}
}
