package sftp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sluicehq/sluice/adapters"
)

// dialOptions are the connection settings of a source or sink, from
// connFields. Secrets are read from their files at each dial, so a rotated
// password file applies at the next connection.
type dialOptions struct {
	addr, user                 string
	keyFile                    string
	passphrase, passphraseFile string
	password, passwordFile     string
	agent                      bool
	knownHosts, fingerprint    string
	insecure                   bool
	timeout, keepalive         time.Duration
	maxInflight                int64
	log                        *slog.Logger
}

func dialOptionsFrom(conf *adapters.Config, log *slog.Logger) dialOptions {
	addr, _ := splitAddress(conf.String("address"))
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return dialOptions{
		addr: addr, user: conf.String("user"),
		keyFile: conf.String("key_file"), passphrase: conf.String("key_passphrase"), passphraseFile: conf.String("key_passphrase_file"),
		password: conf.String("password"), passwordFile: conf.String("password_file"), agent: conf.Bool("ssh_agent"),
		knownHosts: conf.String("known_hosts"), fingerprint: conf.String("host_key_fingerprint"),
		insecure: conf.Bool("insecure_ignore_host_key"),
		timeout:  conf.Duration("connect_timeout"), keepalive: conf.Duration("keepalive"), maxInflight: conf.Size("max_inflight"),
		log: log,
	}
}

// who names the account in messages: "user@host:port". Never a secret.
func (o *dialOptions) who() string { return o.user + "@" + o.addr }

// expandHome replaces a leading "~/" with the home directory.
func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// readSecretFile reads a password or passphrase file; a trailing newline
// is not part of the secret.
func readSecretFile(field, name string) (string, error) {
	b, err := os.ReadFile(expandHome(name))
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// auth returns the authentication methods to offer, the names of what was
// configured (for messages) and a cleanup for the agent connection.
func (o *dialOptions) auth() ([]ssh.AuthMethod, []string, func(), error) {
	var methods []ssh.AuthMethod
	var tried []string
	cleanup := func() {}
	var signers []ssh.Signer
	if o.keyFile != "" {
		s, err := o.loadKey()
		if err != nil {
			return nil, nil, cleanup, err
		}
		signers = append(signers, s)
		tried = append(tried, "key_file "+o.keyFile)
	}
	var agentSigners func() ([]ssh.Signer, error)
	if o.agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, nil, cleanup, errors.New("ssh_agent: true but SSH_AUTH_SOCK is not set")
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, cleanup, fmt.Errorf("ssh_agent: connect to SSH_AUTH_SOCK %s: %w", sock, err)
		}
		cleanup = func() { c.Close() }
		agentSigners = agent.NewClient(c).Signers
		tried = append(tried, "ssh_agent keys")
	}
	if len(signers) > 0 || agentSigners != nil {
		// One publickey method: the ssh package tries each method name once.
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			out := append([]ssh.Signer(nil), signers...)
			if agentSigners != nil {
				more, err := agentSigners()
				if err != nil {
					o.log.Warn("cannot list the SSH agent's keys", "error", err)
				}
				out = append(out, more...)
			}
			return out, nil
		}))
	}
	password := o.password
	if o.passwordFile != "" {
		p, err := readSecretFile("password_file", o.passwordFile)
		if err != nil {
			cleanup()
			return nil, nil, func() {}, err
		}
		password = p
	}
	if password != "" {
		methods = append(methods,
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = password
				}
				return answers, nil
			}))
		tried = append(tried, "password")
	}
	return methods, tried, cleanup, nil
}

func (o *dialOptions) loadKey() (ssh.Signer, error) {
	name := expandHome(o.keyFile)
	pem, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	pass := o.passphrase
	if o.passphraseFile != "" {
		if pass, err = readSecretFile("key_passphrase_file", o.passphraseFile); err != nil {
			return nil, err
		}
	}
	if pass == "" {
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("key_file %s is encrypted: set key_passphrase or key_passphrase_file", name)
		}
		if err != nil {
			return nil, fmt.Errorf("key_file %s: %w", name, err)
		}
		return s, nil
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fmt.Errorf("key_file %s: wrong passphrase", name)
	}
	if err != nil {
		return nil, fmt.Errorf("key_file %s: %w", name, err)
	}
	return s, nil
}

