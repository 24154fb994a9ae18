package filekit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func TestMatcher(t *testing.T) {
	cases := []struct {
		opts MatcherOptions
		rel  string
		want bool
	}{
		{MatcherOptions{}, "a.csv", true},
		{MatcherOptions{}, ".a.csv", false},
		{MatcherOptions{Hidden: true}, ".a.csv", true},
		{MatcherOptions{}, "sub/a.csv", false}, // not recursive
		{MatcherOptions{Recursive: true}, "sub/a.csv", true},
		{MatcherOptions{Include: []string{"ORD*.csv"}}, "ORD1.csv", true},
		{MatcherOptions{Include: []string{"ORD*.csv"}}, "ord1.csv", false},
		{MatcherOptions{Include: []string{"*.csv"}, Exclude: []string{"*_tmp.csv"}}, "a_tmp.csv", false},
		{MatcherOptions{Include: []string{"in/**/*.csv"}, Recursive: true}, "in/a.csv", true},
		{MatcherOptions{Include: []string{"in/**/*.csv"}, Recursive: true}, "in/x/y/a.csv", true},
		{MatcherOptions{Include: []string{"in/**/*.csv"}, Recursive: true}, "out/a.csv", false},
		{MatcherOptions{Include: []string{"*.csv"}, Recursive: true}, "deep/er/a.csv", true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/%s", tc.opts, tc.rel), func(t *testing.T) {
			m, err := NewMatcher(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Match(tc.rel); got != tc.want {
				t.Fatalf("Match(%q) = %v, want %v", tc.rel, got, tc.want)
			}
		})
	}
	m, _ := NewMatcher(MatcherOptions{Recursive: true, Exclude: []string{"archive"}})
	if m.Descend("archive") || !m.Descend("in") || m.Descend(".git") {
		t.Fatal("Descend does not honour exclude and hidden directories")
	}
	if _, err := NewMatcher(MatcherOptions{Include: []string{"[a-"}}); err == nil {
		t.Fatal("malformed pattern accepted")
	}
}

func TestReadiness(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r, _ := NewReadiness(ReadyStable, 2*time.Second, "")
	if ok, retry := r.Observe("a", 10, 1, false, t0); ok || !retry.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("first sighting: ready=%v retry=%v", ok, retry)
	}
	if ok, _ := r.Observe("a", 20, 2, false, t0.Add(time.Second)); ok {
		t.Fatal("ready after a change")
	}
	if ok, _ := r.Observe("a", 20, 2, false, t0.Add(2500*time.Millisecond)); ok {
		t.Fatal("ready before stable_for since the change")
	}
	if ok, _ := r.Observe("a", 20, 2, false, t0.Add(3*time.Second)); !ok {
		t.Fatal("not ready after stable_for")
	}
	r.BeginScan()
	r.EndScan()
	if len(r.seen) != 0 {
		t.Fatal("EndScan kept a file the scan did not see")
	}

	d, _ := NewReadiness(ReadyDoneFile, 0, ".done")
	if ok, _ := d.Observe("a", 1, 1, false, t0); ok {
		t.Fatal("done_file ready without marker")
	}
	if ok, _ := d.Observe("a", 1, 1, true, t0); !ok || !d.IsMarker("a.done") || d.Marker("a") != "a.done" {
		t.Fatal("done_file not ready with marker")
	}
	if _, err := NewReadiness("soon", 0, ""); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestIDMakerMatchesNewID(t *testing.T) {
	m := NewIDMaker("p", "src", "dir/a.csv", "10-20")
	for _, n := range []int64{0, 1, 99, 100, 123456789, -5} {
		if got, want := m.ID(n), adapters.NewID("p", "src", "dir/a.csv", "10-20", strconv.FormatInt(n, 10)); got != want {
			t.Fatalf("ID(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestArena(t *testing.T) {
	var a Arena
	var got []string
	for i := int64(0); i < 5000; i += 7 {
		got = append(got, a.Int(i*1000003))
	}
	for i, s := range got {
		if want := strconv.FormatInt(int64(i)*7*1000003, 10); s != want {
			t.Fatalf("string %d = %q, want %q (arena reused memory)", i, s, want)
		}
	}
}

func TestConfine(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		escapes  bool
	}{
		{"a/b.csv", "a/b.csv", false},
		{"a/../b.csv", "b.csv", false},
		{"./a//b", "a/b", false},
		{"../a", "", true},
		{"a/../../b", "", true},
		{"/etc/passwd", "", true},
		{`\\server\share`, "", true},
		{"..", "", true},
	} {
		got, err := Confine(tc.in)
		if tc.escapes {
			if !errors.Is(err, ErrEscapes) {
				t.Errorf("Confine(%q) = %q, %v, want ErrEscapes", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Confine(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := Confine(""); err == nil {
		t.Error("empty path accepted")
	}
}

func TestStaticDir(t *testing.T) {
	for in, want := range map[string]string{
		"archive":                            "archive",
		`archive/{{ now().Format("2006") }}`: "archive",
		`a/b/x-{{ meta.name }}`:              "a/b",
		`{{ meta.dir }}/done`:                "",
	} {
		if got := StaticDir(in); got != want {
			t.Errorf("StaticDir(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want adapters.Kind
	}{
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, adapters.Unavailable},
		{fmt.Errorf("wrapped: %w", syscall.EDQUOT), adapters.Unavailable},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}, adapters.Transient},
		{&fs.PathError{Op: "open", Path: "x", Err: syscall.EROFS}, adapters.Transient},
		{&escapeError{"../x"}, adapters.Permanent},
		{adapters.PermanentError(syscall.ENOSPC), adapters.Permanent},
	} {
		if got := adapters.KindOf(Classify(tc.err)); got != tc.want {
			t.Errorf("Classify(%v) is %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestRootFSRefusesSymlinkEscape pins the os.Root error text isRootEscape
// relies on.
func TestRootFSRefusesSymlinkEscape(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "out"))
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Create("out/x")
	if err == nil || !isRootEscape(err) {
		t.Fatalf("Create through an escaping symlink = %v, want the os.Root escape error", err)
	}
	if adapters.KindOf(Classify(err)) != adapters.Permanent {
		t.Fatal("symlink escape is not permanent")
	}
}

func TestFreeName(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.csv", "a.1.csv", "b"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	next := map[string]int{}
	for in, want := range map[string]string{"a.csv": "a.2.csv", "b": "b.1", "c.txt": "c.txt"} {
		got, err := freeName(OSFS{}, filepath.Join(dir, in), next)
		if err != nil || got != filepath.Join(dir, want) {
			t.Errorf("freeName(%s) = %s, %v, want %s", in, got, err, want)
		}
	}
}
