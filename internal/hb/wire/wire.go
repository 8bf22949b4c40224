// Package wire is heartbeat 3.0.6's message codec and packet
// authentication, as exchanged on UDP port 694 between heartbeat nodes.
//
// A message is an ordered list of name=value fields. Heartbeat (with
// cluster-glue 1.0.12's libplumb) sends every packet in the netstring
// format:
//
//	###\n                          MSG_START_NETSTRING
//	11:(0)t=status,                one netstring per field: "(type)name=value"
//	...
//	42:(0)auth=3 6bef...,          the classic auth field (see below)
//	%%%\n                          MSG_END_NETSTRING
//	34:3 2dff...,                  trailer: "N digest" over the bytes above
//
// (cl_netstring.c msg2netstring_buf / msg2netstring_ll). Two digests are
// carried: heartbeat's add_msg_auth (heartbeat/ha_msg_internal.c) signs the
// classic text form of every field but auth, "name=value\n" each, binary
// values base64-encoded and prefixed "(1)", with no ">>>"/"<<<" lines; and
// msg2netstring_ll signs the netstring bytes from "###\n" to "%%%\n". A
// receiver of the netstring form checks only the trailer
// (netstring2msg/is_auth_netstring); one of the classic ">>>\n...<<<\n"
// form checks the auth field (string2msg_ll/isauthentic). Both are verified
// against captures of real heartbeat 3.0.6 packets in testdata/capture.
//
// Field types (cl_msg.c FT_*): 0 string, 1 binary; the struct, list and
// compressed types are not used by heartbeat's membership and resource
// messages and are refused.
//
// Parse never panics and checks every length before using it.
package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Field types, cl_msg.h.
const (
	TypeString = 0
	TypeBinary = 1
)

// Well-known field names (cluster-glue include/ha_msg.h).
const (
	FType        = "t"
	FStatus      = "st"
	FOrig        = "src"
	FOrigUUID    = "srcuuid"
	FTo          = "dest"
	FToUUID      = "destuuid"
	FSeq         = "seq"
	FGen         = "hg"
	FTime        = "ts"
	FLoad        = "ld"
	FTTL         = "ttl"
	FAuth        = "auth"
	FDeadtime    = "dt"
	FProtocol    = "protocol"
	FAckSeq      = "ackseq"
	FFirstSeq    = "firstseq"
	FLastSeq     = "lastseq"
	FRsc         = "rsc_hold"
	FRType       = "rtype"
	FStable      = "isstable"
	FComment     = "info"
	FNodeList    = "nodelist"
	FDelNodeList = "delnodelist"
)

// Message types (ha_msg.h). Types starting with "NS_" carry no sequence
// number.
const (
	TStatus       = "status"
	TStarting     = "starting"
	TResources    = "resource"
	TAskResources = "ask_resources"
	TShutdone     = "shutdone"
	TReqNodes     = "reqnodes"
	TRepNodes     = "repnodes"
	TRexmit       = "NS_rexmit"
	TNakRexmit    = "NS_nak_rexmit"
	TAck          = "NS_ackmsg"
	NoSeqPrefix   = "NS_"
)

// MaxMsg is heartbeat's MAXMSG (ha_msg.h): the largest packet.
const MaxMsg = 40000

// Field is one name=value pair.
type Field struct {
	Name  string
	Type  int
	Value []byte
}

// Message is an ordered list of fields.
type Message struct {
	Fields []Field
}

// Get returns the first field called name.
func (m *Message) Get(name string) (string, bool) {
	for _, f := range m.Fields {
		if f.Name == name {
			return string(f.Value), true
		}
	}
	return "", false
}

// Value returns the field's value or "".
func (m *Message) Value(name string) string { v, _ := m.Get(name); return v }

// Set sets a string field, replacing the first of that name or appending
// (as ha_msg_mod does).
func (m *Message) Set(name, value string) { m.set(name, TypeString, []byte(value)) }

// SetBinary sets a binary field.
func (m *Message) SetBinary(name string, value []byte) { m.set(name, TypeBinary, value) }

func (m *Message) set(name string, typ int, v []byte) {
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			m.Fields[i].Type, m.Fields[i].Value = typ, append([]byte(nil), v...)
			return
		}
	}
	m.Fields = append(m.Fields, Field{Name: name, Type: typ, Value: append([]byte(nil), v...)})
}

// Del removes every field called name.
func (m *Message) Del(name string) {
	out := m.Fields[:0]
	for _, f := range m.Fields {
		if f.Name != name {
			out = append(out, f)
		}
	}
	m.Fields = out
}

