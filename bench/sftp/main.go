// Command sftp benchmarks Sluice's SFTP download against OpenSSH's own sftp
// client, both fetching from a private sshd on loopback (internal-sftp) to
// local disk, in the same run:
//
//   - one big file (1 GiB): `sftp -b` with `get`, against Sluice's remote
//     filesystem (sftp.OpenFS, the layer under the source) copied to a local
//     file. The source itself would need codec none, whose one message per
//     file holds the whole file in memory (max_raw_bytes, 64 MiB by default),
//     so the big file goes through the layer the source streams from.
//   - many small files (10,000 of 10 KiB): `sftp -b` with `get DIR/*`,
//     against the sftp source with codec none (one message per file; as in
//     the engine, the read loop hands each batch to a second goroutine,
//     which stores it — writes the local file — and acknowledges it in
//     order), at several concurrency settings, with the on-disk state store
//     (one fsync per file, as in production) or in memory.
//
// Both sides use the cipher aes128-gcm@openssh.com (the Go SSH package's
// first choice; OpenSSH's sftp prefers chacha20-poly1305 unless told).
// Figures are the median and the best of -runs runs (the ratio columns
// compare with sftp's median and best), page cache warm.
//
//	go run ./bench/sftp [-big 1GiB] [-files 10000] [-size 10KiB] [-concurrency 1,4,8,16] [-runs 5] [-out DIR] [-profile DIR]
//
// With -profile, CPU profiles of the Sluice runs are written to DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/sftp"
	"github.com/sluicehq/sluice/internal/statestore"
	"github.com/sluicehq/sluice/internal/testenv"
	_ "github.com/sluicehq/sluice/transform/codec"
)

const cipher = "aes128-gcm@openssh.com"

type result struct {
	wall, cpu time.Duration
}

func main() {
	bigFlag := flag.String("big", "1GiB", "size of the big file (0: skip)")
	files := flag.Int("files", 10000, "number of small files (0: skip)")
	sizeFlag := flag.String("size", "10KiB", "size of each small file")
	concFlag := flag.String("concurrency", "1,4,8,16", "concurrency settings of the source")
	runs := flag.Int("runs", 5, "runs of each measurement (the median and the best are reported)")
	profile := flag.String("profile", "", "directory for CPU profiles of the Sluice runs")
	outBase := flag.String("out", ".", "directory under which the downloads land (a temp dir, removed at the end)")
	statesFlag := flag.String("state", "disk", "state stores of the source runs: disk (one fsync per file, as in production), memory, or both")
	flag.Parse()
	big, err := adapters.ParseSize(*bigFlag)
	check(err)
	size, err := adapters.ParseSize(*sizeFlag)
	check(err)
	var conc []int
	for _, c := range strings.Split(*concFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		check(err)
		conc = append(conc, n)
	}

	srv, err := testenv.StartSSHD(testenv.SSHDOptions{})
	check(err)
	defer srv.Close()
	work, err := os.MkdirTemp(*outBase, ".sluice-bench-sftp-")
	check(err)
	work, err = filepath.Abs(work)
	check(err)
	defer os.RemoveAll(work)
	fmt.Printf("sshd %s (internal-sftp), data in %s, output in %s\n", srv.Addr, srv.Root, work)

	b := &bench{srv: srv, work: work, profile: *profile}
	if big > 0 {
		remote := filepath.Join(srv.Root, "big.bin")
		writeRandom(remote, big)
		var sftpRuns, fsRuns []result
		for r := 0; r < *runs; r++ {
			sftpRuns = append(sftpRuns, b.sftpGet("get "+remote+" "+filepath.Join(work, "big.bin"), 1, big))
			fsRuns = append(fsRuns, b.fsCopy(remote, big, r))
		}
		s, f := median(sftpRuns), median(fsRuns)
		fmt.Printf("\n%s file, %d runs:\n", human(big), *runs)
		row("OpenSSH sftp -b get", s, big, 1, s)
		row("Sluice sftp.OpenFS → local file", f, big, 1, s)
	}
	if *files > 0 {
		dir := filepath.Join(srv.Root, "many")
		writeMany(dir, *files, size)
		total := int64(*files) * size
		var sftpRuns []result
		sluice := map[string][]result{}
		var keys []string
		for r := 0; r < *runs; r++ {
			sftpRuns = append(sftpRuns, b.sftpGet("get "+dir+"/* "+work+"/", *files, total))
			for _, c := range conc {
				for _, st := range strings.Split(*statesFlag, ",") {
					k := fmt.Sprintf("Sluice source, concurrency %d, %s state", c, st)
					if r == 0 {
						keys = append(keys, k)
					}
					sluice[k] = append(sluice[k], b.source(dir, *files, total, c, st, r))
				}
			}
		}
		s := median(sftpRuns)
		fmt.Printf("\n%d files of %s, %d runs:\n", *files, human(size), *runs)
		row("OpenSSH sftp -b get DIR/*", s, total, *files, s)
		for _, k := range keys {
			row(k, median(sluice[k]), total, *files, s)
		}
	}
}

