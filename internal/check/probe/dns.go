package probe

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
)

// DNS query types DNS_CHECK knows (check_dns.c DNS_TYPE).
var dnsTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "RRSIG": 46, "DNSKEY": 48,
}

// ParseDNSType maps DNS_CHECK's type argument to its number (keepalived
// compares the names case-insensitively).
func ParseDNSType(s string) (uint16, error) {
	if t, ok := dnsTypes[strings.ToUpper(s)]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("probe: unknown DNS check type %q", s)
}

// DNS defaults (check_dns.h): type SOA, name ".".
const (
	DefaultDNSType = 6
	DefaultDNSName = "."
)

// DNS is DNS_CHECK: it sends one recursive query over UDP and waits for a
// response with the query's ID and the QR bit; an RCODE other than 0 fails
// the check (keepalived 2.2.7 check_dns.c dns_recv_thread). Other datagrams
// are ignored until the timeout.
//
// Concurrency: Check may be called concurrently.
type DNS struct {
	Conn Conn
	// Type is the query type; 0 means SOA.
	Type uint16
	// Name is the queried name; empty means ".".
	Name string
	// ID draws the query ID; nil means a random one.
	ID func() uint16
}

// Validate reports a name keepalived rejects (an empty label).
func (d *DNS) Validate() error {
	if err := d.Conn.Validate(); err != nil {
		return err
	}
	_, err := dnsQuery(0, d.Type, d.Name)
	return err
}

// dnsQuery builds the query as check_dns.c dns_make_query: RD set, one
// question of class IN.
func dnsQuery(id, qtype uint16, name string) ([]byte, error) {
	if qtype == 0 {
		qtype = DefaultDNSType
	}
	if name == "" {
		name = DefaultDNSName
	}
	if (name[0] == '.' && name != ".") || strings.Contains(name, "..") {
		return nil, fmt.Errorf("probe: DNS_CHECK name %q has an empty label", name)
	}
	b := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(b[4:], 1)      // QDCOUNT
	if name != "." {
		for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
			if len(l) > 63 {
				return nil, fmt.Errorf("probe: DNS_CHECK name %q: label longer than 63 bytes", name)
			}
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	return b, nil
}

// Check sends one query and waits for its answer.
func (d *DNS) Check(ctx context.Context) check.Result {
	start := time.Now()
	to := d.Conn.timeout()
	target := d.Conn.Target()
	fail := func(format string, args ...any) check.Result {
		return check.Result{Reason: fmt.Sprintf(format, args...), Latency: elapsed(start)}
	}
	id := uint16(rand.Uint32())
	if d.ID != nil {
		id = d.ID()
	}
	q, err := dnsQuery(id, d.Type, d.Name)
	if err != nil {
		return fail("%v", err)
	}
	dl := deadline(ctx, to)
	c, err := d.Conn.dial(ctx, "udp")
	if err != nil {
		return fail("DNS query to %s: %s", target, describe(err, to)).WithErr(err)
	}
	stop := closeOnCancel(ctx, c)
	defer func() {
		stop()
		c.Close()
	}()
	// One deadline for the whole exchange: check_dns.c keeps the time left
	// of connect_timeout across its reads.
	_ = c.SetDeadline(dl)
	if _, err := c.Write(q); err != nil {
		return fail("DNS query to %s: %s", target, describe(err, to))
	}
	buf := make([]byte, 768) // DNS_BUFFER_SIZE
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fail("DNS query to %s: %s", target, describe(err, to))
		}
		if n < 12 {
			continue // "too small message"
		}
		if binary.BigEndian.Uint16(buf) != id {
			continue // "ID does not match"
		}
		flags := binary.BigEndian.Uint16(buf[2:])
		if flags&0x8000 == 0 {
			continue // "receive query message?"
		}
		if rc := flags & 0xf; rc != 0 {
			return fail("DNS query to %s: rcode %d (%s)", target, rc, rcodeName(rc))
		}
		return check.Result{OK: true, Reason: fmt.Sprintf("DNS server %s answered", target), Latency: elapsed(start)}
	}
}

func rcodeName(rc uint16) string {
	names := []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}
	if int(rc) < len(names) {
		return names[rc]
	}
	return "error"
}
