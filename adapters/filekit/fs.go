package filekit

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FS is the filesystem a file-like source works on. Names are
// slash-separated; a local implementation converts them to OS paths, a remote
// one (SFTP) passes them on. The methods mirror github.com/pkg/sftp.Client so
// that a remote filesystem is a thin wrapper.
//
// An implementation whose connection is lost returns errors wrapping
// adapters.ErrNotConnected: the Source passes them up from Read, the engine
// calls Connect, and the adapter re-dials inside its FS.
type FS interface {
	// Stat returns the file info of name, following symbolic links.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory, in any order.
	ReadDir(name string) ([]fs.FileInfo, error)
	// Open opens name for reading.
	Open(name string) (File, error)
	// Rename renames oldname to newname, replacing newname when it exists.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(name string) error
}

// File is a file opened for reading.
type File interface {
	io.Reader
	io.Seeker
	io.Closer
}

// WriteFS is an FS a sink can publish files on.
type WriteFS interface {
	FS
	// Create creates name for writing; it fails when name exists.
	Create(name string) (WriteFile, error)
	// OpenWrite opens an existing file for writing, positioned at its end
	// (recovering a temp file after a crash).
	OpenWrite(name string) (WriteFile, error)
	// Truncate cuts the file name to size bytes.
	Truncate(name string, size int64) error
	// SyncDir makes the entries of a directory durable (after a rename).
	// Remote implementations that cannot do it return nil.
	SyncDir(name string) error
}

// WriteFile is a file opened for writing.
type WriteFile interface {
	io.Writer
	// Sync makes the written data durable.
	Sync() error
	// Close closes the file.
	Close() error
}

// OSFS is the local filesystem with names used as they are (relative names
// are relative to the working directory). It is the file source's FS.
type OSFS struct{}

var _ FS = OSFS{}

// Stat implements FS.
func (OSFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(filepath.FromSlash(name)) }

// ReadDir implements FS. Entries whose info cannot be read (removed while
// listing) are left out.
func (OSFS) ReadDir(name string) ([]fs.FileInfo, error) {
	f, err := os.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readDirInfos(f)
}

func readDirInfos(f *os.File) ([]fs.FileInfo, error) {
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			// Follow links to files and directories like Stat does.
			if st, err := os.Stat(filepath.Join(f.Name(), e.Name())); err == nil {
				fi = renamedInfo{st, e.Name()}
			}
		}
		out = append(out, fi)
	}
	return out, nil
}

// renamedInfo is the info of a symlink's target under the link's name.
type renamedInfo struct {
	fs.FileInfo
	name string
}

func (r renamedInfo) Name() string { return r.name }

// Open implements FS.
func (OSFS) Open(name string) (File, error) { return os.Open(filepath.FromSlash(name)) }

// Rename implements FS.
func (OSFS) Rename(oldname, newname string) error {
	return os.Rename(filepath.FromSlash(oldname), filepath.FromSlash(newname))
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(filepath.FromSlash(name)) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(name string) error { return os.MkdirAll(filepath.FromSlash(name), 0o755) }

// RootFS is a local directory that no name can escape, neither by ".." nor
// by symbolic links (it is an os.Root). It is the file sink's FS; names are
// relative to the root.
type RootFS struct {
	root *os.Root
}

var _ WriteFS = (*RootFS)(nil)

// OpenRoot creates dir when it does not exist and opens it as a RootFS.
func OpenRoot(dir string) (*RootFS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &RootFS{root: r}, nil
}

// Close closes the root.
func (r *RootFS) Close() error { return r.root.Close() }

// Name returns the root directory's path.
func (r *RootFS) Name() string { return r.root.Name() }

func rootName(name string) string {
	if name == "" {
		return "."
	}
	return filepath.FromSlash(name)
}

// Stat implements FS.
func (r *RootFS) Stat(name string) (fs.FileInfo, error) { return r.root.Stat(rootName(name)) }

// ReadDir implements FS.
func (r *RootFS) ReadDir(name string) ([]fs.FileInfo, error) {
	f, err := r.root.Open(rootName(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			out = append(out, fi)
		}
	}
	return out, nil
}

// Open implements FS.
func (r *RootFS) Open(name string) (File, error) { return r.root.Open(rootName(name)) }

// Rename implements FS.
func (r *RootFS) Rename(oldname, newname string) error {
	return r.root.Rename(rootName(oldname), rootName(newname))
}

// Remove implements FS.
func (r *RootFS) Remove(name string) error { return r.root.Remove(rootName(name)) }

// MkdirAll implements FS.
func (r *RootFS) MkdirAll(name string) error { return r.root.MkdirAll(rootName(name), 0o755) }

// Create implements WriteFS.
func (r *RootFS) Create(name string) (WriteFile, error) {
	return r.root.OpenFile(rootName(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

// OpenWrite implements WriteFS.
func (r *RootFS) OpenWrite(name string) (WriteFile, error) {
	f, err := r.root.OpenFile(rootName(name), os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Truncate implements WriteFS.
func (r *RootFS) Truncate(name string, size int64) error {
	f, err := r.root.OpenFile(rootName(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir implements WriteFS.
func (r *RootFS) SyncDir(name string) error {
	f, err := r.root.Open(rootName(name))
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ErrEscapes is returned for a path that would leave the base directory.
var ErrEscapes = errors.New("path escapes the base directory")

// Confine checks a rendered, slash-separated path that must stay under a base
// directory and returns it cleaned. Absolute paths, paths that climb out with
// "..", empty paths and names with NUL bytes fail with an error wrapping
// ErrEscapes. Symbolic links are the FS's business: RootFS refuses them when
// they lead outside.
func Confine(p string) (string, error) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", errors.New("empty or invalid path")
	}
	if path.IsAbs(p) || filepath.IsAbs(p) || strings.HasPrefix(p, `\`) || filepath.VolumeName(p) != "" {
		return "", &escapeError{p}
	}
	c := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", &escapeError{p}
	}
	return c, nil
}

type escapeError struct{ p string }

func (e *escapeError) Error() string { return "path " + quote(e.p) + " escapes the base directory" }
func (e *escapeError) Unwrap() error { return ErrEscapes }

func quote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// isRootEscape reports whether err is os.Root refusing a path that leaves
// the root through a symbolic link. os does not export that error, so its
// text is matched; the test of RootFS pins it.
func isRootEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}
