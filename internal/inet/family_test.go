package inet

import (
	"encoding/json"
	"net/netip"
	"testing"
)

func TestFamilyOf(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want Family
	}{
		{"192.0.2.1", IPv4},
		{"2001:db8::1", IPv6},
		{"::ffff:192.0.2.1", IPv6}, // written as IPv6: keepalived's inet_pton(AF_INET6)
	} {
		if got := FamilyOf(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("FamilyOf(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if got := FamilyOf(netip.Addr{}); got != IPv4 {
		t.Errorf("FamilyOf(invalid) = %v, want IPv4", got)
	}
}

// The JSON form is keepalived's keyword, and reads back.
func TestFamilyText(t *testing.T) {
	type doc struct {
		A, B Family
		C    Family `json:",omitempty"`
	}
	b, err := json.Marshal(doc{A: IPv4, B: IPv6})
	if err != nil || string(b) != `{"A":"inet","B":"inet6"}` {
		t.Fatalf("Marshal: %s %v", b, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil || d != (doc{A: IPv4, B: IPv6}) {
		t.Errorf("Unmarshal: %+v %v", d, err)
	}
	if err := json.Unmarshal([]byte(`{"A":"ipx"}`), &d); err == nil {
		t.Error("Unmarshal of an unknown family: no error")
	}
	if _, err := json.Marshal(doc{A: 5}); err == nil {
		t.Error("Marshal of family(5): no error")
	}
}
