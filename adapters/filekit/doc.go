// Package filekit holds the file-like semantics shared by Sluice's file and
// SFTP adapters, and by custom adapters for other file stores:
//
//   - Matcher: include/exclude globs, with recursion and "**".
//   - Readiness: when a file is complete (stable, done_file, immediate).
//   - Source: a crash-safe source of complete files over an FS: discovery by
//     listing (plus optional wake-ups), readiness, streaming through a codec
//     in batches, deterministic message IDs, per-batch checkpoints in
//     adapters.State (resume mid-file), after-actions (move to a dated
//     archive dir, delete, or keep, remembered by path + size + mtime), and
//     failed_dir for files that cannot be decoded.
//   - Writer: a sink publishing files atomically over a WriteFS: path
//     templates confined under a base dir (Confine), temp name → fsync →
//     rename → directory fsync, rolling by records, bytes and age, done
//     markers, and recovery of temp files after a crash.
//   - IDMaker and Arena: cheap deterministic IDs and metadata strings.
//
// # Plugging in a remote filesystem
//
// Source and Writer never touch the local filesystem directly: they call an
// FS (Stat, ReadDir, Open, Rename, Remove, MkdirAll) and, for the Writer, a
// WriteFS (plus Create, OpenWrite, Truncate, SyncDir). Names are
// slash-separated. OSFS and RootFS are the local implementations. The
// methods mirror github.com/pkg/sftp's Client, so an SFTP adapter wraps its
// client in a few lines:
//
//	type sftpFS struct{ c *sftp.Client }
//	func (f sftpFS) Stat(name string) (fs.FileInfo, error)      { return f.c.Stat(name) }
//	func (f sftpFS) ReadDir(name string) ([]fs.FileInfo, error) { return f.c.ReadDir(name) }
//	func (f sftpFS) Open(name string) (filekit.File, error)     { return f.c.Open(name) }
//	func (f sftpFS) Rename(o, n string) error                   { return f.c.PosixRename(o, n) }
//	...
//	func (f sftpFS) Create(name string) (filekit.WriteFile, error) {
//		return f.c.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
//	}
//	func (f sftpFS) SyncDir(string) error { return nil } // no directory fsync over SFTP
//
// The SFTP source then builds its Source with filekit.SourceOptionsFrom
// (the config fields come from SourceFields, so both adapters document and
// validate them alike) and its sink with WriterOptionsFrom, whose Open
// callback dials. Reconnection: an FS whose connection dropped returns
// errors wrapping adapters.ErrNotConnected; Source.Read and Writer.Write
// pass them up, the engine calls Connect again, and the adapter re-dials
// inside its FS (Writer calls Open again only when it has no FS, so an
// adapter that swaps connections does so inside its FS value).
//
// Remote specifics to keep in mind: readiness compares the remote size and
// mtime between scans on the local clock, never the remote clock; Confine
// is lexical, and symbolic links on the server are the server's business
// (chroot the account); rename over an existing name needs POSIX rename
// (posix-rename@openssh.com) for if_exists: overwrite.
package filekit