// hostKeyError is a host key the configuration does not accept.
type hostKeyError struct {
	addr, got string // got: "TYPE SHA256:..."
	why       string
}

func (e *hostKeyError) Error() string { return "host key of " + e.addr + " (" + e.got + ") " + e.why }

// hostKeys returns the host key check and the key algorithms to ask the
// server for (those known_hosts holds for it, so that a server with
// several host keys presents the one that can be checked).
func (o *dialOptions) hostKeys() (ssh.HostKeyCallback, []string, error) {
	describe := func(k ssh.PublicKey) string { return k.Type() + " " + ssh.FingerprintSHA256(k) }
	switch {
	case o.insecure:
		return ssh.InsecureIgnoreHostKey(), nil, nil
	case o.fingerprint != "":
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if got := ssh.FingerprintSHA256(key); got != o.fingerprint {
				return &hostKeyError{addr: o.addr, got: describe(key), why: "does not match host_key_fingerprint " + o.fingerprint + ": the server's key changed, or someone is in between"}
			}
			return nil
		}, nil, nil
	}
	file := o.knownHosts
	if file == "" {
		file = "~/.ssh/known_hosts"
	}
	name := expandHome(file)
	cb, err := knownhosts.New(name)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w (set known_hosts or host_key_fingerprint)", err)
	}
	check := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return &hostKeyError{addr: o.addr, got: describe(key), why: "is not in known_hosts " + name +
				": check the fingerprint with the server's administrator, then add it (ssh-keyscan -p PORT HOST >> FILE) or set host_key_fingerprint"}
		case errors.As(err, &ke):
			return &hostKeyError{addr: o.addr, got: describe(key), why: fmt.Sprintf(
				"does not match known_hosts %s:%d: the server's key changed, or someone is in between", ke.Want[0].Filename, ke.Want[0].Line)}
		case errors.As(err, &re):
			return &hostKeyError{addr: o.addr, got: describe(key), why: fmt.Sprintf("is marked @revoked in %s:%d", re.Revoked.Filename, re.Revoked.Line)}
		}
		return err
	}
	return check, knownAlgorithms(cb, o.addr), nil
}

// knownAlgorithms returns the key algorithms known_hosts holds for addr, by
// asking the callback about a key it cannot know.
func knownAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	err := cb(knownhosts.Normalize(addr), &net.TCPAddr{IP: net.IPv4zero}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range ke.Want {
		if k.Key.Type() == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
		}
		add(k.Key.Type())
	}
	return algos
}

// probeKey is a public key of a type no known_hosts line holds.
type probeKey struct{}

func (probeKey) Type() string                        { return "sluice-probe" }
func (probeKey) Marshal() []byte                     { return []byte("sluice-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe") }

// session is one SSH connection with its SFTP client.
type session struct {
	ssh         *ssh.Client
	sftp        *sftp.Client
	dead        chan struct{} // closed when the connection ended
	posixRename bool
	fsync       bool
	wg          sync.WaitGroup
}

func (s *session) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

func (s *session) close() {
	s.sftp.Close()
	s.ssh.Close()
	s.wg.Wait()
}

