package hooks

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// changeExample reads one of Tetragon's change-filter examples as this
// agent can load it: {{.Pid}} filled with pid, and without its first hook,
// fd_install with FollowFD, an action Tetragon removed (this agent refuses
// it, TestTetragonExamples): the sys_write hook's fd argument is resolved
// from the process's descriptor table instead, so it needs no fd map.
func changeExample(t *testing.T, name string, pid int) string {
	t.Helper()
	data, err := os.ReadFile("../../test/testdata/tetragon/examples/tracingpolicy/" + name)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, `  - call: "fd_install"`)
	end := strings.Index(text, `  - call: "sys_write"`)
	if start < 0 || end < start || strings.Count(text[start:], "{{.Pid}}") != 2 {
		t.Fatalf("%s is not the example this test knows", name)
	}
	text = text[:start] + text[end:]
	return strings.ReplaceAll(text, "{{.Pid}}", fmt.Sprint(pid))
}

// TestChangeExamples loads Tetragon's match_capability_changes.yaml and
// match_namespace_changes.yaml (changeExample) for the test's workloads
// and checks their events: the write to strange.txt after the change, not
// the one before, nor the one after it was reported.
func TestChangeExamples(t *testing.T) {
	testutil.RequireRoot(t)
	// the examples' sys_write hook reads a char_buf, which the syscall
	// dispatcher (the mechanism of kernels without kprobes) does not
	testutil.RequireFeature(t, "kprobe")
	t.Run("capabilities", func(t *testing.T) {
		base := loadExecRecords(t)
		e := newFilterEnvOpts(t, "", sensor.Options{Features: testutil.Kernel(t).Map(), ExecCreds: base.ExecCreds()})
		// the demo's python program: CAP_SETUID leaves the effective set
		// between two writes to strange.txt
		p := e.startSteps(t, "python", "wait", "write:strange.txt", "write:other.txt", "drop:7", "write:other.txt", "write:strange.txt", "write:strange.txt")
		if _, err := e.h.tryLoad(t, changeExample(t, "match_capability_changes.yaml", p.cmd.Process.Pid), ""); err != nil {
			t.Fatal(err)
		}
		p.finish(t)
		// the fd, an int without FollowFD, is whichever Go's runtime left;
		// the char_buf, read at return (returnCopy), is cut to the 8 bytes
		// write(2) returned
		checkOne(t, e.events(t), `^python sys_write POST int:\d+ bytes:"testdata" size:8$`)
	})
	t.Run("namespaces", func(t *testing.T) {
		base := loadExecRecords(t)
		e := newFilterEnvOpts(t, "", sensor.Options{Features: testutil.Kernel(t).Map(), ExecCreds: base.ExecCreds()})
		host, err := os.Readlink("/proc/self/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		var ino uint64
		if _, err := fmt.Sscanf(host, "mnt:[%d]", &ino); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		// the demo's second scenario: a shell whose first exec is in a
		// new mount namespace writes strange.txt there (no change), then
		// enters the host's (the test's) mount namespace and writes it
		// twice (a change, reported once). The applets busybox has too.
		cmd := exec.Command("unshare", "-m", "-f", "sh", "-c", fmt.Sprintf(
			`read go; echo testdata > strange.txt; nsenter -t %d -m sh -c 'echo testdata > %s/strange.txt; echo testdata > %s/strange.txt'`,
			os.Getpid(), e.h.dir, e.h.dir))
		cmd.Dir = e.h.dir
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		e.h.mu.Lock()
		e.h.pids[uint32(cmd.Process.Pid)] = "unshare"
		e.h.mu.Unlock()
		policy := changeExample(t, "match_namespace_changes.yaml", cmd.Process.Pid)
		// the example's Mnt values are its author's inode numbers
		if !strings.Contains(policy, `- "4026532288"`) || !strings.Contains(policy, `- "4026531840"`) {
			t.Fatal("match_namespace_changes.yaml does not list the inode numbers this test replaces")
		}
		policy = strings.Replace(policy, `- "4026532288"`, fmt.Sprintf(`- "%d"`, ino), 1)
		if _, err := e.h.tryLoad(t, policy, ""); err != nil {
			t.Fatal(err)
		}
		io.WriteString(in, "go\n")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%v: %v: %s", cmd.Args, err, out.String())
		}
		// the shell's echo writes its redirected stdout
		checkOne(t, e.events(t), `^child sys_write POST int:1 bytes:"testdata\\n" size:9$`)
	})
}

// checkOne checks that there is one event, and that it matches pattern.
func checkOne(t *testing.T, got []string, pattern string) {
	t.Helper()
	// (?s): the string may hold newlines
	if len(got) != 1 || !regexp.MustCompile("(?s)"+pattern).MatchString(got[0]) {
		t.Fatalf("events:\n  %s\nwant one matching %s", strings.Join(got, "\n  "), pattern)
	}
}
