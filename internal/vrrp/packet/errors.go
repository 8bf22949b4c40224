package packet

import "fmt"

// Reason says why Parse rejected a packet. Its String form is short, stable
// and safe to use as a metric label (vigil_vrrp_dropped_total{reason="..."}).
type Reason uint8

const (
	// ReasonTooShort: the buffer ends before the fixed header, or before the
	// address list and (v2 over IPv4) authentication data it announces.
	ReasonTooShort Reason = iota + 1
	// ReasonTooLong: bytes follow the announced address list (keepalived
	// 2.2.7 rejects any length other than the expected one).
	ReasonTooLong
	// ReasonVersion: the version nibble is neither 2 nor 3.
	ReasonVersion
	// ReasonType: the type nibble is not 1 (ADVERTISEMENT); RFC 5798 §5.2.2.
	ReasonType
	// ReasonAuthType: a VRRPv2 auth type other than 0, 1 or 2.
	ReasonAuthType
	// ReasonChecksum: no checksum computation vigil knows matches.
	ReasonChecksum
	// ReasonFamily: the source and destination addresses are not both valid
	// IPv4 or both valid IPv6 addresses (a caller bug, not a peer's).
	ReasonFamily
	// ReasonAHNextHeader: an AH header protecting another protocol than
	// VRRP (keepalived ignores the packet).
	ReasonAHNextHeader
	// ReasonIPHeader: ParseDatagram found no usable IPv4 header carrying AH.
	ReasonIPHeader
)

var reasonNames = [...]string{
	ReasonTooShort: "too_short",
	ReasonTooLong:  "too_long",
	ReasonVersion:  "bad_version",
	ReasonType:     "bad_type",
	ReasonAuthType: "bad_auth_type",
	ReasonChecksum: "bad_checksum",
	ReasonFamily:   "bad_family",

	ReasonAHNextHeader: "ah_next_header",
	ReasonIPHeader:     "bad_ip_header",
}

// String returns the stable short name of r.
func (r Reason) String() string {
	if int(r) < len(reasonNames) && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason_%d", uint8(r))
}

// Error is the error Parse returns. Match a kind with errors.Is against the
// Err* values, or read Reason() (its String is a metric label).
type Error struct {
	reason Reason
	detail string
}

// Reason returns why Parse rejected the packet.
func (e *Error) Reason() Reason { return e.reason }

func (e *Error) Error() string {
	if e.detail == "" {
		return "vrrp packet: " + e.reason.String()
	}
	return "vrrp packet: " + e.reason.String() + ": " + e.detail
}

// Is makes errors.Is(err, packet.ErrChecksum) true for any *Error with the
// same reason, whatever its detail.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.reason == e.reason
}

func errorf(r Reason, format string, args ...any) *Error {
	return &Error{reason: r, detail: fmt.Sprintf(format, args...)}
}

// Values to match with errors.Is. They are never returned themselves and
// must not be modified.
var (
	ErrTooShort = &Error{reason: ReasonTooShort}
	ErrTooLong  = &Error{reason: ReasonTooLong}
	ErrVersion  = &Error{reason: ReasonVersion}
	ErrType     = &Error{reason: ReasonType}
	ErrAuthType = &Error{reason: ReasonAuthType}
	ErrChecksum = &Error{reason: ReasonChecksum}
	ErrFamily   = &Error{reason: ReasonFamily}

	ErrAHNextHeader = &Error{reason: ReasonAHNextHeader}
	ErrIPHeader     = &Error{reason: ReasonIPHeader}
)
