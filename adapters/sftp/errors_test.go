package sftp

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	"github.com/sluicehq/sluice/internal/testenv"
)

// connectErr connects a source and a sink built on raw (plus path or
// base_dir) and returns their errors.
func connectErrs(t *testing.T, raw map[string]any) []error {
	t.Helper()
	var errs []error
	srcRaw, sinkRaw := map[string]any{"path": "/"}, map[string]any{"base_dir": "/tmp", "path": "x"}
	for k, v := range raw {
		srcRaw[k], sinkRaw[k] = v, v
	}
	src := newSrc(t, srcRaw, adaptertest.MemoryState(), false)
	errs = append(errs, src.Connect(context.Background()))
	sink, err := newSink(decodeConf(t, sinkSpec(), sinkRaw), adaptertest.Resources(t, "remote", adaptertest.MemoryState()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close(context.Background()) })
	errs = append(errs, sink.Connect(context.Background()))
	return errs
}

// wantUnavailable checks that each error is Unavailable, names the account
// and says want, and that none holds a secret.
func wantUnavailable(t *testing.T, errs []error, who, want string, secrets ...string) {
	t.Helper()
	for i, err := range errs {
		side := []string{"source", "sink"}[i]
		if err == nil {
			t.Fatalf("%s: Connect succeeded, want an error saying %q", side, want)
		}
		msg := err.Error()
		t.Logf("%s: %s", side, msg)
		if !strings.Contains(msg, who) || !strings.Contains(msg, want) {
			t.Fatalf("%s: %q does not name %s and say %q", side, msg, who, want)
		}
		for _, s := range secrets {
			if strings.Contains(msg, s) {
				t.Fatalf("%s: the error shows a secret: %q", side, msg)
			}
		}
		if k := adapters.KindOf(err); k != adapters.Unavailable {
			t.Fatalf("%s: %q is %v, want unavailable", side, msg, k)
		}
	}
}

func TestHostKeyChecks(t *testing.T) {
	srv := testenv.SSHD(t)
	who := srv.User + "@" + srv.Addr
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := ssh.NewPublicKey(other)
	write := func(name, content string) string {
		p := filepath.Join(t.TempDir(), name)
		writeFile(t, p, content)
		return p
	}
	changed := write("changed", knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, otherPub)+"\n")
	unknown := write("unknown", knownhosts.Line([]string{"[example.org]:22"}, srv.HostKey)+"\n")

	t.Run("changed", func(t *testing.T) {
		wantUnavailable(t, connectErrs(t, conf(srv, "known_hosts", changed)), who, "does not match known_hosts "+changed+":1")
	})
	t.Run("unknown", func(t *testing.T) {
		wantUnavailable(t, connectErrs(t, conf(srv, "known_hosts", unknown)), who, "is not in known_hosts "+unknown)
	})
	t.Run("missing known_hosts", func(t *testing.T) {
		wantUnavailable(t, connectErrs(t, conf(srv, "known_hosts", filepath.Join(t.TempDir(), "none"))), who, "known_hosts")
	})
	t.Run("fingerprint mismatch", func(t *testing.T) {
		raw := conf(srv, "host_key_fingerprint", ssh.FingerprintSHA256(otherPub))
		delete(raw, "known_hosts")
		wantUnavailable(t, connectErrs(t, raw), who, "does not match host_key_fingerprint")
	})
	t.Run("fingerprint", func(t *testing.T) {
		raw := conf(srv, "host_key_fingerprint", srv.Fingerprint, "path", srv.Root)
		delete(raw, "known_hosts")
		openSrc(t, raw, adaptertest.MemoryState(), false)
	})
	t.Run("insecure warns at every connect", func(t *testing.T) {
		raw := conf(srv, "insecure_ignore_host_key", true, "path", srv.Root)
		delete(raw, "known_hosts")
		logs := &captured{}
		res := adaptertest.Resources(t, "remote", adaptertest.MemoryState())
		res.Logger = slog.New(logs)
		s, err := newSource(decodeConf(t, sourceSpec(), raw), res)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		if err := s.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := s.Read(ctx); err == nil {
			t.Fatal("Read over a killed connection succeeded")
		}
		if err := s.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := logs.count(slog.LevelWarn, "insecure_ignore_host_key"); n != 2 {
			t.Fatalf("%d warnings about the unchecked host key for 2 connections", n)
		}
	})
}

type captured struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r)
	c.mu.Unlock()
	return nil
}
func (c *captured) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captured) WithGroup(string) slog.Handler      { return c }

func (c *captured) count(level slog.Level, substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			n++
		}
	}
	return n
}

