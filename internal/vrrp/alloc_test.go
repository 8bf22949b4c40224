package vrrp

import (
	"hash/fnv"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/internal/vrrp/packet"
)

// fnv1a is hash/fnv's FNV-1a over the bytes MarshalBinary gives, so the
// advert phases are those computed before it replaced them.
func TestFNV1aIsHashFNV(t *testing.T) {
	for _, s := range []string{"", "192.168.1.105", "10.1.0.1", "fe80::1", "fe80::1%eth0", "2001:db8::5", "::ffff:10.0.0.1"} {
		var a netip.Addr
		if s != "" {
			a = netip.MustParseAddr(s)
		}
		b, _ := a.Unmap().MarshalBinary()
		h := fnv.New32a()
		h.Write(b)
		var buf [48]byte
		got, _ := a.Unmap().AppendBinary(buf[:0])
		if fnv1a(got) != h.Sum32() {
			t.Errorf("%q: fnv1a %#x, hash/fnv %#x", s, fnv1a(got), h.Sum32())
		}
	}
}

// sameSend compares every field of a SendAdvert: a field it missed would
// let a changed advert go out as the previous one.
func TestSameSendSeesEveryField(t *testing.T) {
	base := SendAdvert{Priority: 100, AHSeq: 1, Advert: packet.Advert{Version: 2, Type: 1, VRID: 5, Priority: 100,
		CountIPAddrs: 1, AuthType: packet.AuthPass, Reserved: 0, AdvertInt: 1, Checksum: 1,
		Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, AuthData: [8]byte{'a'}, ChecksumMode: 0}}
	if !sameSend(base, base) {
		t.Fatal("a SendAdvert differs from itself")
	}
	// Change each field of SendAdvert and of its Advert in turn.
	check := func(name string, mod func(*SendAdvert)) {
		c := base
		c.Advert.Addrs = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
		mod(&c)
		if sameSend(base, c) {
			t.Errorf("a change of %s goes unseen", name)
		}
	}
	v := reflect.ValueOf(&base).Elem()
	for k := range v.NumField() {
		f := v.Type().Field(k)
		if f.Name == "Advert" {
			av := v.Field(k)
			for j := range av.NumField() {
				name := av.Type().Field(j).Name
				check("Advert."+name, func(c *SendAdvert) { bump(reflect.ValueOf(&c.Advert).Elem().Field(j)) })
			}
			continue
		}
		check(f.Name, func(c *SendAdvert) { bump(reflect.ValueOf(c).Elem().Field(k)) })
	}
}

// bump changes a field's value whatever its kind.
func bump(f reflect.Value) {
	switch f.Kind() {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		f.SetUint(f.Uint() + 1)
	case reflect.Slice:
		f.Set(reflect.Append(f, reflect.ValueOf(netip.MustParseAddr("10.0.0.2"))))
	case reflect.Array:
		f.Index(0).SetUint(f.Index(0).Uint() + 1)
	default:
		panic("bump: field of kind " + f.Kind().String())
	}
}

// A master's advert at every interval (advert phases on) costs no
// allocation.
func TestMasterAdvertAllocatesNothing(t *testing.T) {
	cfg := Config{Name: "VI_1", VRID: 1, Version: 3, Priority: 255, AdvertInt: time.Second,
		Source: netip.MustParseAddr("192.168.1.1"), SpreadAdverts: true, VIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	in.Step(now, Start{})
	if in.State() != StateMaster {
		t.Fatalf("state %s, want MASTER", in.State())
	}
	tick := func() {
		now = in.Deadline()
		acts := in.Step(now, Timeout{})
		if len(acts) != 1 {
			t.Fatalf("actions %v, want one SendAdvert", acts)
		}
		if s, ok := acts[0].(SendAdvert); !ok || s.Priority != in.Status().Priority {
			t.Fatalf("action %#v, want a SendAdvert at priority %d", acts[0], in.Status().Priority)
		}
	}
	tick()
	if a := testing.AllocsPerRun(100, tick); a != 0 {
		t.Errorf("a master's Timeout allocates %v times, want 0", a)
	}
}
