package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
)

// callKind is one system call pattern of the open/read/close loop, run
// directly so that each costs what it costs alone.
type callKind struct {
	name string
	do   func() error
}

// callCosts measures what the programs a mode attaches cost per call of
// each kind: bpf_stats run time over n calls, the floor's (empty programs)
// beside the agent's. The agent's extra time per operation of the loop is
// the sum of these over the operation's calls; this says which call pays
// what.
func callCosts(rounds, n int, policy string) ([]result, error) {
	report, err := kernelfeatures.Run(context.Background())
	if err != nil {
		return nil, fmt.Errorf("probing the kernel: %w", err)
	}
	shipped, err := policyFiles(strings.Split(policy, ",")...)
	if err != nil {
		return nil, err
	}
	path, cleanup, err := plainFile()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64)
	pread := func() error { _, err := unix.Pread(fd, buf, 0); return err }
	// a deletion empties the verdict cache (engine.md, "The verdict
	// cache"); one of a missing file costs the programs what one of a
	// file does, as the generation is bumped at the call's entry
	missing := filepath.Join(filepath.Dir(path), "missing")
	unlink := func() error {
		if err := unix.Unlink(missing); !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unlink %s: %v, want ENOENT", missing, err)
		}
		return nil
	}
	kinds := []callKind{
		// what no hook maps: the filter's verdict alone
		{"fcntl(F_GETFL), unmapped", func() error { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); return err }},
		// security_file_permission's syscalls: a cached verdict
		{"pread64 of an open file", pread},
		// fd_install's: openat's exit, on the returned fd
		{"openat + close", func() error {
			f, err := unix.Open(path, unix.O_RDONLY, 0)
			if err != nil {
				return err
			}
			return unix.Close(f)
		}},
		// the syscall part's whole operation, as its loop makes it: Go's
		// os.Open adds fcntl and epoll_ctl calls to the kinds above
		{"the loop's open/read/close", func() error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Read(buf)
			return err
		}},
		{"unlink of a missing file", unlink},
		// the read after it resolves the file again: this minus the row
		// above is what a read costs with the cache emptied
		{"unlink + pread64", func() error {
			if err := unlink(); err != nil {
				return err
			}
			return pread()
		}},
	}
	agent := loadPolicies(shipped, report.Map())
	points, err := attachPoints(agent)
	if err != nil {
		return nil, fmt.Errorf("counting the agent's attach points: %w", err)
	}
	modes := []struct {
		name  string
		setup func() (func(), error)
	}{
		{"floor", emptyPrograms(points)},
		{"agent", agent},
		// the floor's programs each tail-calling an empty one: the
		// dispatcher's entry program calls its filter so
		{"floor + tail call", tailCallPrograms(points)},
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("bpf_stats: %w", err)
	}
	defer stats.Close()
	// the calls on one thread: its task's file table and caches are the
	// same from call to call, as in the loop
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// ns[mode][kind], per round: the programs' run time per call, and
	// the wall time of a call, which differs from the floor's by less
	// than the run time does where the programs take cache misses the
	// system call would have taken after them (the file behind an fd)
	ns, wall := make([][][]float64, len(modes)), make([][][]float64, len(modes))
	for i := range ns {
		ns[i], wall[i] = make([][]float64, len(kinds)), make([][]float64, len(kinds))
	}
	fmt.Printf("per-call program time: %d rounds of %d calls per kind and mode (bpf_stats)\n", rounds, n)
	for r := 0; r < rounds; r++ {
		for mi, m := range modes {
			err := withMode(m.name, m.setup, func(progs []*ebpf.Program) error {
				for ki, k := range kinds {
					rt0, _ := runStats(progs)
					start := time.Now()
					for range n {
						if err := k.do(); err != nil {
							return fmt.Errorf("%s: %w", k.name, err)
						}
					}
					took := time.Since(start)
					rt1, _ := runStats(progs)
					ns[mi][ki] = append(ns[mi][ki], float64((rt1-rt0).Nanoseconds())/float64(n))
					wall[mi][ki] = append(wall[mi][ki], float64(took.Nanoseconds())/float64(n))
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	// agent extra stays the last column, and the program time's table
	// first: scripts/calls-ab.sh reads it
	var res []result
	for _, t := range []struct {
		title, what string
		ns          [][][]float64
	}{
		{"call (median ns per call)", "program time", ns},
		{"call (median wall ns/call)", "wall time", wall},
	} {
		fmt.Printf("\n%-28s %12s %12s %12s %12s\n", t.title, "floor", "+ tail call", "agent", "agent extra")
		for ki, k := range kinds {
			floor, agent, tail := median(t.ns[0][ki]), median(t.ns[1][ki]), median(t.ns[2][ki])
			fmt.Printf("%-28s %12.1f %12.1f %12.1f %12.1f\n", k.name, floor, tail, agent, agent-floor)
			res = append(res, result{"a", t.what + " per call, agent extra over the floor: " + k.name, fmt.Sprintf("%.0f ns", agent-floor), "", "—"})
		}
	}
	// the unmapped call runs the entry program and the filter and
	// nothing else: how much of its extra the tail call between them is
	res = append(res, result{"a", "program time per call, one tail call over the floor: " + kinds[0].name,
		fmt.Sprintf("%.0f ns", median(ns[2][0])-median(ns[0][0])), "", "—"})
	return res, nil
}

// plainFile writes a file no policy watches, in a directory of its own
// that cleanup removes.
func plainFile() (path string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "tetragon-bench-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary directory: %w", err)
	}
	path = filepath.Join(dir, "plain.txt")
	if err := os.WriteFile(path, []byte("not sensitive\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}
