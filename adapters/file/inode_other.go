//go:build !unix

package file

import "io/fs"

// fileID is not available here: rotation by rename is then detected only
// when the path disappears.
func fileID(fs.FileInfo) (dev, ino uint64) { return 0, 0 }
