//go:build unix

package exec

import (
	osexec "os/exec"
	"syscall"
)

// setProcessGroup puts the program in a process group of its own, so that
// stopping it also stops the children it started (a shell's sleep, say).
func setProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killGroup(cmd *osexec.Cmd) { signalGroup(cmd, syscall.SIGKILL) }

func terminateGroup(cmd *osexec.Cmd) { signalGroup(cmd, syscall.SIGTERM) }

func signalGroup(cmd *osexec.Cmd, sig syscall.Signal) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}
