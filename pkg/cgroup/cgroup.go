// Package cgroup extracts container identities from cgroup paths.
//
// The input is untrusted text (a /proc/PID/cgroup file, or a cgroup name read by a
// BPF program), so the parsers never panic and return "" rather than guess.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// idLen is the length of the ids Docker, containerd (CRI), CRI-O and Podman give
// containers: 32 random bytes in lower-case hex.
const idLen = 64

// ContainerID returns the container id named by a cgroup path
// ("/docker/<id>", "/system.slice/docker-<id>.scope", "/kubepods/.../cri-containerd-<id>.scope")
// or by a single leaf name ("<id>", "crio-<id>.scope"). When several segments are
// ids, as for a container that created sub-cgroups of its own or a container nested
// in another, the deepest one wins: it is the innermost container the process is in.
// Host paths yield "".
func ContainerID(cgroupPathOrLeaf string) string {
	p := strings.TrimSpace(cgroupPathOrLeaf)
	for p != "" {
		i := strings.LastIndexByte(p, '/')
		if id := leafID(p[i+1:]); id != "" {
			return id
		}
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}

// leafID returns the id in one path segment, or "".
func leafID(seg string) string {
	if isID(seg) {
		return seg
	}
	inner, ok := strings.CutSuffix(seg, ".scope")
	if !ok {
		return ""
	}
	// The systemd scope names runtimes use with the systemd cgroup driver.
	// "libpod-conmon-<id>.scope" and "crio-conmon-<id>.scope" hold the monitor
	// process, not the container, and are rejected because "conmon-<id>" is no id.
	for _, prefix := range [...]string{"docker-", "cri-containerd-", "crio-", "libpod-"} {
		if id, ok := strings.CutPrefix(inner, prefix); ok && isID(id) {
			return id
		}
	}
	return ""
}

func isID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// maxLine bounds one line of a /proc/PID/cgroup file; real lines are a few hundred
// bytes, and an unbounded line from a hostile file must not grow memory.
const maxLine = 64 << 10

// ParseProcCgroup reads a /proc/PID/cgroup file (cgroup v1, v2 or hybrid) and returns
// the one path that best identifies the process's cgroup: the first that names a
// container, looking at the unified (v2, "0::") hierarchy first, then systemd's
// named v1 hierarchy, then the other v1 hierarchies in file order; when none names
// a container, the path of the first of those that exists. Under a cgroup
// namespace the paths are relative to its root, and can be "/" or start with "/..".
func ParseProcCgroup(r io.Reader) (string, error) {
	var unified, systemd string
	var haveUnified, haveSystemd bool
	var others []string

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		// hierarchy-ID:controller-list:path; the path itself may contain ':'.
		hier, rest, ok1 := strings.Cut(line, ":")
		controllers, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || hier == "" || !isDecimal(hier) {
			return "", fmt.Errorf("parsing cgroup line %d %q: want hierarchy-ID:controllers:path", lineNo, truncate(line))
		}
		if path == "" {
			return "", fmt.Errorf("parsing cgroup line %d %q: empty path", lineNo, truncate(line))
		}
		switch {
		case hier == "0" && controllers == "":
			if !haveUnified {
				unified, haveUnified = path, true
			}
		case hasController(controllers, "name=systemd"):
			if !haveSystemd {
				systemd, haveSystemd = path, true
			}
		default:
			others = append(others, path)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading cgroup file: %w", err)
	}

	var candidates []string
	if haveUnified {
		candidates = append(candidates, unified)
	}
	if haveSystemd {
		candidates = append(candidates, systemd)
	}
	candidates = append(candidates, others...)
	if len(candidates) == 0 {
		return "", errors.New("parsing cgroup file: no cgroup entries")
	}
	for _, c := range candidates {
		if ContainerID(c) != "" {
			return c, nil
		}
	}
	return candidates[0], nil
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