type bench struct {
	srv     *testenv.SSHDServer
	work    string
	profile string
}

// sftpGet runs OpenSSH's sftp in batch mode with one command and checks
// that it fetched n files of total bytes.
func (b *bench) sftpGet(command string, n int, total int64) result {
	out := filepath.Join(b.work, "out")
	check(os.RemoveAll(out))
	check(os.MkdirAll(out, 0o755))
	command = strings.ReplaceAll(command, b.work, out)
	batch := filepath.Join(b.work, "batch")
	check(os.WriteFile(batch, []byte(command+"\n"), 0o600))
	cmd := exec.Command("sftp", "-q", "-b", batch, "-F", "/dev/null", "-i", b.srv.KeyFile,
		"-o", "UserKnownHostsFile="+b.srv.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "Ciphers="+cipher, "-P", strconv.Itoa(b.srv.Port), b.srv.User+"@"+b.srv.Host)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("sftp: %v: %s", err, msg)
	}
	wall := time.Since(start)
	u := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	verify(out, n, total)
	return result{wall: wall, cpu: tv(u.Utime) + tv(u.Stime)}
}

// fsCopy copies the big file through sftp.OpenFS.
func (b *bench) fsCopy(remote string, size int64, run int) result {
	out := filepath.Join(b.work, "out")
	check(os.RemoveAll(out))
	check(os.MkdirAll(out, 0o755))
	stop := b.startProfile(fmt.Sprintf("big-%d", run))
	defer stop()
	r0 := rusage()
	start := time.Now()
	conf := b.conf(map[string]any{"path": "/"})
	fsys, err := sftp.OpenFS(context.Background(), conf, "", nil)
	check(err)
	f, err := fsys.Open(remote)
	check(err)
	dst, err := os.Create(filepath.Join(out, "big.bin"))
	check(err)
	n, err := io.Copy(dst, f)
	check(err)
	check(dst.Close())
	check(f.Close())
	check(fsys.Close())
	wall := time.Since(start)
	if n != size {
		log.Fatalf("copied %d bytes, want %d", n, size)
	}
	verify(out, 1, size)
	return result{wall: wall, cpu: rusage() - r0}
}

