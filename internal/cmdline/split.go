// Package cmdline splits command lines the way keepalived 2.2.7's parser
// does (lib/parser.c alloc_strvec_quoted_escaped): for the configuration's
// script lines, notify scripts, vrrp_script, MISC_CHECK's misc_path. It is
// pure and shared by the configuration parser, the script runner and the
// checkers, so all three read a command line alike.
package cmdline

import (
	"strings"
)

// SyntaxError is a command line Split cannot read.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return "cmdline: " + e.Msg }

// whiteSpace is keepalived's WHITE_SPACE_STR (lib/parser.c).
const whiteSpace = " \t\f\n\r\v"

// Split splits a command string into words as keepalived 2.2.7 does for
// script commands (lib/parser.c alloc_strvec_quoted_escaped, applied by
// notify.c set_script_params_array to the already-unquoted second word of a
// `script`, `notify_master`, ... line):
//
//   - words are separated by spaces, tabs, and other C white space;
//   - '...' and "..." quote, and may abut unquoted text in the same word
//     (a"b c"d is one word, `ab cd`); an empty pair makes an empty word;
//   - backslash escapes apply inside and outside both kinds of quote:
//     \a \b \E \f \n \r \t \v, \xHH... (all following hex digits), \cX
//     (control-X), \NNN (up to three octal digits); any other escaped byte
//     stands for itself (\" \' \\ \ );
//   - an unterminated quote or a trailing lone backslash is an error;
//   - a line of blanks gives no words (callers decide whether that is
//     allowed).
//
// No shell is involved: `notify_master "/etc/ka/n.sh 'a b' c"` runs
// /etc/ka/n.sh with the two arguments "a b" and "c". A line that wants a shell
// names one: `script "/bin/sh -c 'pidof nginx'"`.
func Split(s string) ([]string, error) {
	var words []string
	i := 0
	for i < len(s) {
		for i < len(s) && strings.IndexByte(whiteSpace, s[i]) >= 0 {
			i++
		}
		if i >= len(s) {
			break
		}
		var w []byte
		var quote byte
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\\':
				i++
				if i >= len(s) {
					return nil, &SyntaxError{Msg: "trailing backslash escapes nothing"}
				}
				var b byte
				b, i = unescape(s, i)
				w = append(w, b)
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				w = append(w, c)
				i++
			case c == '"' || c == '\'':
				quote = c
				i++
			case strings.IndexByte(whiteSpace, c) >= 0:
				break word
			default:
				w = append(w, c)
				i++
			}
		}
		if quote != 0 {
			return nil, &SyntaxError{Msg: "missing closing " + string(quote)}
		}
		words = append(words, string(w))
	}
	return words, nil
}

// unescape decodes the escape whose first byte (after the backslash) is
// s[i], returning the byte and the index after the escape.
func unescape(s string, i int) (byte, int) {
	c := s[i]
	switch {
	case c == 'x' && i+1 < len(s) && digitValue(s[i+1]) < 16:
		// keepalived consumes every following hex digit, keeping the low
		// eight bits.
		var b byte
		i++
		for i < len(s) && digitValue(s[i]) < 16 {
			b = b<<4 | byte(digitValue(s[i]))
			i++
		}
		return b, i
	case c == 'c' && i+1 < len(s):
		return s[i+1] & 0x1f, i + 2
	case '0' <= c && c <= '7':
		b := c - '0'
		i++
		for n := 0; n < 2 && i < len(s) && '0' <= s[i] && s[i] <= '7'; n++ {
			b = b<<3 + (s[i] - '0')
			i++
		}
		return b, i
	}
	switch c {
	case 'a':
		c = '\a'
	case 'b':
		c = '\b'
	case 'E':
		c = 0x1b
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'v':
		c = '\v'
	}
	return c, i + 1
}

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
