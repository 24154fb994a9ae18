package filekit

import (
	"fmt"
	"path"
	"strings"
)

// Matcher selects files by include and exclude globs.
//
// Names are slash-separated paths relative to the watched directory. A
// pattern without "/" is matched against the base name, at any depth; a
// pattern with "/" is matched against the whole relative path, and "**" in
// it stands for any number of directories ("in/**/*.csv"). The syntax of
// one segment is path.Match's: *, ?, [a-z], \ escapes. A file is selected
// when an include pattern matches and no exclude pattern does. Directories
// whose path an exclude pattern matches are not descended into. Names
// starting with "." (temp files of senders and of Sluice's own sink) are
// skipped unless Hidden is set.
//
// A Matcher is immutable and safe for concurrent use.
type Matcher struct {
	include, exclude []glob
	recursive        bool
	hidden           bool
}

type glob struct {
	src  string
	segs []string // nil: match the base name against src
}

// MatcherOptions configure NewMatcher.
type MatcherOptions struct {
	Include   []string // default ["*"]
	Exclude   []string
	Recursive bool // descend into subdirectories
	Hidden    bool // select names starting with "."
}

// NewMatcher compiles the patterns; a malformed one is an error naming it.
func NewMatcher(o MatcherOptions) (*Matcher, error) {
	m := &Matcher{recursive: o.Recursive, hidden: o.Hidden}
	inc := o.Include
	if len(inc) == 0 {
		inc = []string{"*"}
	}
	var err error
	if m.include, err = compileGlobs(inc); err != nil {
		return nil, err
	}
	if m.exclude, err = compileGlobs(o.Exclude); err != nil {
		return nil, err
	}
	return m, nil
}

func compileGlobs(pats []string) ([]glob, error) {
	out := make([]glob, 0, len(pats))
	for _, p := range pats {
		if p == "" {
			return nil, fmt.Errorf("empty glob pattern")
		}
		g := glob{src: p}
		if strings.Contains(p, "/") {
			g.segs = strings.Split(strings.Trim(p, "/"), "/")
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("glob pattern %q: %v", p, err)
		}
		out = append(out, g)
	}
	return out, nil
}

// CheckGlobs reports the first malformed pattern, for Spec checks.
func CheckGlobs(pats []string) error {
	_, err := compileGlobs(pats)
	return err
}

func (g glob) match(rel string) bool {
	if g.segs == nil {
		ok, _ := path.Match(g.src, path.Base(rel))
		return ok
	}
	return matchSegs(g.segs, strings.Split(rel, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			pat = pat[1:]
			if len(pat) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

func anyMatch(gs []glob, rel string) bool {
	for _, g := range gs {
		if g.match(rel) {
			return true
		}
	}
	return false
}

// Match reports whether the file rel is selected.
func (m *Matcher) Match(rel string) bool {
	if !m.hidden && strings.HasPrefix(path.Base(rel), ".") {
		return false
	}
	if !m.recursive && strings.Contains(rel, "/") {
		return false
	}
	return anyMatch(m.include, rel) && !anyMatch(m.exclude, rel)
}

// Descend reports whether the directory rel is to be listed.
func (m *Matcher) Descend(rel string) bool {
	if !m.recursive {
		return false
	}
	if !m.hidden && strings.HasPrefix(path.Base(rel), ".") {
		return false
	}
	return !anyMatch(m.exclude, rel)
}

// Recursive reports whether subdirectories are listed.
func (m *Matcher) Recursive() bool { return m.recursive }
