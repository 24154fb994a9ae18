package testenv

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSEnv names an environment variable holding the URL of a NATS server
// with JetStream to use instead of 127.0.0.1:4222, or "private" to always
// start a private server.
const NATSEnv = "SLUICE_TEST_NATS_URL"

// NATSServerEnv names an environment variable holding the nats-server
// binary to run for private servers (default: /usr/sbin/nats-server, the
// Debian package's, then nats-server on PATH).
const NATSServerEnv = "SLUICE_TEST_NATS_SERVER"

const systemNATS = "127.0.0.1:4222"

var natsShared struct {
	once sync.Once
	url  string
	srv  *NATSServer
	err  error
}

// NATS returns the URL of a NATS server with JetStream for the test: the one
// named by SLUICE_TEST_NATS_URL; the one on 127.0.0.1:4222 when it answers
// with JetStream; else a private nats-server -js on a free loopback port,
// shared by the tests of the process and stopped by NATSMain. Tests share the
// server, so each uses names of its own (NATSPrefix). When no server can be
// had the test is skipped, except with CI=true, where it fails.
func NATS(t testing.TB) string {
	t.Helper()
	natsShared.once.Do(func() {
		natsShared.url, natsShared.srv, natsShared.err = findNATS()
	})
	if natsShared.err != nil {
		natsUnavailable(t, natsShared.err)
	}
	return natsShared.url
}

// NATSMain runs the tests of a package that uses NATS and stops the private
// server NATS may have started. Call it from TestMain.
func NATSMain(m *testing.M) {
	code := m.Run()
	if natsShared.srv != nil {
		_ = natsShared.srv.Close()
	}
	os.Exit(code)
}

func natsUnavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("NATS is required in CI: %v", err)
	}
	t.Skipf("no NATS server: %v", err)
}

// NATSPrefix returns a name prefix unique to this test run (letters and
// digits), for streams, buckets and subjects.
func NATSPrefix(t testing.TB) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return "T" + strings.ToUpper(hex.EncodeToString(b[:]))
}

func findNATS() (string, *NATSServer, error) {
	env := os.Getenv(NATSEnv)
	if env != "" && env != "private" {
		return env, nil, nil
	}
	if env == "" {
		if err := probeJetStream(systemNATS); err == nil {
			return "nats://" + systemNATS, nil, nil
		}
	}
	srv, err := StartNATS(NATSOptions{})
	if err != nil {
		return "", nil, err
	}
	return srv.URL(), srv, nil
}

// probeJetStream reads the server's INFO line and checks that JetStream is
// on.
func probeJetStream(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("%s is not a NATS server", addr)
	}
	if !strings.Contains(line, `"jetstream":true`) {
		return fmt.Errorf("NATS at %s has no JetStream", addr)
	}
	return nil
}

// NATSOptions tune a private nats-server.
type NATSOptions struct {
	// Name is the server's name (default: generated).
	Name string
	// Cluster, when set, is the cluster's name; ClusterPort the port the
	// server listens on for routes, and Routes the other servers' route
	// ports.
	Cluster     string
	ClusterPort int
	Routes      []int
}

