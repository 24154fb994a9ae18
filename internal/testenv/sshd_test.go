package testenv

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestSSHDServesSFTPAndSurvivesRestart logs in with the generated key,
// checks the host key against the generated known_hosts file, opens the
// SFTP subsystem, and checks that Stop drops live sessions and Restart
// serves again on the same port with the same host key.
func TestSSHDServesSFTPAndSurvivesRestart(t *testing.T) {
	s := SSHD(t)
	if fi, err := os.Stat(s.Root); err != nil || !fi.IsDir() {
		t.Fatalf("Root %q is not a directory: %v", s.Root, err)
	}
	cb, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(mustRead(t, s.KeyFile))
	if err != nil {
		t.Fatalf("KeyFile: %v", err)
	}
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial with the generated key and known_hosts: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("sftp subsystem: %v", err)
	}
	if got := ssh.FingerprintSHA256(s.HostKey); got != s.Fingerprint || !strings.HasPrefix(got, "SHA256:") {
		t.Fatalf("Fingerprint = %q, host key has %q", s.Fingerprint, got)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	dropped := make(chan error, 1)
	go func() { dropped <- c.Wait() }()
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("a live session survived Stop")
	}
	if conn, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("the port still accepts connections after Stop")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c2, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(s.Signer)}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial after restart: %v", err)
	}
	c2.Close()
}

func TestSSHDRefusesUnknownKeys(t *testing.T) {
	s := SSHD(t)
	_, priv, err := generateSigner()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(priv)}, HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 5 * time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("dial with a key not in authorized_keys: %v, want an authentication failure", err)
	}
	pub, signer, err := generateSigner()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddAuthorizedKey(pub); err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("dial with an added key: %v", err)
	}
	c.Close()
}

func generateSigner() (ssh.PublicKey, ssh.Signer, error) {
	var signer ssh.Signer
	dir, err := os.MkdirTemp("", "sluice-key-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	pub, err := writeKey(dir+"/k", &signer)
	return pub, signer, err
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSSHDOptions starts sshd with OpenSSH's sftp-server program and as
// another user, and opens the SFTP subsystem each way.
func TestSSHDOptions(t *testing.T) {
	for name, o := range map[string]SSHDOptions{"sftp-server": {SFTPServer: true}, "nobody": {User: "nobody"}} {
		t.Run(name, func(t *testing.T) {
			s := SSHD(t, o)
			if o.User != "" && s.User != o.User {
				t.Fatalf("User = %q, want %q", s.User, o.User)
			}
			c, err := s.Dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			sess, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if err := sess.RequestSubsystem("sftp"); err != nil {
				t.Fatalf("sftp subsystem: %v", err)
			}
		})
	}
}
