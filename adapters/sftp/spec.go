package sftp

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/filekit"
)

// connFields are the connection settings shared by the source and the sink.
func connFields() []adapters.Field {
	return []adapters.Field{
		{Name: "address", Type: adapters.TypeString, Check: checkAddress,
			Description: "The SSH server, `host:port` (`host` alone means port 22).", Example: "legacy-host:22"},
		{Name: "user", Type: adapters.TypeString, Description: "The login name.", Example: "batch"},
		{Name: "key_file", Type: adapters.TypeString, Optional: true,
			Description: "Private key to log in with (OpenSSH, PEM or PKCS#8; `~/` is the home directory). Tried before `ssh_agent` keys and the password.",
			Example:     "/etc/sluice/id_ed25519"},
		{Name: "key_passphrase", Type: adapters.TypeString, Optional: true, Secret: true,
			Description: "Passphrase of an encrypted `key_file`; use a `${VAR}` reference rather than the text itself.", Example: "${SFTP_KEY_PASSPHRASE}"},
		{Name: "key_passphrase_file", Type: adapters.TypeString, Optional: true,
			Description: "File holding the passphrase of `key_file` (a trailing newline is ignored)."},
		{Name: "password", Type: adapters.TypeString, Optional: true, Secret: true,
			Description: "Password, offered as `password` and `keyboard-interactive` authentication; use a `${VAR}` reference.", Example: "${SFTP_PASSWORD}"},
		{Name: "password_file", Type: adapters.TypeString, Optional: true,
			Description: "File holding the password (a trailing newline is ignored)."},
		{Name: "ssh_agent", Type: adapters.TypeBool, Default: false,
			Description: "Also log in with the keys of the SSH agent at `SSH_AUTH_SOCK`."},
		{Name: "known_hosts", Type: adapters.TypeString, Optional: true,
			Description: "OpenSSH known_hosts file the server's host key must be in (`~/.ssh/known_hosts` when neither this nor `host_key_fingerprint` is set). Read at every connection, so an edit applies at the next one.",
			Example:     "/etc/sluice/known_hosts"},
		{Name: "host_key_fingerprint", Type: adapters.TypeString, Optional: true, Check: checkFingerprint,
			Description: "Pin the server's host key by its SHA256 fingerprint, as `ssh-keygen -lf` prints it, instead of using known_hosts.",
			Example:     "SHA256:0akEkAPGtyikMIuXIQpC1QZlmRIEM3IAbEhfGOjsTvE"},
		{Name: "insecure_ignore_host_key", Type: adapters.TypeBool, Default: false,
			Description: "Accept any host key. For tests only: anyone between Sluice and the server can read and change the data. A warning is logged at every connection."},
		{Name: "connect_timeout", Type: adapters.TypeDuration, Default: "30s", Check: filekit.CheckPositive,
			Description: "Limit on connecting: TCP, SSH handshake, authentication and starting SFTP."},
		{Name: "keepalive", Type: adapters.TypeDuration, Default: "30s", Check: filekit.CheckNonNegative,
			Description: "Interval of SSH keepalive requests; a connection that does not answer one within the interval is dropped and dialled again, so a silent network failure does not hang transfers (0: off)."},
		{Name: "max_inflight", Type: adapters.TypeSize, Default: "4MiB", Check: checkInflight,
			Description: "Bytes of SFTP read (or write) requests in flight per file transfer: what keeps a link with latency busy (4 MiB fill 40 MB/s at 100 ms). Requests are 255 KiB with servers that report OpenSSH's limits (limits@openssh.com, OpenSSH 8.7 and later), else the 32 KiB every server takes."},
	}
}

// checkConn validates the relations between connFields.
func checkConn(conf *adapters.Config) error {
	if !conf.IsSet("key_file") && !conf.IsSet("password") && !conf.IsSet("password_file") && !conf.Bool("ssh_agent") {
		return conf.Errorf("", "no way to log in: set key_file, password, password_file or ssh_agent: true")
	}
	for _, pair := range [][2]string{{"password", "password_file"}, {"key_passphrase", "key_passphrase_file"}, {"known_hosts", "host_key_fingerprint"}} {
		if conf.IsSet(pair[0]) && conf.IsSet(pair[1]) {
			return conf.Errorf(pair[1], "set %s or %s, not both", pair[0], pair[1])
		}
	}
	for _, f := range []string{"key_passphrase", "key_passphrase_file"} {
		if conf.IsSet(f) && !conf.IsSet("key_file") {
			return conf.Errorf(f, "%s needs key_file", f)
		}
	}
	if conf.Bool("insecure_ignore_host_key") {
		for _, f := range []string{"known_hosts", "host_key_fingerprint"} {
			if conf.IsSet(f) {
				return conf.Errorf(f, "%s and insecure_ignore_host_key: true contradict each other", f)
			}
		}
	}
	return nil
}