// dial connects, authenticates and starts SFTP. Errors are Unavailable and
// name the account, never a secret.
func (o *dialOptions) dial(ctx context.Context) (*session, error) {
	fail := func(format string, args ...any) error {
		return adapters.UnavailableError(fmt.Errorf("sftp %s: "+format, append([]any{o.who()}, args...)...))
	}
	methods, tried, cleanup, err := o.auth()
	defer cleanup()
	if err != nil {
		return nil, fail("%w", err)
	}
	hostKey, algos, err := o.hostKeys()
	if err != nil {
		return nil, fail("%w", err)
	}
	if o.insecure {
		o.log.Warn("insecure_ignore_host_key: the server's host key is not checked; anyone in between can read and change the data", "address", o.addr)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	nc, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, fail("connect: %w", unwrapOp(err))
	}
	// The handshake and the SFTP start have no context: a deadline and a
	// close on cancellation bound them.
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	conf := &ssh.ClientConfig{User: o.user, Auth: methods, HostKeyCallback: hostKey, HostKeyAlgorithms: algos, Timeout: o.timeout}
	c, chans, reqs, err := ssh.NewClientConn(nc, o.addr, conf)
	if err != nil {
		stop()
		nc.Close()
		if ctx.Err() != nil {
			return nil, fail("connect: %w", ctx.Err())
		}
		var hk *hostKeyError
		switch {
		case errors.As(err, &hk):
			return nil, fail("%w", hk)
		case strings.Contains(err.Error(), "unable to authenticate"):
			if len(tried) == 0 {
				tried = []string{"nothing"}
			}
			return nil, fail("authentication failed: the server accepted none of %s", strings.Join(tried, ", "))
		}
		return nil, fail("SSH handshake: %w", err)
	}
	sc := ssh.NewClient(c, chans, reqs)
	big := strings.HasPrefix(string(sc.ServerVersion()), "SSH-2.0-OpenSSH_")
	client, err := o.newSFTP(sc, big)
	if err == nil && big {
		if _, ok := client.HasExtension("limits@openssh.com"); !ok {
			// An OpenSSH older than 8.7 answers reads above 64 KiB short.
			client.Close()
			client, err = o.newSFTP(sc, false)
		}
	}
	stopped := stop()
	if err != nil || !stopped {
		sc.Close()
		if ctx.Err() != nil {
			return nil, fail("start SFTP: %w", ctx.Err())
		}
		return nil, fail("start SFTP (is the sftp subsystem enabled on the server?): %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	s := &session{ssh: sc, sftp: client, dead: make(chan struct{})}
	_, s.posixRename = client.HasExtension("posix-rename@openssh.com")
	_, s.fsync = client.HasExtension("fsync@openssh.com")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = sc.Wait()
		close(s.dead)
	}()
	if o.keepalive > 0 {
		s.wg.Add(1)
		go s.keepalive(o.keepalive)
	}
	return s, nil
}

// openSSHPacket is the largest read and write OpenSSH's sftp-server serves
// in one request since 8.7 (SFTP_MAX_READ_LENGTH, which limits@openssh.com
// reports); 32 KiB is what the protocol promises everywhere.
const (
	openSSHPacket = 256<<10 - 1024
	basePacket    = 32 << 10
)

// newSFTP starts an SFTP session on sc with big (OpenSSH) or base packets,
// and max_inflight bytes of requests in flight per transfer.
func (o *dialOptions) newSFTP(sc *ssh.Client, big bool) (*sftp.Client, error) {
	packet := basePacket
	size := sftp.MaxPacket(basePacket)
	if big {
		packet, size = openSSHPacket, sftp.MaxPacketUnchecked(openSSHPacket)
	}
	return sftp.NewClient(sc, size,
		sftp.MaxConcurrentRequestsPerFile(int(max(1, min(1024, o.maxInflight/int64(packet))))),
		sftp.UseConcurrentReads(true),
		sftp.UseConcurrentWrites(true),
		sftp.UseFstat(true),
	)
}

// keepalive sends a keepalive request every interval and drops the
// connection when one is not answered within the interval.
func (s *session) keepalive(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := s.ssh.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		timer := time.NewTimer(every)
		select {
		case err := <-answered:
			timer.Stop()
			if err != nil {
				s.ssh.Close()
			}
		case <-timer.C:
			s.ssh.Close()
		case <-s.dead:
			timer.Stop()
			return
		}
	}
}

// unwrapOp drops the *net.OpError and *os.SyscallError layers ("dial tcp
// 1.2.3.4:22: connect: ...") of what the message already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) && sc.Err != nil {
		err = sc.Err
	}
	return err
}

// conn is the connection of one source or sink: dialled by Connect, kept
// across operations and scans, dropped when it fails, dialled again by the
// next Connect. It is safe for concurrent use.
type conn struct {
	o dialOptions

	mu      sync.Mutex
	cur     *session
	closed  bool
	warned  bool // the missing fsync extension was reported
	lastErr error
}

