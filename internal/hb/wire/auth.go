package wire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrAuth is a packet that fails authentication.
var ErrAuth = errors.New("wire: authentication failed")

// Method is one authkeys method.
type Method struct {
	Type string // "crc", "md5", "sha1"
	Key  string
}

// Auth is the set of authkeys methods and the one used to sign.
type Auth struct {
	Active  int
	Methods map[int]Method
}

// Digest computes a method's digest of data as heartbeat's HBauth plugins
// do:
//   - crc (lib/plugins/HBauth/crc.c): the POSIX cksum CRC-32 (polynomial
//     0x04C11DB7, MSB first, initial 0, no length appended), complemented,
//     printed "%lx" (lowercase, no padding);
//   - md5 (md5.c + clplumbing/md5.c HMAC): HMAC-MD5 with the key, 32 hex digits;
//   - sha1 (sha1.c): HMAC-SHA1 with the key, 40 hex digits.
func (m Method) Digest(data []byte) (string, error) {
	switch m.Type {
	case "crc":
		return strconv.FormatUint(uint64(CRC(data)), 16), nil
	case "md5":
		h := hmac.New(md5.New, []byte(m.Key))
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil)), nil
	case "sha1":
		h := hmac.New(sha1.New, []byte(m.Key))
		h.Write(data)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	return "", fmt.Errorf("wire: unknown auth method %q", m.Type)
}

// CRC is heartbeat's crc.c checksum.
func CRC(data []byte) uint32 {
	var crc uint32
	for _, c := range data {
		crc = crc<<8 ^ crcTable[byte(crc>>24)^c]
	}
	return ^crc
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Sign returns "N digest" with the active method (heartbeat's "%d %s").
func (a *Auth) Sign(data []byte) (string, error) {
	m, ok := a.Methods[a.Active]
	if !ok {
		return "", fmt.Errorf("wire: auth %d is not defined", a.Active)
	}
	d, err := m.Digest(data)
	if err != nil {
		return "", err
	}
	return strconv.Itoa(a.Active) + " " + d, nil
}

// Check verifies a "N digest" token against data. Like heartbeat, it
// accepts any method listed in authkeys, not only the active one
// (isauthentic / is_auth_netstring look the number up).
func (a *Auth) Check(data []byte, token string) error {
	f := strings.Fields(token)
	if len(f) != 2 {
		return fmt.Errorf("%w: malformed token %q", ErrAuth, token)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return fmt.Errorf("%w: malformed token %q", ErrAuth, token)
	}
	m, ok := a.Methods[n]
	if !ok {
		return fmt.Errorf("%w: method %d not in authkeys", ErrAuth, n)
	}
	want, err := m.Digest(data)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(f[1])) != 1 {
		return fmt.Errorf("%w: digest mismatch (method %d %s)", ErrAuth, n, m.Type)
	}
	return nil
}
