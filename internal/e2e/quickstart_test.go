package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The quickstart pipeline with two changes for a long-running agent: sinks
// publish every 300ms, and a second source takes files only once a done
// marker exists.
const e2ePipeline = `
pipelines:
  quickstart:
    sources:
      - name: drop
        type: file
        path: in
        include: ["*.csv"]
        ready: stable
        stable_for: 1s
        scan_interval: 200ms
        after: move
        archive_dir: done
        codec: {type: csv, header: true, delimiter: ";"}
      - name: marked
        type: file
        path: in-marked
        include: ["*.csv"]
        ready: done_file
        scan_interval: 200ms
        after: keep
        codec: {type: csv, header: true, delimiter: ";"}
    stages:
      - map:
          order_id: int(record.ORDER_NO)
          customer: trim(record.CUST)
          amount: decimal(record.AMT) / 100
          region: lower(trim(record.REGION))
          ORDER_NO: ~
          CUST: ~
          AMT: ~
          REGION: ~
      - filter: record.amount > 0
      - route:
          - when: record.amount >= 10000
            to: large
          - to: orders
    queues:
      orders: {}
      large: {}
    sinks:
      - {name: by-region, from: orders, type: file, base_dir: out, path: '{{ record.region }}/orders.jsonl', max_age: 300ms}
      - {name: large-orders, from: large, type: file, base_dir: out, path: large-orders.jsonl, max_age: 300ms}
`

func csvFile(first, n int) string {
	var b strings.Builder
	b.WriteString("ORDER_NO;CUST;AMT;REGION\n")
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "%d; Customer %d ;%d;%s\n", i, i, i*137%2000000, []string{"EU", "US", "APAC"}[i%3])
	}
	return b.String()
}

func expectedLines(first, n int) []string {
	var out []string
	for i := first; i < first+n; i++ {
		cents := i * 137 % 2000000
		if cents <= 0 {
			continue
		}
		amount := fmt.Sprintf("%d.%02d", cents/100, cents%100)
		amount = strings.TrimSuffix(strings.TrimSuffix(amount, "0"), ".0")
		amount = strings.TrimSuffix(amount, ".")
		out = append(out, fmt.Sprintf(`{"amount":%s,"customer":"Customer %d","order_id":%d,"region":"%s"}`,
			amount, i, i, strings.ToLower([]string{"EU", "US", "APAC"}[i%3])))
	}
	return out
}

func TestQuickstartEndToEnd(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"in", "in-marked"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(e2ePipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, dir, "validate", "-c", "pipeline.yaml"); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	a := startAgent(t, dir, "-c", "pipeline.yaml", "--data-dir", "data")

	// 1. a complete file
	write(t, filepath.Join(dir, "in", "a.csv"), csvFile(1, 500))
	// 2. a file still being written: a row every 200ms for 3s, longer than
	// stable_for; it must not be taken before it is complete
	slow := filepath.Join(dir, "in", "slow.csv")
	f, err := os.Create(slow)
	if err != nil {
		t.Fatal(err)
	}
	content := csvFile(1000, 15)
	rows := strings.SplitAfter(content, "\n")
	for _, r := range rows {
		if _, err := f.WriteString(r); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := os.Stat(slow); err != nil {
			t.Fatalf("the file being written was taken early: %v", err)
		}
	}
	f.Close()
	// 3. a done-file source: the data file alone is not taken
	marked := filepath.Join(dir, "in-marked", "m.csv")
	write(t, marked, csvFile(2000, 100))
	time.Sleep(time.Second)
	want := append(expectedLines(1, 500), expectedLines(1000, 15)...)
	if got := outputLines(t, filepath.Join(dir, "out")); len(got) > len(expectedLines(1, 500))+len(expectedLines(1000, 15)) {
		t.Fatalf("the marked file was read before its done marker: %d lines", len(got))
	}
	write(t, marked+".done", "")
	want = append(want, expectedLines(2000, 100)...)
	sortStrings(want)

	waitFor(t, "every record in out/", 30*time.Second, func() bool {
		return len(outputLines(t, filepath.Join(dir, "out"))) >= len(want)
	})
	time.Sleep(500 * time.Millisecond)
	got := outputLines(t, filepath.Join(dir, "out"))
	compare(t, got, want)
	if _, err := os.Stat(filepath.Join(dir, "in", "done", "a.csv")); err != nil {
		t.Errorf("a.csv not archived: %v", err)
	}
	if _, err := os.Stat(marked + ".done"); !os.IsNotExist(err) {
		t.Errorf("done marker not removed: %v", err)
	}
	a.stop(20 * time.Second)

	// Restart: nothing is read twice (the marked file is kept in place and
	// remembered), and new files still flow.
	a = startAgent(t, dir, "-c", "pipeline.yaml", "--data-dir", "data")
	time.Sleep(2 * time.Second)
	compare(t, outputLines(t, filepath.Join(dir, "out")), want)
	write(t, filepath.Join(dir, "in", "b.csv"), csvFile(5000, 10))
	want = append(want, expectedLines(5000, 10)...)
	sortStrings(want)
	waitFor(t, "the new file after restart", 30*time.Second, func() bool {
		return len(outputLines(t, filepath.Join(dir, "out"))) >= len(want)
	})
	time.Sleep(500 * time.Millisecond)
	compare(t, outputLines(t, filepath.Join(dir, "out")), want)
	a.stop(20 * time.Second)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func compare(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d\nfirst got:  %v\nfirst want: %v", len(got), len(want), head(got), head(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d:\ngot  %s\nwant %s", i, got[i], want[i])
		}
	}
}

func head(l []string) []string {
	if len(l) > 3 {
		return l[:3]
	}
	return l
}