func checkAddress(v any) error {
	s, _ := v.(string)
	if s == "" {
		return fmt.Errorf("empty address")
	}
	if _, err := splitAddress(s); err != nil {
		return err
	}
	return nil
}

// splitAddress returns host:port, adding port 22 when s has none.
func splitAddress(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(strings.Trim(s, "[]"), "22"), nil
		}
		return "", fmt.Errorf("address %q: want host:port", s)
	}
	if host == "" {
		return "", fmt.Errorf("address %q has no host", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: port must be 1 to 65535", s)
	}
	return s, nil
}

func checkFingerprint(v any) error {
	s, _ := v.(string)
	b64, ok := strings.CutPrefix(s, "SHA256:")
	if !ok {
		return fmt.Errorf("want a SHA256 fingerprint like SHA256:q2pY1h… (ssh-keygen -lf KEY prints it), got %q", s)
	}
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil || len(b) != 32 {
		return fmt.Errorf("fingerprint %q: after SHA256: want 43 characters of unpadded base64 (32 bytes)", s)
	}
	return nil
}

func checkInflight(v any) error {
	if n, _ := v.(int64); n < 32<<10 || n > 256<<20 {
		return fmt.Errorf("must be 32KiB to 256MiB, got %d", n)
	}
	return nil
}

// DefaultConcurrency is how many files the source transfers at once.
const DefaultConcurrency = 4

func sourceSpec() *adapters.Spec {
	fields := append(connFields(), filekit.SourceFields()...)
	fields = append(fields,
		adapters.Field{Name: "concurrency", Type: adapters.TypeInt, Default: DefaultConcurrency, Check: checkConcurrency,
			Description: "Files opened at once over the one SSH connection: the file being decoded and the next ones in line, whose content is fetched ahead when they are small (up to 1 MiB; a larger one streams when its turn comes). Records stay in file order; more files in flight hide the round trips of many small files."},
		adapters.Field{Name: "min_age", Type: adapters.TypeDuration, Default: 0, Check: filekit.CheckNonNegative,
			Description: "Leave files alone until their modification time is this old. It compares the server's mtime (whole seconds in SFTP) with this machine's clock, so clock skew shifts it; `ready: stable` needs no synchronised clocks."},
		adapters.Field{Name: "min_size", Type: adapters.TypeSize, Default: 0, Description: "Leave files smaller than this alone (done markers excepted)."},
		adapters.Field{Name: "max_size", Type: adapters.TypeSize, Default: 0, Description: "Leave files larger than this alone (0: no limit)."},
	)
	return &adapters.Spec{
		Summary: "Read files from a directory on an SSH server over SFTP.",
		Description: "Lists `path` every `scan_interval` with one directory read (plus one per subdirectory when `recursive`), " +
			"takes each file once it is complete (`ready`), streams it through the codec in batches and, once every record is " +
			"durably enqueued, moves it to `archive_dir`, deletes it or remembers it (`after`) — the semantics of the `file` " +
			"source, shared through `filekit`. `concurrency` files are transferred at once over a single SSH connection that " +
			"is kept across scans; each transfer keeps `max_inflight` bytes of SFTP reads in flight. Progress within a file is " +
			"checkpointed with every enqueued batch; message IDs derive from the pipeline, source, relative path, size, mtime " +
			"and the record's byte offset, so records read again after a crash or a dropped connection keep their IDs.\n\n" +
			"Errors: a refused connection, a failed login, an unknown or changed host key are `unavailable` and name the host " +
			"and user (never a secret); the engine retries `Connect` with backoff and shows the error in the pipeline status. " +
			"A connection lost during a transfer is dialled again and the file resumes from its last checkpoint.",
		Fields: fields,
		Example: "type: sftp\naddress: legacy-host:22\nuser: batch\nkey_file: /etc/sluice/id_ed25519\nknown_hosts: /etc/sluice/known_hosts\n" +
			"path: /outbound/orders\ninclude: [\"ORD*.csv\"]\nready: stable\nafter: move\n" +
			"archive_dir: 'done/{{ now().Format(\"2006-01-02\") }}'\ncodec: {type: csv, header: true, delimiter: \";\"}\n",
		Check: func(conf *adapters.Config) error {
			if err := checkConn(conf); err != nil {
				return err
			}
			if max := conf.Size("max_size"); max > 0 && conf.Size("min_size") > max {
				return conf.Errorf("min_size", "min_size (%d) is above max_size (%d)", conf.Size("min_size"), max)
			}
			return filekit.CheckSource(conf)
		},
	}
}

