// Package vfs is the file-system seam of the disk broker: the few calls it
// makes, implemented by the operating system (OS) and by an in-memory file
// system (Mem) that can simulate a crash, dropping whatever was not made
// durable by an fsync of the file or of its directory.
package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// FS is the file system the disk broker uses. Paths are slash-separated
// and absolute or relative to the process's directory, as the OS sees them.
type FS interface {
	// Create creates or truncates name for writing and reading. Its
	// directory entry is durable only after SyncDir of its directory.
	Create(name string) (File, error)
	// OpenFile opens an existing file for reading, and for appending too
	// when write is true.
	OpenFile(name string, write bool) (File, error)
	// ReadFile returns the content of name.
	ReadFile(name string) ([]byte, error)
	// Rename replaces newname by oldname; durable after SyncDir of both
	// directories.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// MkdirAll creates name and its missing parents. Each new entry is
	// durable after SyncDir of its parent; MkdirAll syncs the parents of
	// what it creates.
	MkdirAll(name string) error
	// ReadDir returns the entries of a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// SyncDir makes the entries of a directory durable.
	SyncDir(name string) error
	// Lock takes an exclusive lock on the file name for the life of the
	// process or until the returned closer is closed. When another process
	// holds it, the error wraps ErrLocked and says the holder's pid if known.
	Lock(name string) (io.Closer, error)
}

// File is an open file. Writes append at the end.
type File interface {
	io.ReaderAt
	io.Writer
	// Sync makes the file's data durable (fdatasync).
	Sync() error
	// Truncate cuts the file to size.
	Truncate(size int64) error
	// Size returns the current size.
	Size() (int64, error)
	Close() error
	Name() string
}

// ErrLocked is returned by Lock when the lock is held elsewhere.
var ErrLocked = errors.New("locked")

// OS is the operating system's file system.
type OS struct{}

var _ FS = OS{}

func (OS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) OpenFile(name string, write bool) (File, error) {
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR | os.O_APPEND
	}
	f, err := os.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (OS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (OS) Remove(name string) error             { return os.Remove(name) }

func (o OS) MkdirAll(name string) error {
	name = filepath.Clean(name)
	if fi, err := os.Stat(name); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", name)
		}
		return nil
	}
	parent := filepath.Dir(name)
	if parent != name {
		if err := o.MkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return o.SyncDir(parent)
}

func (OS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

func (OS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", name, err)
	}
	return nil
}

// Lock takes a flock on name and writes the process's pid into it, so that
// a refused process can say who holds the lock.
func (OS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(name)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if p := strings.TrimSpace(string(pid)); p != "" {
				if _, perr := strconv.Atoi(p); perr == nil {
					return nil, fmt.Errorf("%w by pid %s", ErrLocked, p)
				}
			}
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("flock %s: %w", name, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

type osFile struct{ *os.File }

func (f osFile) Sync() error {
	if err := syscall.Fdatasync(int(f.Fd())); err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.File.Name(), Err: err}
	}
	return nil
}

func (f osFile) Size() (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// sortEntries sorts directory entries by name.
func sortEntries(es []fs.DirEntry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Name() < es[j].Name() })
}