func TestAuthenticationFailures(t *testing.T) {
	srv := testenv.SSHD(t, testenv.SSHDOptions{Password: true})
	who := srv.User + "@" + srv.Addr
	const secret = "hunter2-not-the-password"
	t.Run("wrong password", func(t *testing.T) {
		raw := conf(srv, "password", secret)
		delete(raw, "key_file")
		wantUnavailable(t, connectErrs(t, raw), who, "authentication failed: the server accepted none of password", secret)
	})
	t.Run("wrong password from a file", func(t *testing.T) {
		pw := filepath.Join(t.TempDir(), "pw")
		writeFile(t, pw, secret+"\n")
		raw := conf(srv, "password_file", pw)
		delete(raw, "key_file")
		wantUnavailable(t, connectErrs(t, raw), who, "authentication failed", secret)
	})
	t.Run("key not authorized", func(t *testing.T) {
		key := writeKey(t, "")
		wantUnavailable(t, connectErrs(t, conf(srv, "key_file", key)), who, "the server accepted none of key_file "+key)
	})
	t.Run("encrypted key", func(t *testing.T) {
		const pass = "correct horse battery staple"
		key := writeKey(t, pass)
		pub := readPub(t, key)
		if err := srv.AddAuthorizedKey(pub); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, connectErrs(t, conf(srv, "key_file", key)), who, "is encrypted: set key_passphrase")
		wantUnavailable(t, connectErrs(t, conf(srv, "key_file", key, "key_passphrase", "wrong "+pass)), who, "wrong passphrase", "wrong "+pass)
		pf := filepath.Join(t.TempDir(), "pass")
		writeFile(t, pf, pass+"\n")
		openSrc(t, conf(srv, "key_file", key, "key_passphrase_file", pf, "path", srv.Root), adaptertest.MemoryState(), false)
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		wantUnavailable(t, connectErrs(t, conf(srv, "address", addr)), srv.User+"@"+addr, "connect: ")
	})
}

func TestSSHAgent(t *testing.T) {
	srv := testenv.SSHD(t)
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	if err := srv.AddAuthorizedKey(signer.PublicKey()); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(srv.Dir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(keyring, c)
			}()
		}
	}()
	raw := conf(srv, "ssh_agent", true, "path", srv.Root)
	delete(raw, "key_file")
	t.Setenv("SSH_AUTH_SOCK", "")
	wantUnavailable(t, connectErrs(t, raw), srv.User+"@"+srv.Addr, "SSH_AUTH_SOCK is not set")
	t.Setenv("SSH_AUTH_SOCK", sock)
	openSrc(t, raw, adaptertest.MemoryState(), false)
}

// TestPermissionsAndMissingPaths logs in as nobody, who can read neither a
// root-only directory nor write under the root-owned Root.
func TestPermissionsAndMissingPaths(t *testing.T) {
	srv := testenv.SSHD(t, testenv.SSHDOptions{User: "nobody"})
	who := "nobody@" + srv.Addr
	secret := filepath.Join(srv.Root, "secret")
	if err := os.Mkdir(secret, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(secret, "a.txt"), "x\n")
	check := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want one saying %q", want)
		}
		t.Log(err)
		for _, w := range append(want, who) {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%q does not say %q", err, w)
			}
		}
	}
	t.Run("unreadable source directory", func(t *testing.T) {
		src := openSrc(t, srcConf(srv, secret), adaptertest.MemoryState(), false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := src.Read(ctx)
		check(t, err, `list "`+secret+`"`, "permission denied")
	})
	t.Run("missing source directory", func(t *testing.T) {
		missing := filepath.Join(srv.Root, "missing")
		err := newSrc(t, srcConf(srv, missing), adaptertest.MemoryState(), false).Connect(context.Background())
		check(t, err, `stat "`+missing+`"`, "file does not exist")
	})
	t.Run("unwritable sink directory", func(t *testing.T) {
		base := filepath.Join(srv.Root, "out")
		s, err := newSink(decodeConf(t, sinkSpec(), conf(srv, "base_dir", base, "path", "x.txt", "codec", "lines")),
			adaptertest.Resources(t, "remote", adaptertest.MemoryState()))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		err = s.Connect(context.Background())
		check(t, err, base, "permission denied")
	})
}

// writeKey writes a new ed25519 private key, encrypted when pass is set
// (by ssh-keygen with one KDF round: Go's bcrypt of 16 rounds takes
// seconds under the race detector).
func writeKey(t *testing.T, pass string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "id_ed25519")
	if pass != "" {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-a", "1", "-N", pass, "-C", "", "-f", name).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
		return name
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	if err := os.WriteFile(name+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

func readPub(t *testing.T, key string) ssh.PublicKey {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(readFile(t, key+".pub")))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
