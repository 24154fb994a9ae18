package transform

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// String functions. expr's builtins already cover trim, upper, lower,
// replace, split, join, indexOf, repeat, trimPrefix, trimSuffix and the
// operators contains, startsWith, endsWith and matches; docs/functions.md
// documents them. The functions here add what they lack. Arguments that
// take text accept strings, bytes and scalars (numbers, decimals, bools,
// written as to_string writes them); nil in gives nil out, or false for
// predicates.

var regexpType = reflect.TypeOf((*regexp.Regexp)(nil))

func init() {
	str := func(n string) libParam { return libParam{n, kStr} }
	registerLib(
		libFunc{name: "trim_left", params: []libParam{str("s"), str("cutset")}, opt: 1,
			doc: "trim_left(s[, cutset]) → string: s without leading white space, or without leading characters found in cutset; nil gives nil",
			fn:  func(a []any) (any, error) { return trimSide(a, strings.TrimLeft, strings.TrimLeftFunc) }},
		libFunc{name: "trim_right", params: []libParam{str("s"), str("cutset")}, opt: 1,
			doc: "trim_right(s[, cutset]) → string: s without trailing white space, or without trailing characters found in cutset; nil gives nil",
			fn:  func(a []any) (any, error) { return trimSide(a, strings.TrimRight, strings.TrimRightFunc) }},
		libFunc{name: "pad_left", params: []libParam{str("s"), {"width", kInt}, str("char")}, opt: 1,
			doc: "pad_left(s, width[, char]) → string: s preceded by char (default a space) up to width characters; a longer s is returned unchanged: pad_left(42, 6, \"0\") is \"000042\"; nil gives nil",
			fn:  func(a []any) (any, error) { return pad(a, true) }},
		libFunc{name: "pad_right", params: []libParam{str("s"), {"width", kInt}, str("char")}, opt: 1,
			doc: "pad_right(s, width[, char]) → string: s followed by char (default a space) up to width characters; a longer s is returned unchanged; nil gives nil",
			fn:  func(a []any) (any, error) { return pad(a, false) }},
		libFunc{name: "substr", params: []libParam{str("s"), {"start", kInt}, {"length", kInt}}, opt: 1,
			doc: "substr(s, start[, length]) → string: length characters (runes) of s from start (0-based; negative counts from the end), or to the end; ranges past either end are clipped, never an error: substr(\"ABCDEF\", 2, 3) is \"CDE\", substr(\"AB\", 5) is \"\"; nil gives nil",
			fn:  substr},
		libFunc{name: "starts_with", params: []libParam{str("s"), str("prefix")}, out: boolType,
			doc: "starts_with(s, prefix) → bool: s begins with prefix (same as the startsWith operator and hasPrefix); nil s gives false",
			fn: func(a []any) (any, error) {
				return affix(a, "prefix", strings.HasPrefix)
			}},
		libFunc{name: "ends_with", params: []libParam{str("s"), str("suffix")}, out: boolType,
			doc: "ends_with(s, suffix) → bool: s ends with suffix (same as the endsWith operator and hasSuffix); nil s gives false",
			fn: func(a []any) (any, error) {
				return affix(a, "suffix", strings.HasSuffix)
			}},
		libFunc{name: "regex_match", params: []libParam{str("s"), {"pattern", kRegexp}}, out: boolType,
			doc: "regex_match(s, pattern) → bool: some part of s matches the RE2 pattern (anchor with ^…$ to match all of s); nil s gives false",
			fn: func(a []any) (any, error) {
				s, ok, re, err := regexArgs(a)
				if err != nil || !ok {
					return false, err
				}
				return re.MatchString(s), nil
			}},
		libFunc{name: "regex_extract", params: []libParam{str("s"), {"pattern", kRegexp}, {"group", kAny}}, opt: 1,
			doc: "regex_extract(s, pattern[, group]) → string: the first match of pattern in s, or its capture group given by number (0 is the whole match) or name; no match gives nil; nil s gives nil",
			fn:  regexExtract},
		libFunc{name: "regex_replace", params: []libParam{str("s"), {"pattern", kRegexp}, str("replacement")},
			doc: "regex_replace(s, pattern, replacement) → string: s with every match of pattern replaced; $1 or ${name} in replacement insert capture groups ($$ is a dollar sign); nil s gives nil",
			fn: func(a []any) (any, error) {
				s, ok, re, err := regexArgs(a)
				if err != nil || !ok {
					return nil, err
				}
				repl, ok, err := textOf(2, "replacement", a[2])
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, argError(2, "replacement", "a string", nil)
				}
				return re.ReplaceAllString(s, repl), nil
			}},
	)
	for _, name := range []string{"regex_match", "regex_extract", "regex_replace"} {
		constArgs[name] = append(constArgs[name], constArg{index: 1, typ: regexpType,
			prepare: func(s string) (any, error) { return cachedRegexp(s) }})
	}
}

