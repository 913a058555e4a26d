package proctest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the process when the test binary
// dies, so a test binary killed by its -timeout or a signal, whose cleanups
// never run, leaves no worker or simulator behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
