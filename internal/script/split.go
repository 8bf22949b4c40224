// Package script runs external programs the way keepalived 2.2.7 does:
// notify scripts, vrrp_script track scripts, MISC_CHECK and the notify FIFO
// script. It splits command strings as keepalived's parser does, resolves the
// user a script runs as (script_user, keepalived_script), refuses insecure
// scripts under enable_script_security (lib/notify.c check_script_secure), and
// runs each program in its own process group with a scrubbed environment and
// a timeout after which the whole group is killed.
//
// The vrrp_script runner (TrackScript) lives here too.
package script

import (
	"errors"
	"strings"
)

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
//   - an unterminated quote or a trailing lone backslash is an error.
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
					return nil, errors.New("script: missing escaped character after trailing backslash")
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
			return nil, errors.New("script: missing terminating " + string(quote))
		}
		words = append(words, string(w))
	}
	if len(words) == 0 {
		return nil, errors.New("script: empty command")
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

// shellQuote renders args as keepalived's cmd_str does for system(): each
// word in single quotes, except a first word starting with '<' or '>' (the
// "</dev/tcp/host/port" idiom). Unlike keepalived, a single quote inside a
// word is escaped ('\”) so the shell sees the word keepalived meant.
func shellQuote(args []string) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && a != "" && (a[0] == '<' || a[0] == '>') {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}