// source reads dir with the sftp source (codec none) and writes every
// message to a local file; a second goroutine acknowledges the batches in
// order, as the engine's acker does.
func (b *bench) source(dir string, n int, total int64, conc int, state string, run int) result {
	out := filepath.Join(b.work, "out")
	check(os.RemoveAll(out))
	check(os.MkdirAll(out, 0o755))
	var st adapters.State
	if state == "disk" {
		store, err := statestore.Open(filepath.Join(b.work, "state"))
		check(err)
		defer func() {
			store.Close()
			os.RemoveAll(filepath.Join(b.work, "state"))
		}()
		st = store.Namespace("bench/")
	} else {
		st = statestore.Memory()
	}
	stop := b.startProfile(fmt.Sprintf("many-c%d-%s-%d", conc, state, run))
	defer stop()
	r0 := rusage()
	start := time.Now()
	conf := b.conf(map[string]any{
		"path": dir, "codec": "none", "ready": "immediate", "after": "keep", "concurrency": conc,
		"max_raw_bytes": "1MiB", "scan_interval": "1h",
	})
	src, err := adapters.NewSource("sftp", conf, adapters.Resources{Pipeline: "bench", Name: "sftp", State: st, Once: true})
	check(err)
	ctx := context.Background()
	check(src.Connect(ctx))
	// Like the engine: the read loop hands batches on, a second goroutine
	// stores them (here: writes the files) and acknowledges them in order.
	acks := make(chan adapters.Batch, 64)
	ackDone := make(chan error, 1)
	go func() {
		var first error
		for bt := range acks {
			for _, m := range bt.Messages {
				check(os.WriteFile(filepath.Join(out, path.Base(m.Meta[adapters.MetaPath])), m.Raw, 0o644))
			}
			if err := bt.Ack(ctx, nil); err != nil && first == nil {
				first = err
			}
		}
		ackDone <- first
	}()
	count := 0
	for {
		bt, err := src.Read(ctx)
		if errors.Is(err, adapters.ErrEndOfInput) {
			break
		}
		check(err)
		count += len(bt.Messages)
		acks <- bt
	}
	close(acks)
	check(<-ackDone)
	check(src.Close(ctx))
	wall := time.Since(start)
	if count != n {
		log.Fatalf("source read %d files, want %d", count, n)
	}
	verify(out, n, total)
	return result{wall: wall, cpu: rusage() - r0}
}

func (b *bench) conf(extra map[string]any) *adapters.Config {
	raw := map[string]any{
		"address": b.srv.Addr, "user": b.srv.User, "key_file": b.srv.KeyFile, "known_hosts": b.srv.KnownHosts,
	}
	for k, v := range extra {
		raw[k] = v
	}
	spec, err := adapters.SourceSpec("sftp")
	check(err)
	conf, err := adapters.Decode(spec, raw, adapters.DecodeOptions{Path: "bench"})
	check(err)
	return conf
}

func (b *bench) startProfile(name string) func() {
	if b.profile == "" {
		return func() {}
	}
	check(os.MkdirAll(b.profile, 0o755))
	f, err := os.Create(filepath.Join(b.profile, "cpu-"+name+".pprof"))
	check(err)
	check(pprof.StartCPUProfile(f))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// verify checks that dir holds n files of total bytes.
func verify(dir string, n int, total int64) {
	ents, err := os.ReadDir(dir)
	check(err)
	var sum int64
	for _, e := range ents {
		fi, err := e.Info()
		check(err)
		sum += fi.Size()
	}
	if len(ents) != n || sum != total {
		log.Fatalf("%s holds %d files, %d bytes; want %d, %d", dir, len(ents), sum, n, total)
	}
}

func writeRandom(name string, size int64) {
	f, err := os.Create(name)
	check(err)
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(buf)) {
		r.Read(buf)
		_, err := f.Write(buf[:min(int64(len(buf)), left)])
		check(err)
	}
	check(f.Close())
}

func writeMany(dir string, n int, size int64) {
	check(os.MkdirAll(dir, 0o755))
	r := rand.NewChaCha8([32]byte{2})
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		r.Read(buf)
		check(os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.dat", i)), buf, 0o644))
	}
}

// stats are the median and the best of a measurement's runs (the best is
// the run least disturbed by the other load on a shared machine).
type stats struct{ med, best result }

func median(rs []result) stats {
	s := append([]result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].wall < s[j].wall })
	return stats{med: s[len(s)/2], best: s[0]}
}

func row(name string, r stats, bytes int64, files int, base stats) {
	mbs := func(x result) float64 { return float64(bytes) / x.wall.Seconds() / 1e6 }
	fmt.Printf("  %-48s median %6.2fs %7.1f MB/s %6.0f files/s cpu %5.2fs %5.2fx | best %6.2fs %7.1f MB/s %5.2fx\n",
		name, r.med.wall.Seconds(), mbs(r.med), float64(files)/r.med.wall.Seconds(), r.med.cpu.Seconds(),
		base.med.wall.Seconds()/r.med.wall.Seconds(), r.best.wall.Seconds(), mbs(r.best), base.best.wall.Seconds()/r.best.wall.Seconds())
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func rusage() time.Duration {
	var u syscall.Rusage
	check(syscall.Getrusage(syscall.RUSAGE_SELF, &u))
	return tv(u.Utime) + tv(u.Stime)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
