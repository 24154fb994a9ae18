package mysql

import (
	"strconv"
	"testing"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testenv"
)

// The adapter conformance suite, against a private server that the
// reconnect tests kill and restart.
func TestConformance(t *testing.T) {
	srv := testenv.StartMariaDB(t)
	restart := func(t *testing.T) {
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
	}
	conn := func(dsn string) map[string]any {
		return map[string]any{"dsn": dsn, "connect_timeout": "1s", "io_timeout": "5s"}
	}
	t.Run("Source", func(t *testing.T) {
		adaptertest.RunSource(t, adaptertest.SourceCase{
			Setup: func(t *testing.T) *adaptertest.SourcePeer {
				dsn := srv.CreateDatabase(t)
				db := testDB(t, dsn)
				mustExec(t, db, `CREATE TABLE t (n BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL)`)
				return &adaptertest.SourcePeer{
					New: func(t *testing.T, state adapters.State) adapters.Source {
						return adaptertest.NewSource(t, "mysql", with(conn(dsn), "table", "t", "tracking_columns", "n", "interval", "20ms", "batch_size", 3), state)
					},
					Produce: func(t *testing.T, n int) {
						for range n {
							mustExec(t, db, "INSERT INTO t (name) VALUES (?)", "row")
						}
					},
					Restart: restart,
				}
			},
		})
	})
	t.Run("Sink", func(t *testing.T) {
		adaptertest.RunSink(t, adaptertest.SinkCase{
			Setup: func(t *testing.T) *adaptertest.SinkPeer {
				dsn := srv.CreateDatabase(t)
				db := testDB(t, dsn)
				mustExec(t, db, `CREATE TABLE t (n BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL, amount DOUBLE)`)
				return &adaptertest.SinkPeer{
					New: func(t *testing.T) adapters.Sink {
						return adaptertest.NewSink(t, "mysql", with(conn(dsn), "table", "t", "mode", "upsert", "columns", map[string]any{
							"n": "record.n", "name": "record.name", "amount": "record.amount",
						}))
					},
					Received: func(t *testing.T) []adapters.Record {
						rows, err := db.Query("SELECT n, name FROM t")
						if err != nil {
							t.Fatal(err)
						}
						defer rows.Close()
						var out []adapters.Record
						for rows.Next() {
							var n int64
							var name string
							if err := rows.Scan(&n, &name); err != nil {
								t.Fatal(err)
							}
							out = append(out, adapters.Record{"n": n, "name": name})
						}
						return out
					},
					Reject: func(i int) adapters.Message {
						m := adaptertest.DefaultMessage(i)
						m.Record = adapters.Record{"n": int64(i), "name": "a name much longer than twenty characters: " + strconv.Itoa(i)}
						return m
					},
					Restart: restart,
				}
			},
		})
	})
}
