package track

// maxFileRead is how much of a track file keepalived reads (a 128-byte
// buffer, one byte kept for the terminating NUL).
const maxFileRead = 127

// ParseFileValue reads a track_file's contents as keepalived 2.2.7 does
// (track_file.c process_track_file): the first 127 bytes are parsed with C's
// strtol(buf, NULL, 0), so leading white space and a sign are accepted, "0x"
// introduces hexadecimal and a leading "0" octal, parsing stops at the first
// byte that is not a digit, and text without a number reads as 0. A number
// outside [-2^31, 2^31] is rejected (ok false): keepalived logs "Invalid
// number" and keeps the previous value. Empty contents read as 0.
func ParseFileValue(b []byte) (v int64, ok bool) {
	if len(b) > maxFileRead {
		b = b[:maxFileRead]
	}
	for i, c := range b {
		if c == 0 { // a C string ends at NUL
			b = b[:i]
			break
		}
	}
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := uint64(10)
	switch {
	case i+2 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && digitValue(b[i+2]) < 16:
		base = 16
		i += 2
	case i < len(b) && b[i] == '0':
		base = 8
	}
	// keepalived accepts INT32_MIN..INT32_MAX+1: a magnitude of at most 2^31
	// either way. Anything larger (including what strtol reports as ERANGE)
	// is rejected.
	const limit = 1 << 31
	var mag uint64
	for ; i < len(b); i++ {
		d := uint64(digitValue(b[i]))
		if d >= base {
			break
		}
		mag = mag*base + d
		if mag > limit {
			return 0, false
		}
	}
	if neg {
		return -int64(mag), true
	}
	return int64(mag), true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// digitValue is c's value as a digit in bases up to 16, or 255.
func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return 255
}
