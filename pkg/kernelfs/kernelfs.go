// Package kernelfs mounts the pseudo filesystems the agent needs (bpffs for
// pins, tracefs for tracepoint links) when the host has not mounted them, as
// is common on minimal and micro-VM hosts.
package kernelfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FS is a pseudo filesystem and where it is expected.
type FS struct {
	Path  string
	Type  string
	Magic int64
}

// BPF is the BPF filesystem, where pins live.
func BPF() FS { return FS{Path: "/sys/fs/bpf", Type: "bpf", Magic: unix.BPF_FS_MAGIC} }

// Tracing is tracefs, which perf tracepoint links read event ids from.
func Tracing() FS {
	return FS{Path: "/sys/kernel/tracing", Type: "tracefs", Magic: unix.TRACEFS_MAGIC}
}

// Security is securityfs, where the active LSM list is published.
func Security() FS {
	return FS{Path: "/sys/kernel/security", Type: "securityfs", Magic: unix.SECURITYFS_MAGIC}
}

// Mounted reports whether fs is mounted at its path.
func (fs FS) Mounted() (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(fs.Path, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("statfs %s: %w", fs.Path, err)
	}
	return int64(st.Type) == fs.Magic, nil
}

// Ensure mounts fs at its path unless it is mounted there already. It
// reports whether it mounted it.
func (fs FS) Ensure() (bool, error) {
	ok, err := fs.Mounted()
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	if err := os.MkdirAll(fs.Path, 0o755); err != nil {
		return false, fmt.Errorf("creating mount point %s: %w", fs.Path, err)
	}
	if err := unix.Mount(fs.Type, fs.Path, fs.Type, 0, ""); err != nil {
		return false, fmt.Errorf("mounting %s at %s: %w", fs.Type, fs.Path, err)
	}
	return true, nil
}
