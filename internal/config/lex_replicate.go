package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/internal/diag"
)

// "~SEQ" and "~LST" replication (keepalived add_seq(), add_lst()).

// pending is a line queued for processing, from a multi-line definition,
// or the lines still to come from a ~SEQ/~LST replication (gen).
type pending struct {
	text string
	pos  diag.Pos
	set  [][2]string // definitions to set before processing the text
	gen  *replicator
	// origin names the multi-line definitions the line came from.
	origin []string
}

// replicator produces the lines of a ~SEQ or ~LST one at a time, so that a
// long sequence costs no memory.
type replicator struct {
	text   string
	pos    diag.Pos
	origin []string
	// ~SEQ
	name             string
	next, step, last int64
	hex              bool
	// ~LST
	sets [][][2]string
}

// take returns the next line and whether more follow.
func (r *replicator) take() (pending, bool) {
	if r.sets != nil {
		p := pending{text: r.text, pos: r.pos, set: r.sets[0], origin: r.origin}
		r.sets = r.sets[1:]
		return p, len(r.sets) > 0
	}
	val := strconv.FormatInt(r.next, 10)
	if r.hex {
		val = strconv.FormatInt(r.next, 16)
	}
	p := pending{text: r.text, pos: r.pos, set: [][2]string{{r.name, val}}, origin: r.origin}
	r.next += r.step
	more := (r.step > 0 && r.next <= r.last) || (r.step < 0 && r.next >= r.last)
	return p, more
}

// replicate handles ~SEQ(...), ~SEQx(...) and ~LST(...) (keepalived.conf(5)
// "Sequence blocks" and "List blocks"): the rest of the line is queued once
// per value with the variable(s) set.
func (l *lexer) replicate(ln *logLine) {
	pos := ln.posAt(0)
	s := ln.text
	var r *replicator
	var n int64
	var err error
	if strings.HasPrefix(s, "~SEQ") {
		r, n, err = l.parseSeq(s[4:])
	} else {
		var sets [][][2]string
		var rest string
		sets, rest, err = parseLst(s[4:])
		r, n = &replicator{text: rest, sets: sets}, int64(len(sets))
	}
	if err != nil {
		// keepalived 2.2.7 read_line() reports "Invalid ~SEQ
		// specification" and drops the line. A line that opens or
		// closes a block cannot be dropped without taking the blocks
		// around it apart: refused.
		tail := s
		if i := strings.IndexByte(s, ')'); i >= 0 {
			tail = s[i+1:]
		}
		if strings.ContainsAny(tail, "{}") {
			l.diags.Errorf(pos, "invalid %s: %v (keepalived drops the line, and its brace with it; vigil refuses rather than read the blocks around it apart)", s[:4], err)
		} else {
			l.diags.Warnf(pos, "invalid %s: %v; the line is skipped, as keepalived does", s[:4], err)
		}
		return
	}
	if !l.takeLines(pos, n, fmt.Sprintf("%s produces %d lines, more than the budget has left (%d)", s[:4], n, l.limits.Lines-l.used.lines)) {
		return
	}
	r.pos = pos
	r.origin = ln.origin
	if len(r.text) < len(s) {
		r.pos = ln.posAt(len(s) - len(r.text))
	}
	l.pend = append([]pending{{gen: r}}, l.pend...)
}

