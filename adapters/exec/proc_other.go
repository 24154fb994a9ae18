//go:build !unix

package exec

import (
	"os"
	osexec "os/exec"
)

func setProcessGroup(cmd *osexec.Cmd) {}

func killGroup(cmd *osexec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

func terminateGroup(cmd *osexec.Cmd) {
	if cmd.Process != nil {
		_ = cmd.Process.Signal(os.Interrupt)
	}
}
