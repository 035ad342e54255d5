package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// bpfDirLock is an agent's claim on its --bpf-dir, held for its lifetime.
// Two agents on one directory destroy each other's enforcement: each takes
// the other's live pins for a previous run's and removes them. The lock is
// a flock on a directory next to the pins, <bpf-dir>_lock, in bpffs
// itself: the host and a container that mounts the host's /sys/fs/bpf
// share it, where they do not share /run. bpffs has no regular files and
// refuses names with a dot, hence a directory and the underscore. The
// kernel drops the flock when its holder dies, so a crash leaves no stale
// lock, only an empty directory the next agent takes.
type bpfDirLock struct {
	path string
	f    *os.File
}

// lockBPFDir takes the lock of the pin directory pinRoot, or says which
// process holds it.
func lockBPFDir(pinRoot string) (*bpfDirLock, error) {
	path := pinRoot + "_lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	for {
		if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("creating the BPF directory's lock %s: %w", path, err)
		}
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // its holder removed it as it stopped
		}
		if err != nil {
			return nil, fmt.Errorf("opening the BPF directory's lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			owner := lockOwner(f)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("another tetragon (%s) is using --bpf-dir %s (it holds %s): two agents on one BPF directory remove each other's pins; stop the other one, or give this one another --bpf-dir",
					owner, pinRoot, path)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		// The holder removes the directory as it stops, after which a new
		// one may be made: a lock on the removed one is no lock.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &now) == nil &&
			held.Dev == now.Dev && held.Ino == now.Ino {
			return &bpfDirLock{path: path, f: f}, nil
		}
		f.Close()
	}
}

// release removes the lock directory and drops the lock; in that order, so
// that an agent that opened the directory meanwhile sees it was removed.
func (l *bpfDirLock) release() error {
	if l == nil {
		return nil
	}
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("releasing the BPF directory's lock: %w", err)
	}
	return nil
}

// lockOwner names the process holding a flock on f, from /proc/locks. The
// kernel shows the pid in this process's pid namespace, and 0 when the
// holder is not visible from it (the host's agent, seen from a container).
func lockOwner(f *os.File) string {
	const unknown = "pid unknown"
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return unknown
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return unknown
	}
	defer locks.Close()
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 1234 00:27:29714 0 EOF"; waiters
		// have a "->" after the number
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" || fs[5] != id {
			continue
		}
		pid, err := strconv.Atoi(fs[4])
		if err != nil || pid <= 0 {
			return "pid not visible from this pid namespace"
		}
		return "pid " + strconv.Itoa(pid)
	}
	return unknown
}