// NATSServer is a private nats-server with JetStream file storage in a
// temporary directory, on free loopback ports.
type NATSServer struct {
	Port        int
	MonitorPort int
	Dir         string
	bin         string
	conf        string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// URL returns nats://127.0.0.1:PORT.
func (s *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// StartNATS starts a private server and waits until JetStream is ready
// (for a cluster member: until it has been started; see NATSCluster).
func StartNATS(o NATSOptions) (*NATSServer, error) {
	s, err := newNATSServer(o)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		_ = os.RemoveAll(s.Dir)
		return nil, err
	}
	if o.Cluster == "" {
		if err := s.waitReady(20 * time.Second); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

func newNATSServer(o NATSOptions) (*NATSServer, error) {
	bin, err := natsServerBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-nats-")
	if err != nil {
		return nil, err
	}
	s := &NATSServer{Dir: dir, bin: bin}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	if s.MonitorPort, err = freePort(); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "sluice-test-" + strconv.Itoa(s.Port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n", o.Name, s.Port, s.MonitorPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n  max_file_store: 64GB\n  max_memory_store: 1GB\n}\n", filepath.Join(dir, "js"))
	if o.Cluster != "" {
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", o.Cluster, o.ClusterPort)
		for _, r := range o.Routes {
			fmt.Fprintf(&b, "    \"nats-route://127.0.0.1:%d\"\n", r)
		}
		b.WriteString("  ]\n}\n")
	}
	s.conf = filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(s.conf, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the server process (again, after Stop or Kill), keeping its
// store.
func (s *NATSServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("nats-server already running")
	}
	cmd := exec.Command(s.bin, "-c", s.conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done, err := spawn(cmd, filepath.Join(s.Dir, "server.log"))
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady waits until the server reports JetStream healthy.
func (s *NATSServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.MonitorPort)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("nats-server exited: %s", s.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("nats-server on port %d not ready after %s: %s", s.Port, timeout, s.Log())
}

// Log returns the end of the server's log.
func (s *NATSServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return lastLines(string(b), 10)
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s) and waits.
func (s *NATSServer) Stop() error { return s.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the server with SIGKILL and waits.
func (s *NATSServer) Kill() error { return s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *NATSServer) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("nats-server did not stop within %s; killed", wait)
	}
}

// Close kills the server and removes its directory.
func (s *NATSServer) Close() error {
	err := s.Kill()
	_ = os.RemoveAll(s.Dir)
	return err
}

// NATSCluster is a cluster of private nats-servers with JetStream, routed to
// each other on loopback.
type NATSCluster struct {
	Servers []*NATSServer
}

// URL returns the client URLs of every server, comma-separated.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.URL()
	}
	return strings.Join(urls, ",")
}

// StartNATSCluster starts an n-node JetStream cluster for the test, waits
// until every node is ready, and removes it when the test ends. A missing
// nats-server skips the test, or fails it with CI=true.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c, err := startCluster(n)
	if err != nil {
		natsUnavailable(t, err)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			_ = s.Close()
		}
	})
	return c
}

// NewNATSCluster starts an n-node cluster outside of a test (benchmarks);
// one node is a plain server. Close removes it.
func NewNATSCluster(n int) (*NATSCluster, error) {
	if n == 1 {
		s, err := StartNATS(NATSOptions{})
		if err != nil {
			return nil, err
		}
		return &NATSCluster{Servers: []*NATSServer{s}}, nil
	}
	return startCluster(n)
}

// Close kills every node and removes their directories.
func (c *NATSCluster) Close() {
	for _, s := range c.Servers {
		_ = s.Close()
	}
}

func startCluster(n int) (*NATSCluster, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	name := "sluice-" + strconv.Itoa(ports[0])
	c := &NATSCluster{}
	fail := func(err error) (*NATSCluster, error) {
		for _, s := range c.Servers {
			_ = s.Close()
		}
		return nil, err
	}
	for i := 0; i < n; i++ {
		var routes []int
		for j, p := range ports {
			if j != i {
				routes = append(routes, p)
			}
		}
		s, err := StartNATS(NATSOptions{Name: fmt.Sprintf("%s-n%d", name, i+1), Cluster: name, ClusterPort: ports[i], Routes: routes})
		if err != nil {
			return fail(err)
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		if err := s.waitReady(60 * time.Second); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// natsServerBin finds nats-server, installing the Debian package when it
// is missing and we are root.
func natsServerBin() (string, error) {
	if p := os.Getenv(NATSServerEnv); p != "" {
		return p, nil
	}
	find := func() (string, error) {
		if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
			return "/usr/sbin/nats-server", nil
		}
		if p, err := exec.LookPath("nats-server"); err == nil {
			return p, nil
		}
		return "", errors.New("nats-server not found (install the nats-server package)")
	}
	return findOrInstall("nats-server", find)
}
