package filekit

import (
	"context"
	"fmt"
	"path"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

func checkTemplate(v any) error {
	s, _ := v.(string)
	_, err := transform.CompileTemplate(s)
	return err
}

func checkGlobs(v any) error {
	l, _ := v.([]string)
	return CheckGlobs(l)
}

// CheckPositive is a Field.Check for int, float and duration fields that
// must be more than zero.
func CheckPositive(v any) error {
	switch n := v.(type) {
	case int64:
		if n < 1 {
			return fmt.Errorf("must be at least 1, got %d", n)
		}
	case float64:
		if n <= 0 {
			return fmt.Errorf("must be more than zero, got %v", n)
		}
	case time.Duration:
		if n <= 0 {
			return fmt.Errorf("must be more than zero, got %s", n)
		}
	}
	return nil
}

// CheckNonNegative is a Field.Check for int, float and duration fields that
// must be zero or more.
func CheckNonNegative(v any) error {
	switch n := v.(type) {
	case int64:
		if n < 0 {
			return fmt.Errorf("must be zero or more, got %d", n)
		}
	case float64:
		if n < 0 {
			return fmt.Errorf("must be zero or more, got %v", n)
		}
	case time.Duration:
		if n < 0 {
			return fmt.Errorf("must be zero or more, got %s", n)
		}
	}
	return nil
}

// SourceFields are the configuration fields of a file-like source, shared by
// the file and SFTP sources. path is the directory to read.
func SourceFields() []adapters.Field {
	return []adapters.Field{
		{Name: "path", Type: adapters.TypeString, Description: "Directory to read files from.", Example: "/var/spool/orders/in"},
		{Name: "include", Type: adapters.TypeStrings, Default: []any{"*"}, Check: checkGlobs,
			Description: "Glob patterns of the files to read. A pattern without `/` matches the base name at any depth; one with `/` matches the path relative to `path`, `**` standing for any number of directories.",
			Example:     []any{"ORD*.csv", "in/**/*.csv"}},
		{Name: "exclude", Type: adapters.TypeStrings, Optional: true, Check: checkGlobs,
			Description: "Glob patterns of files (and directories, when recursive) to leave alone, matched like `include`.", Example: []any{"*.tmp"}},
		{Name: "recursive", Type: adapters.TypeBool, Default: false, Description: "Also read files in subdirectories (the archive and failed directories are never read)."},
		{Name: "include_hidden", Type: adapters.TypeBool, Default: false, Description: "Also read files whose name starts with `.` (senders' and Sluice's temp files use such names)."},
		{Name: "ready", Type: adapters.TypeString, Default: ReadyStable, Enum: ReadyModes,
			Description: "When a file is complete: `stable` once its size and modification time stayed the same for `stable_for`; `done_file` once a marker `NAME` + `done_suffix` exists (removed after processing); `immediate` as soon as it is seen."},
		{Name: "stable_for", Type: adapters.TypeDuration, Default: "2s", Check: CheckNonNegative, Description: "How long size and modification time must stay unchanged (`ready: stable`)."},
		{Name: "done_suffix", Type: adapters.TypeString, Default: ".done", Description: "Suffix of done markers (`ready: done_file`)."},
		{Name: "after", Type: adapters.TypeString, Default: AfterKeep, Enum: AfterModes,
			Description: "What to do with a file once every record is durably enqueued: `move` it below `archive_dir`, `delete` it, or `keep` it (remembered by path, size and modification time, so it is read again only if it changes)."},
		{Name: "archive_dir", Type: adapters.TypeString, Optional: true, Check: checkTemplate,
			Description: "Where `after: move` puts files, relative to `path` unless absolute; a template that may use the date (`{{ now().Format(\"2006-01-02\") }}`) and `meta.name`, `meta.dir`, `meta.path` of the file. Files keep their path relative to `path` below it.",
			Example:     `archive/{{ now().Format("2006-01-02") }}`},
		{Name: "failed_dir", Type: adapters.TypeString, Optional: true,
			Description: "Where files that cannot be decoded at all are moved, relative to `path` unless absolute. Without it such a file stays in place and is skipped until it changes. A single malformed record never fails its file: it goes to the dead-letter queue.",
			Example:     "failed"},
		{Name: "codec", Type: adapters.TypeCodec, Default: "lines", Description: "How files are decoded into records; `none` makes each whole file one message (up to `max_raw_bytes`)."},
		{Name: "batch_size", Type: adapters.TypeInt, Default: DefaultBatchSize, Check: CheckPositive, Description: "Records per batch handed to the engine."},
		{Name: "max_raw_bytes", Type: adapters.TypeSize, Default: "64MiB", Check: CheckPositive, Description: "Largest file read with `codec: none`; a larger file fails (see `failed_dir`)."},
		{Name: "scan_interval", Type: adapters.TypeDuration, Default: "10s", Check: CheckPositive, Description: "How often the directory is listed in full."},
	}
}

// CheckSource validates the relations between SourceFields.
func CheckSource(conf *adapters.Config) error {
	if conf.String("after") == AfterMove && conf.String("archive_dir") == "" {
		return conf.Errorf("archive_dir", "after: move needs archive_dir")
	}
	if conf.IsSet("archive_dir") && conf.String("after") != AfterMove {
		return conf.Errorf("archive_dir", "archive_dir is used only with after: move (after is %q)", conf.String("after"))
	}
	if conf.Bool("recursive") {
		for _, f := range []string{"archive_dir", "failed_dir"} {
			d := conf.String(f)
			if d != "" && !path.IsAbs(d) && StaticDir(d) == "" {
				return conf.Errorf(f, "with recursive: true, %s must start with a fixed directory (e.g. archive/{{ ... }}) so that it is not read again", f)
			}
		}
	}
	return nil
}

// SourceOptionsFrom fills SourceOptions from a config decoded with
// SourceFields, for the filesystem fsys.
func SourceOptionsFrom(conf *adapters.Config, res adapters.Resources, fsys FS) (SourceOptions, error) {
	m, err := NewMatcher(MatcherOptions{
		Include: conf.Strings("include"), Exclude: conf.Strings("exclude"),
		Recursive: conf.Bool("recursive"), Hidden: conf.Bool("include_hidden"),
	})
	if err != nil {
		return SourceOptions{}, conf.Errorf("include", "%v", err)
	}
	o := SourceOptions{
		FS: fsys, Dir: conf.String("path"), Matcher: m,
		Ready: conf.String("ready"), StableFor: conf.Duration("stable_for"), DoneSuffix: conf.String("done_suffix"),
		After: conf.String("after"), FailedDir: conf.String("failed_dir"),
		Codec: conf.Codec("codec"), BatchSize: conf.Int("batch_size"), MaxRawBytes: conf.Size("max_raw_bytes"),
		ScanInterval: conf.Duration("scan_interval"), Resources: res,
	}
	if a := conf.String("archive_dir"); a != "" {
		if o.ArchiveDir, err = transform.CompileTemplate(a); err != nil {
			return SourceOptions{}, conf.Errorf("archive_dir", "%v", err)
		}
	}
	return o, nil
}

// SinkFields are the configuration fields of a file-like sink, shared by the
// file and SFTP sinks.
func SinkFields() []adapters.Field {
	return []adapters.Field{
		{Name: "base_dir", Type: adapters.TypeString, Description: "Directory every file is written under; created when missing. No rendered path can leave it.", Example: "/var/spool/out"},
		{Name: "path", Type: adapters.TypeString, Check: checkTemplate,
			Description: "File path relative to `base_dir`, a template evaluated per record. A path that renders absolute or climbs out with `..` (or through a symbolic link) fails its message as permanent.",
			Example:     `out/{{ record.region }}/orders-{{ now().Format("2006-01-02") }}.csv`},
		{Name: "codec", Type: adapters.TypeCodec, Default: "jsonl", Description: "How records are encoded; `none` writes each message's raw payload as it is."},
		{Name: "max_records", Type: adapters.TypeInt, Default: 0, Check: CheckNonNegative, Description: "Publish a file once it holds this many records (0: no limit)."},
		{Name: "max_bytes", Type: adapters.TypeSize, Default: 0, Description: "Publish a file once it holds this many bytes; it may pass the limit by one record (0: no limit)."},
		{Name: "max_age", Type: adapters.TypeDuration, Default: 0, Check: CheckNonNegative, Description: "Publish a file this long after it was opened, even when no more records come (0: no limit; files are then published by the other limits and at shutdown)."},
		{Name: "if_exists", Type: adapters.TypeString, Default: IfExistsRenameNew, Enum: IfExistsModes,
			Description: "When the published name exists: `rename_new` publishes as `NAME.1.EXT`, `NAME.2.EXT`, ... (nothing published is replaced; what rolling needs), `overwrite` replaces it atomically."},
		{Name: "done_file", Type: adapters.TypeBool, Default: false, Description: "Create an empty marker `NAME` + `done_suffix` after publishing each file, for receivers that wait for one."},
		{Name: "done_suffix", Type: adapters.TypeString, Default: ".done", Description: "Suffix of done markers."},
	}
}

// CheckSink validates the relations between SinkFields.
func CheckSink(conf *adapters.Config) error {
	if conf.Bool("done_file") && conf.String("done_suffix") == "" {
		return conf.Errorf("done_suffix", "done_file: true needs a non-empty done_suffix")
	}
	return nil
}

// WriterOptionsFrom fills WriterOptions from a config decoded with
// SinkFields; open opens the filesystem rooted at base_dir.
func WriterOptionsFrom(conf *adapters.Config, res adapters.Resources, open func(ctx context.Context) (WriteFS, error)) (WriterOptions, error) {
	t, err := transform.CompileTemplate(conf.String("path"))
	if err != nil {
		return WriterOptions{}, conf.Errorf("path", "%v", err)
	}
	o := WriterOptions{
		Open: open, Path: t, Codec: conf.Codec("codec"),
		MaxRecords: conf.Int64("max_records"), MaxBytes: conf.Size("max_bytes"), MaxAge: conf.Duration("max_age"),
		IfExists: conf.String("if_exists"), Resources: res,
	}
	if conf.Bool("done_file") {
		o.DoneSuffix = conf.String("done_suffix")
	}
	return o, nil
}
