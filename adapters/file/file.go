// Package file is Sluice's built-in file source and sink.
//
// The source reads complete files from a local directory (mode: batch):
// discovered by fsnotify and a periodic rescan, taken when ready (stable
// size and mtime, a done marker, or at once), streamed through a codec in
// batches with deterministic message IDs, checkpointed per acknowledged
// batch, then moved, deleted or remembered. With mode: tail it follows
// growing log files instead, through rotation and truncation. The machinery
// lives in package filekit, shared with the SFTP adapter.
//
// The sink renders a path template per record under base_dir and publishes
// files atomically (temp name, fsync, rename, directory fsync), rolling them
// by records, bytes or age.
package file

import (
	"fmt"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
)

// Source modes.
const (
	ModeBatch = "batch"
	ModeTail  = "tail"
)

// wholeCodecs decode whole documents; tail mode needs records that never
// span lines.
var wholeCodecs = map[string]bool{adapters.NoCodec: true, "json": true, "xml": true}

func init() {
	adapters.RegisterSource("file", sourceSpec(), newSource)
	adapters.RegisterSink("file", sinkSpec(), newSink)
}

func sourceSpec() *adapters.Spec {
	fields := filekit.SourceFields()
	fields = append(fields,
		adapters.Field{Name: "mode", Type: adapters.TypeString, Default: ModeBatch, Enum: []string{ModeBatch, ModeTail},
			Description: "`batch` reads complete files once each; `tail` follows growing files (logs) from a durable offset, through rotation by rename and truncation, and needs a line-oriented codec (lines, jsonl, csv without header). In tail mode ready, after, archive_dir, failed_dir and max_raw_bytes do not apply."},
		adapters.Field{Name: "watch", Type: adapters.TypeBool, Default: true,
			Description: "Use filesystem notifications (fsnotify) to notice files at once. The periodic rescan runs either way, since notifications are lost on network filesystems and on overflow; set false to rely on it alone."},
		adapters.Field{Name: "poll_interval", Type: adapters.TypeDuration, Default: "1s",
			Description: "Tail mode: how often followed files are checked for new data, rotation and truncation when no notification comes; also how long a rotated file is still read before switching to the new one."},
	)
	return &adapters.Spec{
		Summary: "Read files from a local directory: complete files (batch) or growing logs (tail).",
		Description: "Batch mode takes each file once it is complete (`ready`), streams it through the codec in batches " +
			"and, once every record is durably enqueued, moves, deletes or remembers it (`after`). Progress within a " +
			"file is checkpointed with every enqueued batch, so a restart resumes mid-file; records re-read after a crash " +
			"keep their message IDs, which are derived from the pipeline, source, relative path, file size and mtime and " +
			"the record's byte offset. A malformed record goes to the dead-letter queue and the file goes on; a file that " +
			"cannot be decoded at all goes to `failed_dir`.\n\n" +
			"Tail mode follows growing files from a durable byte offset. A file renamed away (log rotation) is read to " +
			"its end, then the new file at the path is followed; a truncated file is read again from the start. " +
			"Message IDs use the file's device, inode and truncation count with the offset.",
		Fields: fields,
		Example: "type: file\npath: /var/spool/orders/in\ninclude: [\"ORD*.csv\"]\nready: stable\nafter: move\n" +
			"archive_dir: 'archive/{{ now().Format(\"2006-01-02\") }}'\nfailed_dir: failed\ncodec: {type: csv, header: true}\n",
		Check: checkSource,
	}
}

func checkSource(conf *adapters.Config) error {
	if conf.String("mode") == ModeTail {
		if c := conf.CodecName("codec"); wholeCodecs[c] {
			return conf.Errorf("codec", "mode: tail needs a line-oriented codec (lines, jsonl or csv), not %q", c)
		}
		return nil
	}
	return filekit.CheckSource(conf)
}

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	s := &source{dir: conf.String("path"), recursive: conf.Bool("recursive"), watch: conf.Bool("watch"), log: res.Logger}
	s.notify = make(chan struct{}, 1)
	o, err := filekit.SourceOptionsFrom(conf, res, filekit.OSFS{})
	if err != nil {
		return nil, err
	}
	o.Notify = s.notify
	if conf.String("mode") == ModeTail {
		s.inner = newTailSource(tailOptions{
			dir: o.Dir, matcher: o.Matcher, codec: o.Codec, batchSize: o.BatchSize,
			scanInterval: o.ScanInterval, pollInterval: conf.Duration("poll_interval"), notify: s.notify, res: res,
		})
		return s, nil
	}
	if s.inner, err = filekit.NewSource(o); err != nil {
		return nil, fmt.Errorf("%s: %w", conf.Path(), err)
	}
	return s, nil
}

func sinkSpec() *adapters.Spec {
	return &adapters.Spec{
		Summary: "Write records to local files, published atomically and rolled by records, bytes or age.",
		Description: "Each record goes to the file its `path` template renders to, under `base_dir`. Records are appended " +
			"to a hidden temp file in the target's directory (`.sluice-…tmp`) and a write is acknowledged only once " +
			"it is fsynced; publishing writes the codec's trailer, fsyncs, renames the file to its name and fsyncs the " +
			"directory, so a receiver never sees a partial file. Files are published when a rolling limit is reached, " +
			"at `max_age` and at shutdown. After a crash, leftover temp files are cut back to their last acknowledged " +
			"record, finished and published when the sink connects.\n\n" +
			"Errors: a path that fails to render or leaves `base_dir` and a record the codec cannot encode are " +
			"permanent (dead-lettered at once); a full disk is `unavailable` (the sink backs off without charging " +
			"attempts); other I/O errors such as permission denied are transient (retried).",
		Fields: filekit.SinkFields(),
		Example: "type: file\nbase_dir: /var/spool/out\npath: 'orders/{{ record.region }}/orders-{{ now().Format(\"2006-01-02\") }}.jsonl'\n" +
			"codec: jsonl\nmax_records: 100000\nmax_age: 5m\n",
		Check: filekit.CheckSink,
	}
}

func newSink(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	base := conf.String("base_dir")
	o, err := filekit.WriterOptionsFrom(conf, res, openRoot(base))
	if err != nil {
		return nil, err
	}
	w, err := filekit.NewWriter(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", conf.Path(), err)
	}
	return w, nil
}
