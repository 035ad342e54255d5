package tracingpolicy

// removedAction returns why Tetragon itself no longer takes action s
// (already canonical in case), or "" when it still does. FollowFD kept a
// per-process table from file descriptors to the files they were opened
// on, filled and emptied by the policy's own hooks (fd_install, close,
// dup); any hook the policy missed (close_range, exec's close-on-exec, an
// fd passed over a socket) left the table wrong, which is why Tetragon
// deprecated the three actions as unsafe before v1.5 and dropped them in
// cilium/tetragon#5090 (merged 2026-06-26, after v1.7). This agent refuses
// them as Tetragon now does instead of building an unsafe table: a hook
// that needs the file behind a descriptor reads it from the task's own fd
// table (type "fd" on the kprobe mechanism, see compatibility.md).
func removedAction(s string) string {
	switch s {
	case "FollowFD", "UnfollowFD", "CopyFD":
		return "action " + s + " was removed from Tetragon (deprecated as unsafe before v1.5, dropped by cilium/tetragon#5090 after v1.7): the fd table it kept went wrong whenever the policy missed a hook that closes, passes or duplicates a descriptor"
	}
	return ""
}
