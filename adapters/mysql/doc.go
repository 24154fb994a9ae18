// Package mysql is Sluice's MySQL/MariaDB source and sink, registered as
// type "mysql".
//
// The source reads a table (or a custom query) incrementally by tracking
// columns with keyset pagination, and commits its watermark to the adapter
// State only after the engine acknowledged a batch as durably enqueued. The
// sink writes records with multi-row INSERT, upsert (INSERT … ON DUPLICATE
// KEY UPDATE), UPDATE or DELETE statements, one transaction per Write, and
// classifies the server's errors: a row the server rejects is isolated by
// bisecting the batch and failed alone, deadlocks and lost connections are
// transient, an unreachable server or refused login is Unavailable.
//
// Both use github.com/go-sql-driver/mysql with interpolated parameters (the
// text protocol: one round trip per statement), a session time zone of
// +00:00 and their own value conversion, described in README.md.
package mysql
