package track

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompute(t *testing.T) {
	tests := []struct {
		name     string
		base     uint8
		trackers []Tracker
		want     Result
	}{
		{
			name: "no trackers",
			base: 100,
			want: Result{Priority: 100, Total: 100},
		},
		{
			// seed 001: vrrp_script chk_nginx weight 20, priority 100.
			name:     "positive weight added while the script succeeds",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk_nginx", Weight: 20, Status: Up}},
			want:     Result{Priority: 120, Total: 120},
		},
		{
			name:     "positive weight: nothing while the script fails",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk_nginx", Weight: 20, Status: Down}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			// seed 001 text: "weight -20: when the script fails, lower the priority by 20".
			name:     "negative weight subtracted while the script fails",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk_nginx", Weight: -20, Status: Down}},
			want:     Result{Priority: 80, Total: 80},
		},
		{
			name:     "negative weight: nothing while the script succeeds",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk_nginx", Weight: -20, Status: Up}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			// vrrp_track.c: total_priority += weight * multiplier, multiplier -1.
			name:     "reverse positive weight subtracts while up",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: 10, Reverse: true, Status: Up}},
			want:     Result{Priority: 90, Total: 90},
		},
		{
			name:     "reverse positive weight: nothing while down",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: 10, Reverse: true, Status: Down}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			name:     "reverse negative weight adds while down",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: -10, Reverse: true, Status: Down}},
			want:     Result{Priority: 110, Total: 110},
		},
		{
			name:     "weight 0 faults while down",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Status: Down}},
			want:     Result{Priority: 100, Total: 100, Fault: true, Reason: "track_script chk down"},
		},
		{
			name:     "weight 0 up is fine",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Status: Up}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			// man keepalived.conf: "'weight 0 reverse' will cause the vrrp instance to be
			// down when the script is up, and vice versa."
			name:     "weight 0 reverse faults while up",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Reverse: true, Status: Up}},
			want:     Result{Priority: 100, Total: 100, Fault: true, Reason: "track_script chk up"},
		},
		{
			name:     "weight 0 reverse down is fine",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Reverse: true, Status: Down}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			name:     "unweighted script not yet run holds the instance in INIT",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Status: Unknown}},
			want:     Result{Priority: 100, Total: 100, Waiting: true, Reason: "track_script chk has not reported yet"},
		},
		{
			name:     "weighted script not yet run adds nothing",
			base:     100,
			trackers: []Tracker{{Kind: Script, Name: "chk", Weight: -30, Status: Unknown}, {Kind: Script, Name: "chk2", Weight: 30, Status: Unknown}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			name: "interface down with weight 0 faults",
			base: 100,
			trackers: []Tracker{
				{Kind: Interface, Name: "eth1", Status: Down},
				{Kind: Script, Name: "chk", Weight: 5, Status: Up},
			},
			want: Result{Priority: 105, Total: 105, Fault: true, Reason: "track_interface eth1 down"},
		},
		{
			name: "weights add up",
			base: 100,
			trackers: []Tracker{
				{Kind: Interface, Name: "eth1", Weight: -15, Status: Down},
				{Kind: Script, Name: "a", Weight: 20, Status: Up},
				{Kind: Script, Name: "b", Weight: -30, Status: Down},
				{Kind: Process, Name: "haproxy", Weight: 7, Status: Up},
			},
			want: Result{Priority: 82, Total: 82},
		},
		{
			// vrrp_set_effective_priority: total >= VRRP_PRIO_OWNER -> 254.
			name:     "clamped to 254",
			base:     250,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: 50, Status: Up}},
			want:     Result{Priority: 254, Total: 300},
		},
		{
			// vrrp_set_effective_priority: total < 1 -> 1.
			name:     "clamped to 1",
			base:     10,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: -50, Status: Down}},
			want:     Result{Priority: 1, Total: -40},
		},
		{
			name:     "exactly 0 becomes 1",
			base:     50,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: -50, Status: Down}},
			want:     Result{Priority: 1, Total: 0},
		},
		{
			// vrrp_set_effective_priority: "Don't change priority if address owner".
			name:     "address owner keeps 255",
			base:     255,
			trackers: []Tracker{{Kind: Script, Name: "s", Weight: -50, Status: Down}},
			want:     Result{Priority: 255, Total: 205},
		},
		{
			// process_script_update_priority: the weight-0 path calls down_instance
			// without looking at the priority.
			name:     "address owner still faults on an unweighted tracker",
			base:     255,
			trackers: []Tracker{{Kind: Process, Name: "nginx", Status: Down}},
			want:     Result{Priority: 255, Total: 255, Fault: true, Reason: "track_process nginx down"},
		},
		{
			name:     "track_file value times weight",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 2, Value: 15}},
			want:     Result{Priority: 130, Total: 130},
		},
		{
			name:     "track_file negative value lowers",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 1, Value: -40}},
			want:     Result{Priority: 60, Total: 60},
		},
		{
			name:     "track_file reverse",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 3, Reverse: true, Value: 5}},
			want:     Result{Priority: 85, Total: 85},
		},
		{
			// man keepalived.conf: "if the result is less than -253 anything
			// monitoring the script will transition to the fault state".
			name:     "track_file -254 faults",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 1, Value: -254}},
			want:     Result{Priority: 100, Total: 100, Fault: true, Reason: "track_file f value -254"},
		},
		{
			name:     "track_file -253 does not fault",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 1, Value: -253}},
			want:     Result{Priority: 1, Total: -153},
		},
		{
			// track_file.c: new_status > 253 -> 253.
			name:     "track_file contribution capped at 253",
			base:     1,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 254, Value: 1000}},
			want:     Result{Priority: 254, Total: 254},
		},
		{
			name:     "track_file weight 0 non-zero faults",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 0, Value: 7}},
			want:     Result{Priority: 100, Total: 100, Fault: true, Reason: "track_file f value 7"},
		},
		{
			name:     "track_file weight 0 zero is fine",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 0, Value: 0}},
			want:     Result{Priority: 100, Total: 100},
		},
		{
			name:     "track_file weight 0 reverse zero faults",
			base:     100,
			trackers: []Tracker{{Kind: File, Name: "f", Weight: 0, Reverse: true, Value: 0}},
			want:     Result{Priority: 100, Total: 100, Fault: true, Reason: "track_file f value 0"},
		},
		{
			name: "several faults are all named",
			base: 100,
			trackers: []Tracker{
				{Kind: Interface, Name: "eth0", Status: Down},
				{Kind: Script, Name: "chk", Status: Unknown},
				{Kind: Process, Name: "haproxy", Reverse: true, Status: Up},
			},
			want: Result{Priority: 100, Total: 100, Fault: true, Waiting: true,
				Reason: "track_interface eth0 down, track_script chk has not reported yet, track_process haproxy up"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(tt.base, tt.trackers)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compute(%d) (-want +got):\n%s", tt.base, diff)
			}
		})
	}
}