func checkConcurrency(v any) error {
	if n, _ := v.(int64); n < 1 || n > 64 {
		return fmt.Errorf("must be 1 to 64, got %d", n)
	}
	return nil
}

// sizeAgeFilter returns the filekit.SourceOptions.Filter of min_age,
// min_size and max_size, or nil when none is set.
func sizeAgeFilter(conf *adapters.Config) func(string, fs.FileInfo) bool {
	minAge, minSize, maxSize := conf.Duration("min_age"), conf.Size("min_size"), conf.Size("max_size")
	if minAge == 0 && minSize == 0 && maxSize == 0 {
		return nil
	}
	return func(_ string, fi fs.FileInfo) bool {
		n := fi.Size()
		if n < minSize || (maxSize > 0 && n > maxSize) {
			return false
		}
		return minAge == 0 || time.Since(fi.ModTime()) >= minAge
	}
}

func sinkSpec() *adapters.Spec {
	fields := connFields()
	for _, f := range filekit.SinkFields() {
		switch f.Name {
		case "base_dir":
			f.Description = "Remote directory every file is written under (absolute, or relative to the login directory); created when missing. No rendered path can leave it."
			f.Example = "/inbound/orders"
		case "if_exists":
			f.Enum = append(append([]string(nil), filekit.IfExistsModes...), filekit.IfExistsMoreModes...)
			f.Description = "When the published name exists: `rename_new` publishes as `NAME.1.EXT`, `NAME.2.EXT`, ... (what rolling needs); " +
				"`overwrite` replaces it atomically with `posix-rename@openssh.com` (servers without it: remove, then rename); " +
				"`fail` leaves it alone and keeps the new data in its hidden temp file, retrying the publication (the sink reports errors meanwhile) until the name is free; " +
				"`append` appends to it — not atomic: a receiver may see part of an append, and a crash during one repeats what was appended of it; the codec's header is written only into a new file."
		}
		fields = append(fields, f)
	}
	fields = append(fields,
		adapters.Field{Name: "file_mode", Type: adapters.TypeString, Optional: true, Check: checkMode,
			Description: "Permissions of published files, in octal (the server's default, often 0644 less its umask, when unset).", Example: "0640"},
	)
	return &adapters.Spec{
		Summary: "Write records to files on an SSH server over SFTP, published atomically.",
		Description: "Each record goes to the file its `path` template renders to, under `base_dir` (directories are created as " +
			"needed). Records are appended to a hidden temp file in the target directory (`.sluice-…tmp`); publishing writes " +
			"the codec's trailer, fsyncs and renames the file to its name, so a receiver never sees a partial file. Files roll " +
			"by records, bytes or age like the `file` sink's, optionally followed by a done marker.\n\n" +
			"Durability: `Write` returns only after the data is fsynced on the server with the `fsync@openssh.com` extension " +
			"(OpenSSH has it). Against a server without it, `Write` returns once the server has acknowledged every write " +
			"request: the data is in the server's operating system, not necessarily on its disk; a warning says so at " +
			"connection. SFTP cannot fsync a directory, so a rename is as durable as the server's filesystem makes it. " +
			"After a lost connection or a crash, temp files are cut back to their last acknowledged record and published " +
			"when the sink connects again.\n\n" +
			"Errors: connection, login and host-key failures are `unavailable` (the sink backs off as a whole, no attempt is " +
			"charged); a path leaving `base_dir` or a record the codec cannot encode is permanent; other errors, permission " +
			"denied included, are transient.",
		Fields: fields,
		Example: "type: sftp\naddress: partner-host:22\nuser: upload\nkey_file: /etc/sluice/id_ed25519\nknown_hosts: /etc/sluice/known_hosts\n" +
			"base_dir: /inbound\npath: 'orders-{{ now().Format(\"20060102\") }}.csv'\ncodec: {type: csv, header: true}\n" +
			"max_records: 100000\nmax_age: 5m\ndone_file: true\nfile_mode: \"0640\"\n",
		Check: func(conf *adapters.Config) error {
			if err := checkConn(conf); err != nil {
				return err
			}
			return filekit.CheckSink(conf)
		},
	}
}

func checkMode(v any) error {
	_, err := parseMode(v.(string))
	return err
}

func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("want an octal mode like 0640, got %q", s)
	}
	return fs.FileMode(n), nil
}
