package testenv

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHDOptions tune a private sshd.
type SSHDOptions struct {
	// Password enables password and keyboard-interactive authentication.
	// sshd checks the system's passwords (UsePAM no): useful to test that a
	// wrong password is refused, since tests cannot know a right one.
	Password bool
	// SFTPServer serves SFTP with OpenSSH's sftp-server program, through
	// the user's shell, instead of inside sshd ("Subsystem sftp
	// internal-sftp", the same code without two process starts per
	// session).
	SFTPServer bool
	// User is the account to log in as instead of the current user, for
	// tests of permissions (root may read anything): an existing account
	// such as "nobody", which works with internal-sftp even without a
	// login shell.
	User string
}

// SSHDServer is a private OpenSSH sshd for tests: its own generated ed25519
// host key and user key, public-key authentication through an
// AuthorizedKeysFile of its own, OpenSSH's SFTP server (internal-sftp, or
// the sftp-server program), on a free port of 127.0.0.1. Users log in as the user running the tests (root
// in the sandbox, allowed by PermitRootLogin yes in the private config).
// There is no chroot (sshd refuses one under the world-writable /tmp):
// Root is a fresh directory for the test's files (mode 0755, owned by the
// current user), used by absolute paths.
type SSHDServer struct {
	// Addr is "127.0.0.1:PORT"; Host and Port its parts.
	Addr string
	Host string
	Port int
	// User is the login name.
	User string
	// KeyFile is the user's private key (OpenSSH format, no passphrase);
	// Signer the same key.
	KeyFile string
	Signer  ssh.Signer
	// HostKey is the server's public host key; KnownHosts a known_hosts
	// file holding it for [127.0.0.1]:PORT; Fingerprint its SHA256
	// fingerprint ("SHA256:...").
	HostKey     ssh.PublicKey
	KnownHosts  string
	Fingerprint string
	// Root is an empty directory for the test's remote files.
	Root string

	dir  string // config, keys, log
	conf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// SSHD starts a private sshd for one test, stopped and removed in
// t.Cleanup. When sshd cannot be had (not installed and not installable)
// the test is skipped, except with CI=true, where it fails.
func SSHD(t testing.TB, opts ...SSHDOptions) *SSHDServer {
	t.Helper()
	var o SSHDOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := StartSSHD(o)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sshd is required in CI: %v", err)
		}
		t.Skipf("no sshd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return s
}

// StartSSHD starts a private sshd outside of a test (benchmarks); Close
// stops it and removes its files.
func StartSSHD(o SSHDOptions) (*SSHDServer, error) {
	bin, err := sshdBinary()
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// The privilege separation directory sshd insists on; the
		// openssh-server package's service would create it.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "sluice-sshd-")
	if err != nil {
		return nil, err
	}
	s := &SSHDServer{dir: dir, User: u.Username, Host: "127.0.0.1", Root: filepath.Join(dir, "root")}
	if o.User != "" {
		if _, err := user.Lookup(o.User); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.User = o.User
	}
	if err := s.setup(bin, o); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *SSHDServer) setup(bin string, o SSHDOptions) error {
	if err := os.Mkdir(s.Root, 0o755); err != nil {
		return err
	}
	hostPub, err := writeKey(filepath.Join(s.dir, "host_ed25519"), nil)
	if err != nil {
		return err
	}
	s.HostKey = hostPub
	s.Fingerprint = ssh.FingerprintSHA256(hostPub)
	s.KeyFile = filepath.Join(s.dir, "id_ed25519")
	userPub, err := writeKey(s.KeyFile, &s.Signer)
	if err != nil {
		return err
	}
	if err := s.AddAuthorizedKey(userPub); err != nil {
		return err
	}
	// sshd reads authorized_keys as the user logging in.
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(s.dir, "authorized_keys"), 0o644); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	s.KnownHosts = filepath.Join(s.dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, hostPub) + "\n"
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		return err
	}
	subsystem := "internal-sftp"
	if o.SFTPServer {
		p, err := sftpServerBinary()
		if err != nil {
			return err
		}
		subsystem = p
	}
	yesNo := map[bool]string{true: "yes", false: "no"}
	conf := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(s.dir, "host_ed25519"),
		"PidFile " + filepath.Join(s.dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(s.dir, "authorized_keys"),
		"PermitRootLogin yes",
		"StrictModes no",
		"UsePAM no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication " + yesNo[o.Password],
		"KbdInteractiveAuthentication no",
		"PermitEmptyPasswords no",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"UseDNS no",
		"MaxStartups 200",
		"MaxSessions 100",
		"LogLevel VERBOSE",
		"Subsystem sftp " + subsystem,
	}
	s.conf = filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(s.conf, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if out, err := exec.Command(bin, "-t", "-f", s.conf).CombinedOutput(); err != nil {
		return fmt.Errorf("testenv: sshd -t: %v: %s", err, lastLines(string(out), 5))
	}
	return nil
}