// TestComputeMatchesIncremental checks that recomputing from statuses gives
// keepalived's running total: start from INIT, apply
// process_script_update_priority's increments for a sequence of script
// results, and compare with Compute at every step.
func TestComputeMatchesIncremental(t *testing.T) {
	seq := []bool{true, false, false, true, true, false, true}
	for _, w := range []int{-30, -1, 1, 30} {
		for _, rev := range []bool{false, true} {
			mult := 1
			if rev {
				mult = -1
			}
			total := 100 // keepalived: total_priority = base_priority
			status := Unknown
			for i, ok := range seq {
				// vrrp_track.c process_script_update_priority.
				if status == Unknown {
					if ok && w > 0 || !ok && w < 0 {
						total += w * mult
					}
				} else if (status == Up) != ok {
					a := w
					if a < 0 {
						a = -a
					}
					if ok {
						total += a * mult
					} else {
						total -= a * mult
					}
				}
				if ok {
					status = Up
				} else {
					status = Down
				}
				got := Compute(100, []Tracker{{Kind: Script, Weight: w, Reverse: rev, Status: status}})
				if got.Total != total {
					t.Fatalf("weight %d reverse %v step %d: Compute total %d, keepalived running total %d", w, rev, i, got.Total, total)
				}
			}
		}
	}
}

func TestFileStatus(t *testing.T) {
	tests := []struct {
		name    string
		value   int64
		weight  int
		reverse bool
		want    int
	}{
		{"default weight 1", 10, 1, false, 10},
		{"negative value", -10, 1, false, -10},
		{"weight multiplies", 10, -5, false, -50},
		{"product at -254 faults", -127, 2, false, FileFault},
		{"product below -254 faults", -2147483648, 254, false, FileFault},
		{"product above 253 capped", 2147483648, 254, false, 253},
		{"reverse flips", 10, 5, true, -50},
		{"weight 0 zero", 0, 0, false, 0},
		{"weight 0 non-zero", -1, 0, false, FileFault},
		{"weight 0 reverse non-zero", 3, 0, true, 0},
		{"weight 0 reverse zero", 0, 0, true, FileFault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FileStatus(tt.value, tt.weight, tt.reverse); got != tt.want {
				t.Errorf("FileStatus(%d, %d, %v) = %d, want %d", tt.value, tt.weight, tt.reverse, got, tt.want)
			}
		})
	}
}

func TestParseFileValue(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"", 0, true},
		{"0\n", 0, true},
		{"42\n", 42, true},
		{"  \t-17 trailing", -17, true},
		{"+5", 5, true},
		{"abc", 0, true},     // strtol: no conversion -> 0
		{"0x1f", 31, true},   // base 0: hex
		{"0X1F", 31, true},   // base 0: hex
		{"-0x10", -16, true}, // sign before prefix
		{"010", 8, true},     // base 0: octal
		{"09", 0, true},      // octal stops at 9
		{"0x", 0, true},      // "0" then stops at x
		{"0xg", 0, true},     // "0" then stops at x
		{"12 34", 12, true},  // stops at space
		{"2147483647", 2147483647, true},
		{"2147483648", 2147483648, true}, // INT32_MAX+1 accepted (track_file.c)
		{"2147483649", 0, false},
		{"-2147483648", -2147483648, true},
		{"-2147483649", 0, false},
		{"99999999999999999999999", 0, false}, // ERANGE
		{"7\x00 99", 7, true},                 // C string ends at NUL
		{"\n\n\n5", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseFileValue([]byte(tt.in))
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseFileValue(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	// Only the first 127 bytes are read.
	long := make([]byte, 200)
	for i := range long {
		long[i] = ' '
	}
	long[150] = '9'
	if got, ok := ParseFileValue(long); got != 0 || !ok {
		t.Errorf("value past byte 127: got %d, %v; want 0, true", got, ok)
	}
}

// FuzzParseFileValue: never panics, and an accepted value is within
// keepalived's [-2^31, 2^31].
func FuzzParseFileValue(f *testing.F) {
	for _, s := range []string{"", "1", "-0x7fffffff", "0777", " +12abc"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := ParseFileValue(b)
		if ok && (v < -(1<<31) || v > 1<<31) {
			t.Fatalf("ParseFileValue(%q) = %d out of range", b, v)
		}
	})
}