func newConn(o dialOptions) *conn { return &conn{o: o} }

// connect dials unless a live connection exists.
func (c *conn) connect(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return adapters.ErrClosed
	}
	if c.cur != nil && c.cur.alive() {
		return nil
	}
	if c.cur != nil {
		go c.cur.close()
		c.cur = nil
	}
	s, err := c.o.dial(ctx)
	if err != nil {
		c.lastErr = err
		return err
	}
	c.cur, c.lastErr = s, nil
	c.o.log.Info("connected", "address", c.o.addr, "user", c.o.user, "server", string(s.ssh.ServerVersion()),
		"posix_rename", s.posixRename, "fsync", s.fsync)
	if !s.fsync && !c.warned {
		c.warned = true
		c.o.log.Warn("the server lacks fsync@openssh.com: written data is acknowledged once the server has it, not once it is on its disk", "address", c.o.addr)
	}
	return nil
}

// ended returns a channel closed when the current connection ends (at
// once when there is none, or the conn is closed).
func (c *conn) ended() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return closedChan
	}
	return c.cur.dead
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// session returns the live connection, or an error wrapping
// adapters.ErrNotConnected.
func (c *conn) session() (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, adapters.ErrClosed
	}
	if c.cur == nil || !c.cur.alive() {
		return nil, c.notConnected(nil)
	}
	return c.cur, nil
}

func (c *conn) notConnected(cause error) error {
	if cause != nil {
		return adapters.UnavailableError(fmt.Errorf("sftp %s: %w (%w)", c.o.who(), adapters.ErrNotConnected, cause))
	}
	return adapters.UnavailableError(fmt.Errorf("sftp %s: %w", c.o.who(), adapters.ErrNotConnected))
}

// wrap gives an operation's error its context: the account, the operation
// and its paths. A lost connection becomes an Unavailable error wrapping
// adapters.ErrNotConnected, and the connection is dropped.
func (c *conn) wrap(s *session, err error, op string, paths ...string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, adapters.ErrNotConnected) || errors.Is(err, adapters.ErrClosed) {
		return err
	}
	what := op
	for i, p := range paths {
		if i > 0 {
			what += " to"
		}
		what += fmt.Sprintf(" %q", p)
	}
	if c.lost(s, err) {
		if c.drop(s) {
			c.o.log.Warn("connection lost", "address", c.o.addr, "user", c.o.user, "during", what, "error", err)
		}
		return adapters.UnavailableError(fmt.Errorf("sftp %s: %s: %w (%w)", c.o.who(), what, adapters.ErrNotConnected, err))
	}
	return fmt.Errorf("sftp %s: %s: %w", c.o.who(), what, err)
}

// lost reports whether err means the connection is gone. Status replies
// of the server (no such file, permission denied, failure, end of file)
// do not; anything else is checked against the connection's end, which
// the SSH library signals shortly after a failed request.
func (c *conn) lost(s *session, err error) bool {
	if errors.Is(err, sftp.ErrSSHFxConnectionLost) {
		return true
	}
	var st *sftp.StatusError
	if errors.As(err, &st) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrExist) ||
		err == io.EOF || errors.Is(err, os.ErrClosed) {
		return !s.alive()
	}
	select {
	case <-s.dead:
		return true
	case <-time.After(100 * time.Millisecond):
		return false
	}
}

// drop closes s; it reports whether s was the current connection.
func (c *conn) drop(s *session) bool {
	c.mu.Lock()
	cur := c.cur == s
	if cur {
		c.cur = nil
	}
	c.mu.Unlock()
	if cur {
		go s.close() // whoever replaced it closed it otherwise
	}
	return cur
}

// health checks the connection with a keepalive round trip.
func (c *conn) health(ctx context.Context) error {
	c.mu.Lock()
	s, last := c.cur, c.lastErr
	c.mu.Unlock()
	if s == nil || !s.alive() {
		if last != nil {
			return last
		}
		return c.notConnected(nil)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.ssh.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return c.notConnected(err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close closes the connection; it is idempotent.
func (c *conn) close() {
	c.mu.Lock()
	s := c.cur
	c.cur, c.closed = nil, true
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
}
