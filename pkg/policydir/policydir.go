// Package policydir finds TracingPolicy files on disk: the policy
// directories (not recursive) and files named one by one.
package policydir

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tetragon-lite/tetragon/pkg/regfile"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// File is one policy file and what parsing it gave.
type File struct {
	Path string
	// Hash is the SHA-256 of the content read; unchanged content is not
	// loaded again.
	Hash     [sha256.Size]byte
	Policies []*tp.TracingPolicy
	// Err is the file's parse or read error; nil for a good file.
	Err error
}

// Scan is the outcome of reading the policy directories.
type Scan struct {
	Files []File
	// Skipped lists files that hold no TracingPolicy (the agent's own
	// tetragon.yaml, say), with why.
	Skipped []error
	// Warnings are problems that do not stop loading, such as a policy
	// directory others than root may write to.
	Warnings []error
	// Unreadable lists the directories (cleaned paths) whose listing failed
	// for another reason than not existing (too many open files, say).
	// What they held is unknown, not gone: their files must keep their
	// policies.
	Unreadable []string
	// Retry says that something could not be read for a reason that may
	// pass (a directory listing, or a file's open or read, failed): scan
	// again later rather than wait for the next change.
	Retry bool
}

// IsPolicyFile reports whether a directory entry's name is one the agent
// reads: YAML by extension, and not hidden (editors' swap files, the
// ..data entries of a Kubernetes ConfigMap volume).
func IsPolicyFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// Read parses the policy files of dirs, in name order, then files. A
// directory that does not exist is not an error: it may be created later.
// A "directory" that is a file is read as one: `docker run -v
// policy.yaml:/etc/tetragon/` mounts a single file there.
func Read(dirs, files []string) Scan {
	var s Scan
	var paths []string
	for _, dir := range dirs {
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			paths = append(paths, dir)
			continue
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue
		}
		if err != nil {
			// never "empty": an EMFILE here once unloaded every policy
			s.Warnings = append(s.Warnings, fmt.Errorf("reading policy directory %s (its policies stay as they are; retrying): %w", dir, err))
			s.Unreadable = append(s.Unreadable, filepath.Clean(dir))
			s.Retry = true
			continue
		}
		if err := checkOwnership(dir); err != nil {
			s.Warnings = append(s.Warnings, err)
		}
		var names []string
		for _, e := range ents {
			// a symlink may point at a regular file (ConfigMap volumes)
			if !e.IsDir() && IsPolicyFile(e.Name()) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			paths = append(paths, filepath.Join(dir, n))
		}
	}
	paths = append(paths, files...)
	for _, p := range paths {
		f, skip := readFile(p)
		if skip != nil {
			s.Skipped = append(s.Skipped, skip)
			continue
		}
		if errors.Is(f.Err, errRead) {
			s.Retry = true
		}
		s.Files = append(s.Files, f)
	}
	return s
}

// errRead marks a file's open or read failure that may pass (not a missing
// file, not a FIFO or a device where a file should be).
var errRead = errors.New("reading policy file")

// readFile reads and parses one file. A file without any policy is
// skipped (skip says why); a directory is skipped silently.
func readFile(path string) (f File, skip error) {
	f.Path = path
	// non-blocking, regular files only: a FIFO here once hung the
	// watcher, and with it every later load and the agent's shutdown
	fd, err := regfile.Open(path)
	if err != nil {
		if errors.Is(err, regfile.ErrNotRegular) {
			if st, serr := os.Stat(path); serr == nil && st.IsDir() {
				return f, fmt.Errorf("%s: a directory", path)
			}
			f.Err = err
			return f, nil
		}
		if errors.Is(err, fs.ErrNotExist) {
			f.Err = fmt.Errorf("reading policy file: %w", err)
		} else {
			f.Err = fmt.Errorf("%w: %w", errRead, err)
		}
		return f, nil
	}
	defer fd.Close()
	// one byte past the limit tells "at" from "over" without reading a
	// huge file whole; the parser reports "over" with the file's name
	data, err := io.ReadAll(io.LimitReader(fd, tp.MaxFileSize+1))
	if err != nil {
		f.Err = fmt.Errorf("%w %s: %w", errRead, path, err)
		return f, nil
	}
	f.Hash = sha256.Sum256(data)
	f.Policies, f.Err = tp.Parse(filepath.Base(path), data)
	if errors.Is(f.Err, tp.ErrNotPolicy) {
		return f, fmt.Errorf("%s: %w", path, f.Err)
	}
	return f, nil
}

// checkOwnership warns about a policy directory that others than root can
// write to: a policy there can kill any process on the host.
func checkOwnership(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("policy directory %s is writable by group or others (mode %v): anyone who can write there can kill any process; chmod go-w %s", dir, st.Mode().Perm(), dir)
	}
	return nil
}
