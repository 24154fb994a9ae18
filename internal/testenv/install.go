package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

var installMu sync.Mutex

// findOrInstall runs find and, when it fails and we are root on a system
// with apt-get, installs pkg and runs find again.
func findOrInstall(pkg string, find func() (string, error)) (string, error) {
	p, err := find()
	if err == nil || os.Geteuid() != 0 {
		return p, err
	}
	if _, lerr := exec.LookPath("apt-get"); lerr != nil {
		return "", err
	}
	installMu.Lock()
	defer installMu.Unlock()
	if p, err := find(); err == nil {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get install %s: %w: %s", pkg, err, lastLines(string(out), 5))
		}
		return nil
	}
	if ierr := install(); ierr != nil {
		if uerr := exec.CommandContext(ctx, "apt-get", "update").Run(); uerr != nil {
			return "", ierr
		}
		if ierr := install(); ierr != nil {
			return "", ierr
		}
	}
	return find()
}

// spawn starts cmd in a process group of its own (so a kill reaches its
// children) with stdout and stderr appended to logPath, and returns a
// channel closed once it has exited.
func spawn(cmd *exec.Cmd, logPath string) (chan struct{}, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testenv: start %s: %w", filepath.Base(cmd.Path), err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	return done, nil
}