// writeKey generates an ed25519 key, writes its private half to name (mode
// 0600) and its public half to name.pub, and returns the public key.
func writeKey(name string, signer *ssh.Signer) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "sluice test key")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(name, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(name+".pub", ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		return nil, err
	}
	if signer != nil {
		if *signer, err = ssh.NewSignerFromKey(priv); err != nil {
			return nil, err
		}
	}
	return sshPub, nil
}

// AddAuthorizedKey lets a further key log in.
func (s *SSHDServer) AddAuthorizedKey(pub ssh.PublicKey) error {
	f, err := os.OpenFile(filepath.Join(s.dir, "authorized_keys"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(ssh.MarshalAuthorizedKey(pub))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Dir returns a directory private to the server (keys, config, log), for
// files a test wants beside them: other keys, other known_hosts files.
func (s *SSHDServer) Dir() string { return s.dir }

// Log returns what sshd logged so far.
func (s *SSHDServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "sshd.log"))
	return string(b)
}

// Start starts sshd and waits until it answers with its SSH banner.
// Starting a running server is an error.
func (s *SSHDServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("testenv: sshd is already running")
	}
	bin, err := sshdBinary()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-D", "-e", "-f", s.conf)
	done, err := spawn(cmd, filepath.Join(s.dir, "sshd.log"))
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		if banner(s.Addr) {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			return fmt.Errorf("testenv: sshd exited at start: %s", lastLines(s.Log(), 8))
		default:
		}
		if time.Now().After(deadline) {
			s.killLocked()
			return fmt.Errorf("testenv: sshd did not answer within 15s: %s", lastLines(s.Log(), 8))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// banner reports whether an SSH server answers at addr.
func banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// Stop kills sshd and every session it serves with SIGKILL, as a crash or
// a pulled cable would: clients see their connections drop. Stopping a
// stopped server does nothing.
func (s *SSHDServer) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.killLocked()
}

func (s *SSHDServer) killLocked() error {
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	// Sessions are children that call setsid, so neither the process
	// group nor the listener's death reaches them: freeze the listener so
	// it forks no more, then kill the whole tree, leaves first.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return errors.New("testenv: sshd did not exit within 10s of SIGKILL")
	}
	s.cmd = nil
	return nil
}

// Restart stops sshd (see Stop) and starts it again on the same port with
// the same keys.
func (s *SSHDServer) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Close stops sshd and removes its files, Root included.
func (s *SSHDServer) Close() error {
	err := s.Stop()
	if rerr := os.RemoveAll(s.dir); err == nil {
		err = rerr
	}
	return err
}

// descendants returns the processes below pid, deepest first.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			walk(c)
			out = append(out, c)
		}
	}
	walk(pid)
	return out
}

// Dial opens an SSH connection to the server with the test user's key,
// checking the host key.
func (s *SSHDServer) Dial() (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.Signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	})
}

// sshdBinary finds sshd, installing the openssh-server package when it is
// missing and we are root.
func sshdBinary() (string, error) {
	return findOrInstall("openssh-server", func() (string, error) {
		for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		if p, err := exec.LookPath("sshd"); err == nil {
			return filepath.Abs(p) // sshd re-executes itself: it needs an absolute path
		}
		return "", errors.New("sshd not found (install the openssh-server package)")
	})
}

// sftpServerBinary finds OpenSSH's sftp-server program.
func sftpServerBinary() (string, error) {
	return findOrInstall("openssh-sftp-server", func() (string, error) {
		for _, p := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server", "/usr/lib/sftp-server"} {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", errors.New("sftp-server not found (install the openssh-sftp-server package)")
	})
}
