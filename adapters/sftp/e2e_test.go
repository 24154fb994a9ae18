package sftp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testkit"
)

// TestPipelineSFTPToSFTP runs a pipeline through the engine: CSV files read
// from the server by the sftp source (moved to an archive once queued),
// mapped, and written back as JSON lines by the sftp sink, rolled every 50
// records or 200ms; sshd restarts between two waves of files, and the
// last file, due at max_age after the restart with no write to come,
// must be published too.
func TestPipelineSFTPToSFTP(t *testing.T) {
	srv, in := serverDir(t, "in")
	out := filepath.Join(srv.Root, "out")
	produce := func(lo, hi int) {
		for f := lo; f < hi; f++ {
			var b strings.Builder
			b.WriteString("id;amount\n")
			for i := 0; i < 40; i++ {
				fmt.Fprintf(&b, "%d;%d\n", f*40+i, i)
			}
			writeFile(t, filepath.Join(in, fmt.Sprintf("ORD%d.csv", f)), b.String())
		}
	}
	produce(0, 3)
	conn := fmt.Sprintf("address: %q\n        user: %s\n        key_file: %s\n        known_hosts: %s\n        keepalive: 1s\n",
		srv.Addr, srv.User, srv.KeyFile, srv.KnownHosts)
	cfg := testkit.Load(t, fmt.Sprintf(`
pipelines:
  e2e:
    sources:
      - name: drop
        type: sftp
        %s        path: %s
        include: ["ORD*.csv"]
        ready: immediate
        scan_interval: 50ms
        after: move
        archive_dir: done
        codec: {type: csv, header: true, delimiter: ";"}
    stages:
      - map:
          id: to_int(record.id)
          amount: to_int(record.amount)
    queues:
      orders: {}
    sinks:
      - name: back
        from: orders
        type: sftp
        %s        base_dir: %s
        path: orders.jsonl
        codec: jsonl
        max_records: 50
        max_age: 200ms
`, conn, in, conn, out))
	testkit.Agent(t, cfg, nil)
	seen := func() map[string]int {
		got := map[string]int{}
		for _, rec := range jsonlRecords(t, filepath.Join(out, "*.jsonl")) {
			got[fmt.Sprint(rec["id"])]++
		}
		return got
	}
	testkit.Eventually(t, "the first 120 records published", func() bool { return len(seen()) == 120 })
	// Both connections die; the next files come after the restart.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	produce(3, 6)
	testkit.Eventually(t, "every record published", func() bool { return len(seen()) == 240 })
	testkit.Eventually(t, "every file archived", func() bool {
		ents, _ := os.ReadDir(filepath.Join(in, "done"))
		left, _ := filepath.Glob(filepath.Join(in, "ORD*.csv"))
		return len(ents) == 6 && len(left) == 0
	})
	for _, n := range tree(t, out) {
		if !strings.HasPrefix(filepath.Base(n), ".") && !strings.HasSuffix(readFile(t, filepath.Join(out, n)), "}\n") {
			t.Fatalf("%s ends with a partial record", n)
		}
	}
}
