package config

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-ha/vigil/internal/diag"
)

// lexAll returns the tokens of src as "text@line:col" ('|' for an end of
// line, quoted words in "") and the diagnostics.
func lexAll(t *testing.T, files fstest.MapFS, opts Options) ([]string, diag.Diagnostics) {
	t.Helper()
	var ds diag.Diagnostics
	lx := newLexer(files, opts, &ds)
	if !lx.open("k.conf") {
		t.Fatal(ds)
	}
	var out []string
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("lexer does not stop")
		}
		tok := lx.next()
		switch tok.kind {
		case tEOF:
			return out, ds
		case tEOL:
			out = append(out, "|")
		default:
			txt := tok.text
			if tok.quoted {
				txt = `"` + txt + `"`
			}
			out = append(out, fmt.Sprintf("%s@%d:%d", txt, tok.pos.Line, tok.pos.Col))
		}
	}
}

func one(src string) fstest.MapFS { return fstest.MapFS{"k.conf": {Data: []byte(src)}} }

func TestLexer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		id    string
		want  string
		diags []string
	}{
		{name: "words and lines", src: "a b\n  c\n", want: "a@1:1 b@1:3 | c@2:3 |"},
		{name: "hash comment", src: "a b # c d\n", want: "a@1:1 b@1:3 |"},
		{name: "bang comment", src: "! whole line\na !x\n", want: "a@2:1 |"},
		{name: "comment glued to a word", src: "state MASTER#master\n", want: "state@1:1 MASTER@1:7 |"},
		{name: "escaped comment characters", src: `a \#b c\!d # e`, want: "a@1:1 #b@1:4 c!d@1:7 |"},
		{name: "comment character inside quotes", src: `a "b # c" d`, want: `a@1:1 "b # c"@1:3 d@1:11 |`},
		{name: "braces glued to words", src: "global_defs{router_id x\n}vrrp_instance VI{\n",
			want: "global_defs@1:1 {@1:12 router_id@1:13 x@1:23 | }@2:1 vrrp_instance@2:2 VI@2:16 {@2:18 |"},
		{name: "braces on one line", src: "a { b } c", want: "a@1:1 {@1:3 b@1:5 }@1:7 c@1:9 |"},
		{name: "brace inside quotes", src: `a "{x}"`, want: `a@1:1 "{x}"@1:3 |`},
		{name: "quoted word glued", src: `a"b c"d`, want: `a@1:1 "b c"@1:2 d@1:7 |`},
		{name: "crlf", src: "a\r\nb\r\n", want: "a@1:1 | b@2:1 |"},
		{name: "tabs", src: "\ta\t b", want: "a@1:2 b@1:5 |"},
		{name: "unterminated quote", src: `a "b c`, want: `a@1:1 |`, diags: []string{"1:3: warning: unterminated quoted string; the line is read up to the quote, as keepalived does"}},
		{name: "unterminated quote after an escape", src: `a \# "b c`, want: `a@1:1 #@1:4 |`, diags: []string{"1:6: warning: unterminated quoted string; the line is read up to the quote, as keepalived does"}},
		{name: "conditional match", id: "n1", src: "@n1 a b\n", want: "a@1:5 b@1:7 |"},
		{name: "conditional no match", id: "n1", src: "@n2 a\nb\n", want: "b@2:1 |"},
		{name: "negated conditional", id: "n1", src: "@^n2 a\n@^n1 b\n", want: "a@1:6 |"},
		{name: "conditional without id", src: "@n1 a\n@^n1 b\n", want: "b@2:6 |"},
		{name: "conditional without text", id: "n1", src: "@n1\nb\n", want: "b@2:1 |"},
		{name: "definition and use", src: "$X=foo\na $X b\n", want: "a@2:1 foo@2:3 b@2:6 |"},
		{name: "braced use", src: "$X=foo\na ${X}bar\n", want: "a@2:1 foobar@2:3 |"},
		{name: "use must end a word", src: "$X=foo\na $Xbar\n", want: "a@2:1 $Xbar@2:3 |"},
		{name: "recursive definitions", src: "$B=10.2.${S}\n$S=0\na ${B}.1\n$S=7\na ${B}.1\n", want: "a@3:1 10.2.0.1@3:3 | a@5:1 10.2.7.1@5:3 |"},
		// keepalived leaves an undefined use as it is, and then splits
		// "${Y}" at its braces like any other text.
		{name: "undefined stays", src: "$X=1\na ${Y} $Z\n", want: "a@2:1 $@2:3 {@2:4 Y@2:5 }@2:6 $Z@2:8 |"},
		{name: "space before = is no definition", src: "$X =1\n", want: "$X@1:1 =1@1:4 |"},
		{name: "empty definition", src: "$E=\na $E b\n", want: "a@2:1 b@2:6 |"},
		{name: "definition value with comment", src: "$X=a # b\nz $X\n", want: "z@2:1 a@2:3 |"},
		{name: "multi-line definition", src: "$M= \\\nx { \\\n y 1 \\\n}\n\n$M\n",
			want: "x@6:1 {@6:1 | y@6:1 1@6:1 | }@6:1 |"},
		{name: "multi-line definition used mid-line is not expanded", src: "$M= \\\nx \\\ny\n\na $M b\n", want: "a@5:1 $M@5:3 b@5:6 |"},
		{name: "conditional inside a definition", id: "n1", src: "$M= \\\n@n1 a \\\n@n2 b\n\n$M\n", want: "a@5:1 |"},
		// keepalived.conf(5): "The use of multiline definitions can be
		// nested."
		{name: "nested multi-line definitions", src: "$RS= \\\nrs ${N} \\\nend\n\n$VS= \\\nvs \\\n$N=1 \\\n$RS \\\n$N=2 \\\n$RS\n\n$VS\n",
			want: "vs@12:1 | rs@12:1 1@12:1 | end@12:1 | rs@12:1 2@12:1 | end@12:1 |"},
		{name: "multi-line definition using itself", src: "$M= \\\na \\\n$M\n\n$M\n", want: "a@5:1 |",
			diags: []string{"5:1: error: multi-line definition $M uses itself"}},
		{name: "instance", id: "node7", src: "a ${_INSTANCE}\n", want: "a@1:1 node7@1:3 |"},
		{name: "hash and bang", src: "a x${_BANG}y\n", want: "a@1:1 x@1:3 |"},
		{name: "random is seeded", src: "a ${_RANDOM 5 5}\n", want: "a@1:1 5@1:3 |"},
		{name: "seq", src: "~SEQ(i, 1, 3) a ${i}\n", want: "a@1:15 1@1:15 | a@1:15 2@1:15 | a@1:15 3@1:15 |"},
		{name: "seq step and default start", src: "~SEQ(i, 2) ${i}\n~SEQ(j, 9, -4, 1) ${j}\n", want: "1@1:12 | 2@1:12 | 9@2:19 | 5@2:19 | 1@2:19 |"},
		{name: "seqx", src: "~SEQx(i, 0x9, 0xb) ${i}\n", want: "9@1:20 | a@1:20 | b@1:20 |"},
		{name: "nested seq", src: "~SEQ(a, 1, 2) ~SEQ(b, 1, 2) ${a}${b}\n", want: "11@1:15 | 12@1:15 | 21@1:15 | 22@1:15 |"},
		{name: "lst", src: "~LST(x, p, q) ${x}\n", want: "p@1:15 | q@1:15 |"},
		{name: "lst sets", src: "~LST({a, b}, {1, 2}, {3}) ${a}-${b}.\n", want: "1-2.@1:27 | 3-.@1:27 |"},
		// keepalived 2.2.7 drops the line ("Invalid ~SEQ specification")
		// and reads on.
		{name: "bad seq", src: "~SEQ(i, 1, 0, 3) x\ny\n", want: "y@2:1 |", diags: []string{"1:1: warning: invalid ~SEQ: step 0 never reaches 3 from 1; the line is skipped, as keepalived does"}},
		{name: "bad seq opening a block", src: "~SEQ(i, 1, 0, 3) x {\n", want: "", diags: []string{"1:1: error: invalid ~SEQ: step 0 never reaches 3 from 1 (keepalived drops the line, and its brace with it; vigil refuses rather than read the blocks around it apart)"}},
		{name: "self reference", src: "$A=x $A\nb $A\n", want: "", diags: []string{"2:1: error: parameter substitution does not terminate"}},
		{name: "long line", src: "a " + strings.Repeat("x", 1100), want: "a@1:1 " + strings.Repeat("x", 1100) + "@1:3 |",
			diags: []string{"1:1024: warning: line is 1102 bytes long; keepalived 2.2.7 reads at most 1023 bytes per line and would split it here"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, ds := lexAll(t, one(tc.src), Options{ConfigID: tc.id, RandomSeed: 1})
			if diff := cmp.Diff(tc.want, strings.Join(toks, " ")); diff != "" {
				t.Errorf("tokens (-want +got):\n%s", diff)
			}
			var got []string
			for _, d := range ds {
				got = append(got, fmt.Sprintf("%d:%d: %s: %s", d.Pos.Line, d.Pos.Col, d.Severity, d.Msg))
			}
			if diff := cmp.Diff(tc.diags, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandBraces(t *testing.T) {
	for in, want := range map[string][]string{
		"a":               {"a"},
		"a{b,c}d":         {"abd", "acd"},
		"{x,y{1,2}}.conf": {"x.conf", "y1.conf", "y2.conf"},
		"a{,b}":           {"a", "ab"},
		"unbalanced{":     {"unbalanced{"},
	} {
		if diff := cmp.Diff(want, mustExpand(t, in)); diff != "" {
			t.Errorf("expandBraces(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func TestInclude(t *testing.T) {
	vi := func(n int) string {
		return fmt.Sprintf("vrrp_instance VI_%d {\ninterface eth0\nvirtual_router_id %d\nvirtual_ipaddress {\n10.0.0.%d\n}\n}\n", n, n, n)
	}
	for _, tc := range []struct {
		name      string
		files     fstest.MapFS
		root      string
		wantInst  []string
		wantFiles []string
		diags     []string
	}{
		{
			name: "relative glob and braces",
			files: fstest.MapFS{
				"etc/k.conf":        {Data: []byte("include conf.d/*.conf\ninclude x/{a,b}.inc\n")},
				"etc/conf.d/2.conf": {Data: []byte(vi(2))},
				"etc/conf.d/1.conf": {Data: []byte(vi(1))},
				"etc/x/a.inc":       {Data: []byte(vi(3))},
				"etc/x/b.inc":       {Data: []byte(vi(4))},
			},
			wantInst:  []string{"VI_1", "VI_2", "VI_3", "VI_4"},
			wantFiles: []string{"etc/k.conf", "etc/conf.d/1.conf", "etc/conf.d/2.conf", "etc/x/a.inc", "etc/x/b.inc"},
		},
		{
			name: "nested include is relative to the including file",
			files: fstest.MapFS{
				"etc/k.conf":       {Data: []byte("include sub/one.conf\n")},
				"etc/sub/one.conf": {Data: []byte("include two.conf\n")},
				"etc/sub/two.conf": {Data: []byte(vi(5))},
			},
			wantInst:  []string{"VI_5"},
			wantFiles: []string{"etc/k.conf", "etc/sub/one.conf", "etc/sub/two.conf"},
		},
		{
			name:      "absolute include under Root",
			root:      "/",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("include /srv/vi.conf\n")}, "srv/vi.conf": {Data: []byte(vi(6))}},
			wantInst:  []string{"VI_6"},
			wantFiles: []string{"/etc/k.conf", "/srv/vi.conf"},
		},
		{
			name:      "missing files",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("include none.conf\nincludem none.conf\nincludew none*.conf\nincludeb {none,k}.conf\ninclude none*.conf\n")}},
			wantFiles: []string{"etc/k.conf"},
			diags: []string{
				"etc/k.conf:1:1: warning: include none.conf: none.conf: no such file",
				"etc/k.conf:2:1: error: include none.conf: none.conf: no such file",
				"etc/k.conf:3:1: error: include none*.conf: none*.conf matches no file",
				"etc/k.conf:4:1: error: include {none,k}.conf: none.conf: no such file",
				"etc/k.conf:4:1: error: include loop: etc/k.conf is already being read",
				"etc/k.conf:5:1: warning: include none*.conf: none*.conf matches no file",
			},
		},
		{
			name:      "include_check makes a plain include strict",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("global_defs {\ninclude_check\n}\ninclude none.conf\n")}},
			wantFiles: []string{"etc/k.conf"},
			diags:     []string{"etc/k.conf:4:1: error: include none.conf: none.conf: no such file"},
		},
		{
			name:      "cycle",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("include a.conf\n")}, "etc/a.conf": {Data: []byte("include k.conf\n")}},
			wantFiles: []string{"etc/k.conf", "etc/a.conf"},
			diags:     []string{"etc/a.conf:1:1: error: include loop: etc/k.conf is already being read"},
		},
		{
			name:      "outside the root",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("include ../../x.conf\n")}},
			wantFiles: []string{"etc/k.conf"},
			diags:     []string{"etc/k.conf:1:1: warning: include ../../x.conf: ../../x.conf is outside the configuration root"},
		},
		{
			name:      "diagnostics in an included file point into it",
			files:     fstest.MapFS{"etc/k.conf": {Data: []byte("include a.conf\n")}, "etc/a.conf": {Data: []byte("\n  bogus_kw\n")}},
			wantFiles: []string{"etc/k.conf", "etc/a.conf"},
			diags:     []string{`etc/a.conf:2:3: warning: unknown keyword "bogus_kw" at the top level; ignored`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := Load(tc.files, "etc/k.conf", Options{Root: tc.root})
			var inst []string
			for _, vi := range cfg.Instances {
				inst = append(inst, vi.Name)
			}
			if diff := cmp.Diff(tc.wantInst, inst); diff != "" {
				t.Errorf("instances (-want +got):\n%s", diff)
			}
			if tc.wantFiles != nil {
				if diff := cmp.Diff(tc.wantFiles, cfg.Files); diff != "" {
					t.Errorf("files (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(tc.diags, strings.Split(strings.TrimSpace(dumpDiags(ds)), "\n"), cmp.Comparer(func(a, b []string) bool {
				return strings.Join(a, "\n") == strings.Join(b, "\n")
			})); diff != "" && !(len(tc.diags) == 0 && len(ds) == 0) {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func mustExpand(t *testing.T, s string) []string {
	t.Helper()
	out, ok := expandBraces(s, 1000)
	if !ok {
		t.Fatalf("expandBraces(%q): over 1000", s)
	}
	return out
}