func trimSide(a []any, cut func(string, string) string, space func(string, func(rune) bool) string) (any, error) {
	s, ok, err := textOf(0, "s", a[0])
	if err != nil || !ok {
		return nil, err
	}
	if len(a) == 1 {
		return space(s, unicode.IsSpace), nil
	}
	set, ok, err := textOf(1, "cutset", a[1])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, argError(1, "cutset", "a string", nil)
	}
	return cut(s, set), nil
}

// maxPadWidth bounds pad widths: a record field holding a huge width must
// not allocate gigabytes.
const maxPadWidth = 1 << 20

func pad(a []any, left bool) (any, error) {
	s, ok, err := textOf(0, "s", a[0])
	if err != nil || !ok {
		return nil, err
	}
	width, err := intOf(1, "width", a[1])
	if err != nil {
		return nil, err
	}
	if width < 0 || width > maxPadWidth {
		return nil, fmt.Errorf("argument 2 (width) must be between 0 and %d, got %d", maxPadWidth, width)
	}
	char := " "
	if len(a) > 2 {
		c, ok, err := textOf(2, "char", a[2])
		if err != nil {
			return nil, err
		}
		if !ok || utf8.RuneCountInString(c) != 1 {
			return nil, argError(2, "char", "one character", a[2])
		}
		char = c
	}
	n := int(width) - utf8.RuneCountInString(s)
	if n <= 0 {
		return s, nil
	}
	if left {
		return strings.Repeat(char, n) + s, nil
	}
	return s + strings.Repeat(char, n), nil
}

func substr(a []any) (any, error) {
	s, ok, err := textOf(0, "s", a[0])
	if err != nil || !ok {
		return nil, err
	}
	start, err := intOf(1, "start", a[1])
	if err != nil {
		return nil, err
	}
	n := int64(utf8.RuneCountInString(s))
	if start < 0 {
		start = max(n+start, 0)
	}
	end := n
	if len(a) > 2 {
		length, err := intOf(2, "length", a[2])
		if err != nil {
			return nil, err
		}
		end = min(start+max(length, 0), n)
	}
	if start >= end {
		return "", nil
	}
	if n == int64(len(s)) { // ASCII: byte offsets are rune offsets
		return s[start:end], nil
	}
	r := []rune(s)
	return string(r[start:end]), nil
}

func affix(a []any, name string, test func(string, string) bool) (any, error) {
	s, ok, err := textOf(0, "s", a[0])
	if err != nil || !ok {
		return false, err
	}
	x, ok, err := textOf(1, name, a[1])
	if err != nil {
		return false, err
	}
	if !ok {
		return false, argError(1, name, "a string", nil)
	}
	return test(s, x), nil
}

// regexArgs reads the subject (ok is false for nil) and the pattern.
func regexArgs(a []any) (s string, ok bool, re *regexp.Regexp, err error) {
	s, ok, err = textOf(0, "s", a[0])
	if err != nil {
		return "", false, nil, err
	}
	switch p := a[1].(type) {
	case *regexp.Regexp:
		re = p
	case string:
		re, err = cachedRegexp(p)
		if err != nil {
			return "", false, nil, fmt.Errorf("argument 2 (pattern): %w", err)
		}
	default:
		return "", false, nil, argError(1, "pattern", "a string", a[1])
	}
	return s, ok, re, nil
}

func regexExtract(a []any) (any, error) {
	s, ok, re, err := regexArgs(a)
	if err != nil || !ok {
		return nil, err
	}
	group := 0
	if len(a) > 2 {
		switch g := a[2].(type) {
		case string:
			group = re.SubexpIndex(g)
			if group < 0 {
				return nil, fmt.Errorf("argument 3 (group): pattern %q has no group named %q", re.String(), g)
			}
		default:
			n, err := intOf(2, "group", g)
			if err != nil {
				return nil, argError(2, "group", "a group number or name", g)
			}
			if n < 0 || n > int64(re.NumSubexp()) {
				return nil, fmt.Errorf("argument 3 (group): pattern %q has no group %d (it has %d)", re.String(), n, re.NumSubexp())
			}
			group = int(n)
		}
	}
	m := re.FindStringSubmatchIndex(s)
	if m == nil {
		return nil, nil
	}
	if m[2*group] < 0 {
		return "", nil // the group did not take part in the match
	}
	return s[m[2*group]:m[2*group+1]], nil
}

// Compiled regular expressions by pattern. Constant patterns are compiled
// once at compile time; patterns computed at run time are cached too, with
// a bound so that patterns taken from records cannot grow it forever.
var (
	regexpMu    sync.RWMutex
	regexpCache = map[string]*regexp.Regexp{}
)

const regexpCacheMax = 512

func cachedRegexp(p string) (*regexp.Regexp, error) {
	regexpMu.RLock()
	re, ok := regexpCache[p]
	regexpMu.RUnlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	regexpMu.Lock()
	if len(regexpCache) >= regexpCacheMax {
		clear(regexpCache)
	}
	regexpCache[p] = re
	regexpMu.Unlock()
	return re, nil
}
