package mysql

import (
	"fmt"

	"github.com/sluicehq/sluice/adapters"
)

func init() {
	adapters.RegisterSource("mysql", SourceSpec, newSource)
	adapters.RegisterSink("mysql", SinkSpec, newSink)
}

// SourceSpec is the configuration of the mysql source.
var SourceSpec = &adapters.Spec{
	Summary: "Read a MySQL/MariaDB table or query incrementally, by tracking columns",
	Description: `Polls a table (or a custom query) for rows after a watermark kept in the
tracking columns, with keyset pagination: ` + "`WHERE a > ? OR (a = ? AND b > ?) ORDER BY a, b LIMIT n`" + `.
With a compound key such as [updated_at, id], rows sharing a timestamp are
neither lost nor repeated. The watermark is committed only after the batch
is durably enqueued; a restart resumes there. Rows committed later with an
earlier tracking value (long transactions) are missed unless ` + "`lag`" + ` holds back the
newest rows: see the README. Types are converted faithfully: DECIMAL to an
exact decimal, DATETIME to a time in time_zone, TIMESTAMP to an exact
instant, JSON to records and lists, BLOB to bytes, UNSIGNED BIGINT to uint64
beyond int64.`,
	Fields: append(connFields(2),
		adapters.Field{Name: "table", Type: adapters.TypeString, Optional: true,
			Description: "Table to read, `table` or `schema.table` (or give query).", Example: "orders"},
		adapters.Field{Name: "columns", Type: adapters.TypeStrings, Optional: true,
			Description: "Columns to read (default all); the tracking columns are added when missing.", Example: []any{"id", "updated_at", "total"}},
		adapters.Field{Name: "where", Type: adapters.TypeString, Optional: true,
			Description: "Extra SQL condition on the table's rows.", Example: "status <> 'draft'"},
		adapters.Field{Name: "query", Type: adapters.TypeString, Optional: true,
			Description: "Custom SELECT (joins, views) instead of table: it must select the tracking columns, filter with named parameters of the same names (`:updated_at`, `:id`) bound to the watermark, and end with ORDER BY the tracking columns and LIMIT :batch_size.",
			Example:     "SELECT o.id, o.updated_at, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.updated_at > :updated_at OR (o.updated_at = :updated_at AND o.id > :id) ORDER BY o.updated_at, o.id LIMIT :batch_size"},
		adapters.Field{Name: "tracking_columns", Type: adapters.TypeStrings,
			Description: "Column(s) whose values only grow, in order: one (`id`) or a compound key (`[updated_at, id]`) whose last column is unique. They should be NOT NULL and indexed together.",
			Example:     []any{"updated_at", "id"}},
		adapters.Field{Name: "initial", Type: adapters.TypeAny, Default: initialBeginning,
			Description: "Where a source without a stored watermark starts: `beginning`, `now` (after the last row at the first start), or a mapping of every tracking column to a start value (rows after it are read). Required as a mapping with query.",
			Example:     map[string]any{"updated_at": "2024-01-01 00:00:00", "id": 0},
			Check: func(v any) error {
				switch v.(type) {
				case string, map[string]any:
					return nil
				}
				return fmt.Errorf("want beginning, now or a mapping of the tracking columns to values")
			}},
		adapters.Field{Name: "interval", Type: adapters.TypeDuration, Default: "5s",
			Description: "Pause between polls once a poll returned fewer than batch_size rows."},
		adapters.Field{Name: "batch_size", Type: adapters.TypeInt, Default: 1000, Check: positive,
			Description: "Rows per query and per batch."},
		adapters.Field{Name: "lag", Type: adapters.TypeDuration, Default: "0s",
			Description: "Do not read rows whose first tracking column (DATETIME, TIMESTAMP or DATE) is newer than the server's clock minus lag, so that transactions still open with earlier timestamps can commit first."},
		adapters.Field{Name: "on_consume", Type: adapters.TypeString, Optional: true,
			Description: "Statement run once per row after its batch is durably enqueued, all rows of a batch in one transaction, with named parameters from the row's columns (`:id`).",
			Example:     "UPDATE orders SET exported = 1 WHERE id = :id"},
		adapters.Field{Name: "json_columns", Type: adapters.TypeStrings, Optional: true,
			Description: "Result columns holding JSON text to decode. Columns of a JSON type (and MariaDB's JSON, a LONGTEXT with a json_valid check) of the table are found without it."},
		adapters.Field{Name: "zero_dates", Type: adapters.TypeString, Default: "null", Enum: []string{"null", "string"},
			Description: "What a zero date ('0000-00-00 00:00:00') becomes: null, or its text."},
	),
	Example: `type: mysql
dsn: ${ERP_DSN}
table: orders
tracking_columns: [updated_at, id]
initial: beginning
interval: 10s
batch_size: 1000
lag: 30s`,
	Check: checkSource,
}

// SinkSpec is the configuration of the mysql sink.
var SinkSpec = &adapters.Spec{
	Summary: "Write records to a MySQL/MariaDB table: insert, upsert, update or delete",
	Description: `Writes each batch (the sink's batch_size, 256 by default) in one
transaction of multi-row statements. Columns are the record's fields, or
the ` + "`columns`" + ` mapping of column to expression. A row the server refuses (duplicate
key in insert mode, value too long or out of range, bad value, foreign key,
unknown column, NULL in a NOT NULL column) is isolated by bisecting the batch
and dead-lettered with the server's error while the other rows commit.
Deadlocks are retried; lost connections, lock wait timeouts and a read-only
server are transient; a refused connection or login, an unknown database or
a missing table make the sink back off as a whole. Upsert makes replays
idempotent.`,
	Fields: append(connFields(4),
		adapters.Field{Name: "table", Type: adapters.TypeString,
			Description: "Table to write, `table` or `schema.table`.", Example: "orders"},
		adapters.Field{Name: "mode", Type: adapters.TypeString, Default: modeInsert, Enum: []string{modeInsert, modeUpsert, modeUpdate, modeDelete},
			Description: "`insert`; `upsert` (INSERT … ON DUPLICATE KEY UPDATE of the non-key columns); `update` (rows matched by key; a missing row is no error); `delete` (by key)."},
		adapters.Field{Name: "key", Type: adapters.TypeStrings, Optional: true,
			Description: "Key columns: what update and delete match on, and what upsert leaves unchanged. Default: the table's primary key.", Example: []any{"order_id"}},
		adapters.Field{Name: "columns", Type: adapters.TypeStringMap, Optional: true,
			Description: "Column to expression (record and meta in scope); a nil result writes NULL. Default: every field of the record is a column.",
			Example:     map[string]any{"order_id": "record.id", "total": "decimal(record.total)", "source": "meta.source"}},
		adapters.Field{Name: "unknown_fields", Type: adapters.TypeString, Default: "error", Enum: []string{"error", "ignore"},
			Description: "Without columns: a record field the table lacks fails the record (`error`, the server's unknown column error) or is left out (`ignore`)."},
		adapters.Field{Name: "max_statement_size", Type: adapters.TypeSize, Default: "4MiB",
			Description: "Largest statement; a batch is split into as many multi-row statements as needed (capped below the server's max_allowed_packet)."},
		adapters.Field{Name: "deadlock_retries", Type: adapters.TypeInt, Default: 3,
			Description: "Times a transaction that hit a deadlock is retried at once before the batch fails as transient."},
	),
	Example: `type: mysql
from: orders
dsn: ${ERP_DSN}
table: orders
mode: upsert
key: [order_id]
batch_size: 1000`,
	Check: checkSink,
}
