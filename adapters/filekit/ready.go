package filekit

import (
	"fmt"
	"strings"
	"time"
)

// Readiness modes: when a file is complete and may be taken.
const (
	// ReadyStable takes a file once its size and modification time were seen
	// unchanged for StableFor, measured on this machine's clock (a remote
	// server's clock may be skewed, so its mtimes are compared, never aged).
	ReadyStable = "stable"
	// ReadyDoneFile takes NAME once the marker NAME+DoneSuffix exists; the
	// marker is removed after NAME was processed.
	ReadyDoneFile = "done_file"
	// ReadyImmediate takes every file as soon as it is seen.
	ReadyImmediate = "immediate"
)

// ReadyModes lists the readiness modes, for Spec enums.
var ReadyModes = []string{ReadyStable, ReadyDoneFile, ReadyImmediate}

// Readiness decides when a file is complete. It remembers what earlier scans
// saw of each file. It is not safe for concurrent use: one scanner owns it.
type Readiness struct {
	mode       string
	stableFor  time.Duration
	doneSuffix string
	seen       map[string]*sighting
	gen        uint64
}

type sighting struct {
	size  int64
	mtime int64
	since time.Time // when size and mtime were first seen as they are now
	gen   uint64
}

// NewReadiness returns a Readiness for mode (one of ReadyModes).
func NewReadiness(mode string, stableFor time.Duration, doneSuffix string) (*Readiness, error) {
	switch mode {
	case ReadyStable, ReadyImmediate:
	case ReadyDoneFile:
		if doneSuffix == "" {
			return nil, fmt.Errorf("ready %q needs a non-empty done suffix", mode)
		}
	default:
		return nil, fmt.Errorf("unknown readiness mode %q (known: %s)", mode, strings.Join(ReadyModes, ", "))
	}
	return &Readiness{mode: mode, stableFor: stableFor, doneSuffix: doneSuffix, seen: map[string]*sighting{}}, nil
}

// Mode returns the readiness mode.
func (r *Readiness) Mode() string { return r.mode }

// IsMarker reports whether name is a done marker (only in done_file mode):
// markers are never processed as data.
func (r *Readiness) IsMarker(name string) bool {
	return r.mode == ReadyDoneFile && strings.HasSuffix(name, r.doneSuffix)
}

// Marker returns the marker name of a data file ("" unless done_file mode).
func (r *Readiness) Marker(name string) string {
	if r.mode != ReadyDoneFile {
		return ""
	}
	return name + r.doneSuffix
}

// BeginScan starts a scan; Observe calls follow, then EndScan.
func (r *Readiness) BeginScan() { r.gen++ }

// Observe records that the scan saw name with size and mtime (Unix
// nanoseconds) at now. hasMarker tells whether its done marker exists. It
// reports whether the file is ready and, when it is not, the earliest time a
// later scan could find it ready (zero: only a change can make it ready).
func (r *Readiness) Observe(name string, size, mtime int64, hasMarker bool, now time.Time) (ready bool, retry time.Time) {
	s := r.seen[name]
	if s == nil || s.size != size || s.mtime != mtime {
		s = &sighting{size: size, mtime: mtime, since: now}
		r.seen[name] = s
	}
	s.gen = r.gen
	switch r.mode {
	case ReadyImmediate:
		return true, time.Time{}
	case ReadyDoneFile:
		return hasMarker, time.Time{}
	}
	due := s.since.Add(r.stableFor)
	if !now.Before(due) && (r.stableFor <= 0 || now.After(s.since)) {
		return true, time.Time{}
	}
	return false, due
}

// Forget drops what was seen of name (it was processed or went away).
func (r *Readiness) Forget(name string) { delete(r.seen, name) }

// EndScan forgets the files the scan did not see.
func (r *Readiness) EndScan() {
	for n, s := range r.seen {
		if s.gen != r.gen {
			delete(r.seen, n)
		}
	}
}
