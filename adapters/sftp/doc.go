// Package sftp is Sluice's SFTP source and sink, over SSH (github.com/pkg/sftp
// on golang.org/x/crypto/ssh).
//
// The file semantics are filekit's, shared with the file adapter: the
// source is a filekit.Source (readiness, checkpoints, after-actions,
// deterministic IDs) and the sink a filekit.Writer (temp name, fsync,
// rename, rolling, recovery), both over remoteFS, a filekit.WriteFS on one
// SFTP connection. What this package adds is the connection: dialling with
// key, agent or password authentication and a checked host key, keepalives,
// dropping a failed connection and dialling again at the next Connect, and
// classifying failures (login and host-key problems are Unavailable and
// name the host and user, never a secret). The source transfers several
// files at once over its one connection (filekit's OpenAhead with files
// that download in the background).
package sftp