// Clone copies the message.
func (m *Message) Clone() *Message {
	c := &Message{Fields: make([]Field, len(m.Fields))}
	for i, f := range m.Fields {
		c.Fields[i] = Field{Name: f.Name, Type: f.Type, Value: append([]byte(nil), f.Value...)}
	}
	return c
}

// Hex reads a hexadecimal numeric field (seq, hg, ts, dt, ackseq are %lx).
func (m *Message) Hex(name string) (uint64, bool) {
	v, ok := m.Get(name)
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 16, 64)
	return n, err == nil
}

// Classic returns the classic text form of the fields used to compute the
// auth field: every field but auth as "name=value\n", binary values as
// "(1)name=base64\n" (cl_msg.c msg2string_buf with NOHEAD).
func (m *Message) Classic() []byte {
	var b bytes.Buffer
	for _, f := range m.Fields {
		if f.Name == FAuth {
			continue
		}
		if f.Type == TypeBinary {
			b.WriteString("(1)")
			b.WriteString(f.Name)
			b.WriteByte('=')
			b.WriteString(base64.StdEncoding.EncodeToString(f.Value))
		} else {
			b.WriteString(f.Name)
			b.WriteByte('=')
			b.Write(f.Value)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Format tells which framing a packet used.
type Format int

const (
	Netstring Format = iota // "###\n" ... "%%%\n" + trailer
	Classic                 // ">>>\n" ... "<<<\n"
)

// Packet is a parsed datagram.
type Packet struct {
	Msg    Message
	Format Format
	// Signed is the part the trailer signs (netstring form): from "###\n"
	// through "%%%\n".
	Signed []byte
	// Trailer is the netstring form's "N digest", or "".
	Trailer string
}

// Errors returned by Parse; each is a drop reason.
var (
	ErrShort     = errors.New("wire: packet too short")
	ErrFraming   = errors.New("wire: no ### or >>> start")
	ErrNetstring = errors.New("wire: bad netstring")
	ErrField     = errors.New("wire: bad field")
	ErrFieldType = errors.New("wire: unsupported field type")
	ErrTooBig    = errors.New("wire: packet larger than MAXMSG")
)

// Parse decodes one datagram. It never panics.
func Parse(b []byte) (*Packet, error) {
	if len(b) > MaxMsg {
		return nil, ErrTooBig
	}
	if len(b) < 4 {
		return nil, ErrShort
	}
	// A trailing NUL (classic msg2wirefmt_noac counts it) is tolerated.
	switch string(b[:4]) {
	case "###\n":
		return parseNetstring(b)
	case ">>>\n":
		return parseClassic(b)
	}
	return nil, ErrFraming
}

// peel reads one netstring "len:data," at b[i:], returning the data and
// the index after the comma.
func peel(b []byte, i int) ([]byte, int, error) {
	j := i
	n := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		n = n*10 + int(b[j]-'0')
		if n > MaxMsg {
			return nil, 0, fmt.Errorf("%w: length too large", ErrNetstring)
		}
		j++
	}
	if j == i || j >= len(b) || b[j] != ':' {
		return nil, 0, fmt.Errorf("%w: no length at offset %d", ErrNetstring, i)
	}
	j++
	if n > len(b)-j-1 || b[j+n] != ',' {
		return nil, 0, fmt.Errorf("%w: truncated at offset %d", ErrNetstring, i)
	}
	return b[j : j+n], j + n + 1, nil
}

func parseNetstring(b []byte) (*Packet, error) {
	p := &Packet{Format: Netstring}
	i := 4
	for {
		if i+4 <= len(b) && string(b[i:i+4]) == "%%%\n" {
			i += 4
			break
		}
		if i >= len(b) {
			return nil, fmt.Errorf("%w: no %%%%%%%% end", ErrNetstring)
		}
		data, next, err := peel(b, i)
		if err != nil {
			return nil, err
		}
		f, err := netField(data)
		if err != nil {
			return nil, err
		}
		p.Msg.Fields = append(p.Msg.Fields, f)
		i = next
	}
	p.Signed = b[:i]
	rest := b[i:]
	if len(rest) > 0 && rest[len(rest)-1] == 0 {
		rest = rest[:len(rest)-1]
	}
	if len(rest) > 0 {
		data, next, err := peel(rest, 0)
		if err != nil {
			return nil, fmt.Errorf("%w (trailer)", err)
		}
		if next != len(rest) {
			return nil, fmt.Errorf("%w: bytes after the trailer", ErrNetstring)
		}
		p.Trailer = string(data)
	}
	return p, nil
}

// netField decodes "(T)name=value" (cl_netstring.c process_netstring_nvpair).
func netField(d []byte) (Field, error) {
	if len(d) < 4 || d[0] != '(' || d[2] != ')' || d[1] < '0' || d[1] > '9' {
		return Field{}, fmt.Errorf("%w: %q", ErrField, trunc(d))
	}
	t := int(d[1] - '0')
	if t != TypeString && t != TypeBinary {
		return Field{}, fmt.Errorf("%w %d", ErrFieldType, t)
	}
	rest := d[3:]
	eq := bytes.IndexByte(rest, '=')
	if eq <= 0 {
		return Field{}, fmt.Errorf("%w: no name= in %q", ErrField, trunc(d))
	}
	return Field{Name: string(rest[:eq]), Type: t, Value: append([]byte(nil), rest[eq+1:]...)}, nil
}

func parseClassic(b []byte) (*Packet, error) {
	p := &Packet{Format: Classic}
	s := string(b[4:])
	end := strings.Index(s, "<<<\n")
	if end < 0 {
		return nil, fmt.Errorf("%w: no <<< end", ErrField)
	}
	for _, ln := range strings.Split(s[:end], "\n") {
		ln = strings.TrimRight(ln, "\r")
		if ln == "" {
			continue
		}
		typ := TypeString
		if len(ln) >= 3 && ln[0] == '(' && ln[2] == ')' {
			if ln[1] != '1' && ln[1] != '0' {
				return nil, fmt.Errorf("%w %c", ErrFieldType, ln[1])
			}
			typ = int(ln[1] - '0')
			ln = ln[3:]
		}
		eq := strings.IndexByte(ln, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("%w: %q", ErrField, trunc([]byte(ln)))
		}
		v := []byte(ln[eq+1:])
		if typ == TypeBinary {
			dec, err := base64.StdEncoding.DecodeString(ln[eq+1:])
			if err != nil {
				return nil, fmt.Errorf("%w: binary %s: %v", ErrField, ln[:eq], err)
			}
			v = dec
		}
		p.Msg.Fields = append(p.Msg.Fields, Field{Name: ln[:eq], Type: typ, Value: v})
	}
	return p, nil
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// MarshalNetstring encodes the fields in netstring form, without trailer.
func (m *Message) MarshalNetstring() []byte {
	var b bytes.Buffer
	b.WriteString("###\n")
	for _, f := range m.Fields {
		body := fmt.Sprintf("(%d)%s=", f.Type, f.Name)
		fmt.Fprintf(&b, "%d:%s", len(body)+len(f.Value), body)
		b.Write(f.Value)
		b.WriteByte(',')
	}
	b.WriteString("%%%\n")
	return b.Bytes()
}

// Marshal signs and encodes a message as heartbeat 3.0.6 sends it: the auth
// field (over Classic) is set last, then the netstring form, then the
// trailer over it.
func Marshal(m *Message, a *Auth) ([]byte, error) {
	if a == nil {
		return nil, errors.New("wire: no authentication configured")
	}
	m.Del(FAuth)
	tok, err := a.Sign(m.Classic())
	if err != nil {
		return nil, err
	}
	m.Set(FAuth, tok)
	body := m.MarshalNetstring()
	tr, err := a.Sign(body)
	if err != nil {
		return nil, err
	}
	out := fmt.Appendf(body, "%d:%s,", len(tr), tr)
	if len(out) > MaxMsg {
		return nil, ErrTooBig
	}
	return out, nil
}

// MarshalClassic encodes in the classic ">>>" form with the auth field, as
// heartbeat's serial medium and older releases send it.
func MarshalClassic(m *Message, a *Auth) ([]byte, error) {
	m.Del(FAuth)
	tok, err := a.Sign(m.Classic())
	if err != nil {
		return nil, err
	}
	m.Set(FAuth, tok)
	var b bytes.Buffer
	b.WriteString(">>>\n")
	b.Write(m.Classic())
	fmt.Fprintf(&b, "%s=%s\n", FAuth, tok)
	b.WriteString("<<<\n")
	return b.Bytes(), nil
}

// Verify authenticates a parsed packet as heartbeat does for its framing:
// the trailer for netstring packets, the auth field for classic ones.
func Verify(p *Packet, a *Auth) error {
	if a == nil {
		return errors.New("wire: no authentication configured")
	}
	if p.Format == Netstring {
		if p.Trailer == "" {
			return fmt.Errorf("%w: netstring packet without trailer", ErrAuth)
		}
		return a.Check(p.Signed, p.Trailer)
	}
	tok, ok := p.Msg.Get(FAuth)
	if !ok {
		return fmt.Errorf("%w: no auth field", ErrAuth)
	}
	return a.Check(p.Msg.Classic(), tok)
}
