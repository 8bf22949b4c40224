package gobgp

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLogHandlerHoldsBackRepeats: a NOTIFICATION record repeated
// unchanged passes once a minute, then says how many it held back; other
// records and a different NOTIFICATION pass at once; each notes the
// neighbour's last NOTIFICATION.
func TestLogHandlerHoldsBackRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	noted := map[netip.Addr]string{}
	h := newLogHandler(slog.NewTextHandler(&buf, nil), func() time.Time { return now }, func(a netip.Addr, why string) { noted[a] = why })
	peer := slog.New(h).With("Topic", "Peer", "Key", "192.0.2.1")
	bad := func() { peer.Info("sent notification", "State", "BGP_FSM_ACTIVE", "Code", 2, "Subcode", 2) }
	for range 10 {
		bad()
		peer.Info("Peer Down")
		now = now.Add(2 * time.Second)
	}
	peer.Info("received notification", "Code", 6, "Subcode", 2)
	out := buf.String()
	if n := strings.Count(out, "sent notification"); n != 1 {
		t.Errorf("%d sent notification records in 20 s, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "Peer Down"); n != 10 {
		t.Errorf("%d Peer Down records, want 10", n)
	}
	if !strings.Contains(out, "received notification") {
		t.Errorf("a different NOTIFICATION was held back:\n%s", out)
	}
	if w := noted[netip.MustParseAddr("192.0.2.1")]; !strings.Contains(w, "received") || !strings.Contains(w, "cease") {
		t.Errorf("noted %q, want the last NOTIFICATION (received, cease)", w)
	}
	now = now.Add(repeatEvery)
	buf.Reset()
	bad()
	if out := buf.String(); !strings.Contains(out, "sent notification") || !strings.Contains(out, "repeated=9") {
		t.Errorf("after a minute: %q, want the record with repeated=9", out)
	}
	if w := noted[netip.MustParseAddr("192.0.2.1")]; !strings.Contains(w, "bad peer as") || !strings.Contains(w, "remote_as") {
		t.Errorf("noted %q, want the bad peer AS with its hint", w)
	}
	// A failed connection attempt is noted though the daemon does not
	// log GoBGP's debug records; a session up clears the note.
	buf.Reset()
	peer.Debug("failed to connect", "Error", "dial tcp 192.0.2.1:179: i/o timeout")
	if w := noted[netip.MustParseAddr("192.0.2.1")]; w != "cannot connect: dial tcp 192.0.2.1:179: i/o timeout" {
		t.Errorf("noted %q after a failed connection", w)
	}
	if buf.Len() != 0 {
		t.Errorf("a debug record reached an info handler: %q", buf.String())
	}
	peer.Info("Peer Up")
	if w, ok := noted[netip.MustParseAddr("192.0.2.1")]; !ok || w != "" {
		t.Errorf("noted %q, %v after Peer Up, want \"\"", w, ok)
	}
}
