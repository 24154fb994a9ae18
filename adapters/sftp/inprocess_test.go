package sftp

// Fast tests against an in-process SSH server serving pkg/sftp's server:
// what the real sshd cannot show here (a password that works, a server
// without the OpenSSH extensions). They add to the tests against OpenSSH,
// they do not replace them.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/sluicehq/sluice/adapters/adaptertest"
)

const goodPassword = "s3cret-password"

// goServer is an SSH server on loopback whose sessions serve SFTP with
// pkg/sftp; it accepts goodPassword through password or
// keyboard-interactive authentication.
type goServer struct {
	addr        string
	fingerprint string
	wg          sync.WaitGroup
}

func startGoServer(t *testing.T, keyboardOnly bool) *goServer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{}
	if keyboardOnly {
		cfg.KeyboardInteractiveCallback = func(c ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ask("", "", []string{"Password: "}, []bool{false})
			if err == nil && len(ans) == 1 && ans[0] == goodPassword {
				return nil, nil
			}
			return nil, errors.New("denied")
		}
	} else {
		cfg.PasswordCallback = func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == goodPassword {
				return nil, nil
			}
			return nil, errors.New("denied")
		}
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &goServer{addr: l.Addr().String(), fingerprint: ssh.FingerprintSHA256(hostKey.PublicKey())}
	t.Cleanup(func() {
		l.Close()
		s.wg.Wait()
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(nc, cfg)
			}()
		}
	}()
	return s
}

func (s *goServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, in, err := nch.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range in {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				req.Reply(ok, nil)
				if ok {
					go func() {
						defer ch.Close()
						if srv, err := sftp.NewServer(ch); err == nil {
							_ = srv.Serve()
						}
					}()
				}
			}
		}()
	}
}

func goConf(srv *goServer, kv ...any) map[string]any {
	raw := map[string]any{"address": srv.addr, "user": "batch", "password": goodPassword, "host_key_fingerprint": srv.fingerprint}
	for i := 0; i+1 < len(kv); i += 2 {
		raw[kv[i].(string)] = kv[i+1]
	}
	return raw
}

func TestPasswordAuthentication(t *testing.T) {
	for _, kbd := range []bool{false, true} {
		name := map[bool]string{false: "password", true: "keyboard-interactive"}[kbd]
		t.Run(name, func(t *testing.T) {
			srv := startGoServer(t, kbd)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a.txt"), "one\ntwo\n")
			got := lines(readAll(t, openSrc(t, goConf(srv, "path", dir, "codec", "test-lines", "ready", "immediate"), adaptertest.MemoryState(), true)))
			if strings.Join(got, ",") != "one,two" {
				t.Fatalf("read %v", got)
			}
			raw := goConf(srv, "path", "/", "password", "wrong-"+goodPassword)
			err := newSrc(t, raw, adaptertest.MemoryState(), false).Connect(context.Background())
			if err == nil || !strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), goodPassword) {
				t.Fatalf("wrong password: %v", err)
			}
		})
	}
}

// TestServerWithoutOpenSSHExtensions writes through a server that has
// neither fsync@openssh.com nor posix-rename@openssh.com: the sink warns
// that writes are not fsynced, and overwrite and fail still work.
func TestServerWithoutOpenSSHExtensions(t *testing.T) {
	if err := sftp.SetSFTPExtensions("statvfs@openssh.com"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sftp.SetSFTPExtensions("hardlink@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com")
	})
	srv := startGoServer(t, false)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "out.txt"), "old\n")
	logs := &captured{}
	res := adaptertest.Resources(t, "remote", adaptertest.MemoryState())
	res.Logger = slog.New(logs)
	for _, mode := range []string{"fail", "overwrite"} {
		s, err := newSink(decodeConf(t, sinkSpec(), goConf(srv, "base_dir", dir, "path", "out.txt", "codec", "lines", "if_exists", mode)), res)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		write(t, s, lineMsgs(mode, 0, 2))
		err = s.Close(context.Background())
		switch mode {
		case "fail":
			if !errors.Is(err, os.ErrExist) {
				t.Fatalf("if_exists fail: Close = %v, want an error wrapping fs.ErrExist", err)
			}
			if got := readFile(t, filepath.Join(dir, "out.txt")); got != "old\n" {
				t.Fatalf("if_exists fail replaced the file: %q", got)
			}
		case "overwrite":
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(dir, "out.txt")); got != "overwrite0\noverwrite1\n" {
				t.Fatalf("if_exists overwrite: %q", got)
			}
		}
	}
	if n := logs.count(slog.LevelWarn, "fsync@openssh.com"); n != 2 {
		t.Fatalf("%d warnings that the server cannot fsync, want one per sink", n)
	}
}
