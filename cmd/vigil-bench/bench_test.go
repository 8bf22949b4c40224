package main

import (
	"strings"
	"testing"
	"time"
)

// TestMasterDown checks the reference Master_Down_Interval against the
// figures keepalived 2.2.7 was measured with on this machine: 3,613 ms at
// advert_int 1 (v2), 361 ms at 0.1 (v3), priority 99.
func TestMasterDown(t *testing.T) {
	for _, tc := range []struct {
		v    int
		adv  time.Duration
		want time.Duration
	}{
		{2, time.Second, 3613281 * time.Microsecond},           // 3 s + 157/256 s
		{3, 100 * time.Millisecond, 361328 * time.Microsecond}, // 300 ms + 157 × 10 cs × 625/16 µs
		{3, 10 * time.Millisecond, 36132 * time.Microsecond},   // 30 ms + 157 × 1 cs × 625/16 µs
		{3, time.Second, 3613281 * time.Microsecond},           // 3 s + 157 × 100 cs × 625/16 µs
	} {
		if got := masterDown(tc.v, 99, tc.adv); got != tc.want {
			t.Errorf("masterDown(v%d, 99, %v) = %v, want %v", tc.v, tc.adv, got, tc.want)
		}
	}
}

func TestDist(t *testing.T) {
	var d dist
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(101-i)*time.Millisecond)
	}
	if d.median() != 50*time.Millisecond || d.min() != time.Millisecond || d.max() != 100*time.Millisecond || d.p99() != 99*time.Millisecond {
		t.Errorf("median %v min %v max %v p99 %v", d.median(), d.min(), d.max(), d.p99())
	}
	if got := (dist{-3 * time.Millisecond, 2 * time.Millisecond}).abs().max(); got != 3*time.Millisecond {
		t.Errorf("abs max %v", got)
	}
	if (dist{}).mmm() != "-" {
		t.Error("empty dist not shown as -")
	}
}

func TestScaleConf(t *testing.T) {
	c, names := scaleConf(256, "0.1", true)
	if len(names) != 256 || names[254] != "VI_1_255" || names[255] != "VI_2_1" {
		t.Fatalf("names %d, [254] %s, [255] %s", len(names), names[254], names[255])
	}
	s := c.String()
	for _, want := range []string{"interface eth2\n  virtual_router_id 1\n", "10.1.1.255/32 dev eth1", "state MASTER"} {
		if !strings.Contains(s, want) {
			t.Errorf("configuration lacks %q", want)
		}
	}
	if in := c.Instances[0]; in.Version != 3 || in.Priority != 100 {
		t.Errorf("instance %+v", in)
	}
	if _, err := singleConf("0.5x", true); err == nil {
		t.Error("bad advert_int accepted")
	}
	v2, _ := singleConf("1", false)
	if in := v2.Instances[0]; in.Version != 0 || in.AuthPass != "1111" || in.Priority != 99 {
		t.Errorf("tutorial instance %+v", in)
	}
}