// parseSeq parses "(var, a[, b[, c]]) rest" after "~SEQ" (keepalived
// add_seq()); a leading 'x' formats the values in hexadecimal.
func (l *lexer) parseSeq(s string) (*replicator, int64, error) {
	hex := strings.HasPrefix(s, "x")
	if hex {
		s = s[1:]
	}
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "(") {
		return nil, 0, fmt.Errorf("missing '('")
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, 0, fmt.Errorf("missing ')'")
	}
	inner := s[1:end]
	rest := strings.TrimLeft(s[end+1:], " \t")
	// Definitions may be used for the numbers.
	tmp := &logLine{text: inner, fixed: diag.Pos{Line: 1}}
	if strings.IndexByte(inner, '$') >= 0 {
		if _, ok := l.substitute(tmp); !ok {
			return nil, 0, fmt.Errorf("bad substitution")
		}
	}
	parts := strings.Split(tmp.text, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if len(parts) < 2 || len(parts) > 4 || parts[0] == "" {
		return nil, 0, fmt.Errorf("want (variable, [start, [step,]] end)")
	}
	name := parts[0]
	for i := 0; i < len(name); i++ {
		if !isNameChar(name[i]) {
			return nil, 0, fmt.Errorf("bad variable name %q", name)
		}
	}
	nums := make([]int64, 0, 3)
	for _, p := range parts[1:] {
		v, err := strconv.ParseInt(p, 0, 64)
		if err != nil || v > 1<<53 || v < -(1<<53) {
			return nil, 0, fmt.Errorf("bad number %q", p)
		}
		nums = append(nums, v)
	}
	var start, step, last int64
	switch len(nums) {
	case 1:
		last = nums[0]
		step = 1
		if last < 1 {
			step = -1
		}
		start = 1
		if last < 0 {
			start = -1
		}
	case 2:
		start, last = nums[0], nums[1]
		step = 1
		if start > last {
			step = -1
		}
	case 3:
		start, step, last = nums[0], nums[1], nums[2]
		if step == 0 || (start < last && step < 0) || (start > last && step > 0) {
			return nil, 0, fmt.Errorf("step %d never reaches %d from %d", step, last, start)
		}
	}
	if hex && (start < 0 || last < 0) {
		return nil, 0, fmt.Errorf("~SEQx is only valid for positive numbers")
	}
	n := (last-start)/step + 1
	return &replicator{text: rest, name: name, next: start, step: step, last: last, hex: hex}, n, nil
}

// parseLst parses "(var, v1, v2, ...) rest" or "({a, b}, {1, 2}, ...) rest"
// after "~LST" (keepalived add_lst()). Missing values are empty.
func parseLst(s string) ([][][2]string, string, error) {
	s = strings.TrimLeft(s, " \t")
	if !strings.HasPrefix(s, "(") {
		return nil, "", fmt.Errorf("missing '('")
	}
	depth := 0
	end := -1
	for i := 0; i < len(s) && end < 0; i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				end = i
			}
		}
	}
	if end < 0 {
		return nil, "", fmt.Errorf("missing ')'")
	}
	rest := strings.TrimLeft(s[end+1:], " \t")
	groups, err := splitLstGroups(s[1:end])
	if err != nil {
		return nil, "", err
	}
	if len(groups) < 2 {
		return nil, "", fmt.Errorf("no values")
	}
	vars := groups[0]
	for _, v := range vars {
		if v == "" {
			return nil, "", fmt.Errorf("empty variable name")
		}
		for i := 0; i < len(v); i++ {
			if !isNameChar(v[i]) {
				return nil, "", fmt.Errorf("bad variable name %q", v)
			}
		}
	}
	var sets [][][2]string
	for _, vals := range groups[1:] {
		if len(vals) > len(vars) {
			return nil, "", fmt.Errorf("too many values in a value set")
		}
		set := make([][2]string, len(vars))
		for i, name := range vars {
			set[i][0] = name
			if i < len(vals) {
				set[i][1] = vals[i]
			}
		}
		sets = append(sets, set)
	}
	return sets, rest, nil
}

// splitLstGroups splits "a, 1, 2" into [[a] [1] [2]] and "{a,b},{1,2}" into
// [[a b] [1 2]].
func splitLstGroups(s string) ([][]string, error) {
	var groups [][]string
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return nil, fmt.Errorf("missing '}'")
			}
			var g []string
			for _, f := range strings.Split(s[1:end], ",") {
				g = append(g, strings.TrimSpace(f))
			}
			groups = append(groups, g)
			s = strings.TrimLeft(s[end+1:], " \t")
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			groups = append(groups, []string{strings.TrimSpace(s[:end])})
			s = s[end:]
		}
		if s == "" {
			return groups, nil
		}
		if s[0] != ',' {
			return nil, fmt.Errorf("expected ',' at %q", s)
		}
		s = s[1:]
	}
}
