package testutil

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// KillOnOpenPolicy is the persistent-enforcement guide's policy, named
// name, killing whatever opens one of paths (fd_install, file Equal).
func KillOnOpenPolicy(name string, paths ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %q
spec:
  kprobes:
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values:
`, name)
	for _, p := range paths {
		fmt.Fprintf(&b, "        - %q\n", p)
	}
	b.WriteString("      matchActions:\n      - action: Sigkill\n")
	return []byte(b.String())
}

// ShapedPolicy is a policy of the shipped policies' shape, named name: a
// Prefix watch on security_file_permission of the files under watched, and
// a Sigkill on fd_install of the file forbidden. mechanism, when not empty,
// is its hook-mechanism option. The issue 15 benchmark and tests load many
// of them, each on paths of its own.
func ShapedPolicy(name, mechanism, watched, forbidden string) []byte {
	options := ""
	if mechanism != "" {
		options = fmt.Sprintf("  options:\n  - name: hook-mechanism\n    value: %q\n", mechanism)
	}
	return fmt.Appendf(nil, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %q
spec:
%s  kprobes:
  - call: security_file_permission
    syscall: false
    args:
    - {index: 0, type: file}
    - {index: 1, type: int}
    selectors:
    - matchArgs:
      - {index: 0, operator: Prefix, values: [%q]}
  - call: fd_install
    syscall: false
    args:
    - {index: 0, type: int}
    - {index: 1, type: file}
    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: [%q]}
      matchActions:
      - action: Sigkill
`, name, options, watched, forbidden)
}

// KilledBySIGKILL reports whether err, from running a command, says the
// process died of SIGKILL: what an enforcing policy does to it.
func KilledBySIGKILL(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
}

// CatKilled runs cat on path and reports whether it was killed by SIGKILL.
func CatKilled(path string) bool {
	return KilledBySIGKILL(exec.Command("cat", path).Run())
}

// TrackSockPolicy tracks the IPv4 sockets process %[3]d creates (sk_alloc's
// return value) when %[5]s is TrackSock, untracks them when they are freed,
// and reports udp_sendmsg on the sockets bound to port %[4]d (%[1]s and
// %[2]s are the harnesses' mechanism and directory, unused).
const TrackSockPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "socktrack"
spec:
  kprobes:
  - call: "sk_alloc"
    syscall: false
    return: true
    args:
    - index: 1
      type: "int"
    returnArg:
      index: 0
      type: "sock"
    returnArgAction: "%[5]s"
    selectors:
    - matchPIDs:
      - operator: In
        values: [%[3]d]
      matchArgs:
      - index: 1
        operator: Equal
        values: ["2"]
      matchActions:
      - action: NoPost
  - call: "__sk_free"
    syscall: false
    args:
    - index: 0
      type: "sock"
    selectors:
    - matchActions:
      - action: UntrackSock
        argSock: 0
      - action: NoPost
  - call: "udp_sendmsg"
    syscall: false
    args:
    - index: 0
      type: "sock"
    selectors:
    - matchArgs:
      - index: 0
        operator: SPort
        values: ["%[4]d"]
`

// OpenatTracepointPolicy is a policy named name on the
// syscalls/sys_enter_openat tracepoint matching the opens of path (its
// filename, Equal), with action when it is not empty (Sigkill, say), else
// the default Post. It ends with its spec, to which a test may add.
func OpenatTracepointPolicy(name, path, action string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: %q
spec:
  tracepoints:
  - subsystem: "syscalls"
    event: "sys_enter_openat"
    args:
    - index: 6
      type: "string"
    selectors:
    - matchArgs:
      - index: 6
        operator: "Equal"
        values:
        - %q
`, name, path)
	if action != "" {
		fmt.Fprintf(&b, "      matchActions:\n      - action: %s\n", action)
	}
	return []byte(b.String())
}
