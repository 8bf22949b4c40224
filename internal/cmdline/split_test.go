package cmdline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "one word", in: "/etc/keepalived/check.sh", want: []string{"/etc/keepalived/check.sh"}},
		{
			// keepalived.conf: notify_master "/path/script.sh arg" -> the
			// unquoted second word is split again.
			name: "notify line with argument", in: "/path/script.sh arg",
			want: []string{"/path/script.sh", "arg"},
		},
		{name: "runs of blanks", in: " \t/bin/x   a\tb  ", want: []string{"/bin/x", "a", "b"}},
		{name: "single quotes keep a word", in: `/bin/n.sh 'a b' c`, want: []string{"/bin/n.sh", "a b", "c"}},
		{name: "double quotes keep a word", in: `/bin/n.sh "a  b"`, want: []string{"/bin/n.sh", "a  b"}},
		{name: "quotes abut text", in: `a"b c"d e`, want: []string{"ab cd", "e"}},
		{name: "other quote inside quotes", in: `x "it's" 'say "hi"'`, want: []string{"x", "it's", `say "hi"`}},
		{name: "empty quotes make an empty word", in: `x '' ""`, want: []string{"x", "", ""}},
		{name: "escaped blank joins", in: `/a\ b c`, want: []string{"/a b", "c"}},
		{name: "escaped quote", in: `x \"y\" 'a\'b'`, want: []string{"x", `"y"`, "a'b"}},
		{name: "escapes inside double quotes", in: `"a\tb\nc\\d"`, want: []string{"a\tb\nc\\d"}},
		{name: "C escapes", in: `\a\b\E\f\n\r\t\v`, want: []string{"\a\b\x1b\f\n\r\t\v"}},
		{name: "hex escape takes all hex digits, keeps the low byte", in: `\x41\x4a4b`, want: []string{"AK"}},
		{name: "hex without digits is x", in: `\xg`, want: []string{"xg"}},
		{name: "control escape", in: `\cA\c[`, want: []string{"\x01\x1b"}},
		{name: "octal up to three digits", in: `\101\0\1234`, want: []string{"A\x00S4"}},
		{name: "octal wraps to a byte", in: `\777`, want: []string{"\xff"}},
		{name: "unknown escape is the byte", in: `\q\\`, want: []string{`q\`}},
		{name: "shell command is not interpreted", in: `/bin/sh -c 'pidof nginx || exit 1'`, want: []string{"/bin/sh", "-c", "pidof nginx || exit 1"}},
		{name: "dev tcp idiom", in: `</dev/tcp/127.0.0.1/80`, want: []string{"</dev/tcp/127.0.0.1/80"}},
		{name: "unterminated double quote", in: `x "abc`, wantErr: `missing closing "`},
		{name: "unterminated single quote", in: `x 'abc`, wantErr: `missing closing '`},
		{name: "trailing backslash", in: `x \`, wantErr: "trailing backslash"},
		{name: "blanks give no words", in: "  ", want: nil},
		{name: "nothing gives no words", in: "", want: nil},
		{name: "C escapes", in: `/bin/x \t\n\x41\101\cA\E`, want: []string{"/bin/x", "\t\nAA\x01\x1b"}},
		{name: "quotes inside a word", in: `/bin/x a" b "c`, want: []string{"/bin/x", "a b c"}},
		{name: "tutorial misc_path", in: "/etc/keepalived/test.sh 192.168.118.131 80", want: []string{"/etc/keepalived/test.sh", "192.168.118.131", "80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Split(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Split(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// quoteForSplit renders words so that Split returns them: each word in
// single quotes with backslash and single quote escaped.
func quoteForSplit(words []string) string {
	var b strings.Builder
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		for j := 0; j < len(w); j++ {
			if w[j] == '\\' || w[j] == '\'' {
				b.WriteByte('\\')
			}
			b.WriteByte(w[j])
		}
		b.WriteByte('\'')
	}
	return b.String()
}

// FuzzSplit: Split never panics, and words quoted with quoteForSplit come
// back unchanged (round trip).
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`/bin/x 'a b'`, `"\x41`, `\`, `a"b"c`, "x\x00y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Split(s)
		words := strings.Split(s, "\x00")
		got, err := Split(quoteForSplit(words))
		if err != nil {
			t.Fatalf("Split(quote(%q)): %v", words, err)
		}
		if diff := cmp.Diff(words, got); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
