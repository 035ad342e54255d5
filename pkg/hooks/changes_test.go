package hooks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// changeHelperEnv makes the test binary run the steps it names, comma
// separated, on one thread (capset and unshare change the calling thread's
// credentials and namespaces, which the hooks read): open:<file> opens and
// closes a file, write:<file> writes "testdata" to it, wait reads a line, drop:<n> drops capability n from the effective set,
// unshare:uts and unshare:ipc move to a new namespace, reexec executes
// the helper again with the steps that follow.
const changeHelperEnv = "TETRAGON_HOOKS_CHANGE_HELPER"

func changeHelper() (int, bool) {
	steps := os.Getenv(changeHelperEnv)
	if steps == "" {
		return 0, false
	}
	runtime.LockOSThread()
	list := strings.Split(steps, ",")
	for i, step := range list {
		op, arg, _ := strings.Cut(step, ":")
		var err error
		switch op {
		case "reexec":
			// the rest runs in a new image of the helper
			var self string
			if self, err = os.Executable(); err == nil {
				// the first of duplicate variables is the one read
				env := slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, changeHelperEnv+"=") })
				env = append(env, changeHelperEnv+"="+strings.Join(list[i+1:], ","))
				err = unix.Exec(self, []string{self}, env)
			}
		case "open":
			var f *os.File
			if f, err = os.Open(arg); err == nil {
				f.Close()
			}
		case "drop":
			n, _ := strconv.Atoi(arg)
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err = unix.Capget(&hdr, &data[0]); err == nil {
				data[n/32].Effective &^= 1 << (n % 32)
				err = unix.Capset(&hdr, &data[0])
			}
		case "write":
			err = os.WriteFile(arg, []byte("testdata"), 0o644)
		case "wait":
			// a line on stdin
			_, err = bufio.NewReader(os.Stdin).ReadString('\n')
		case "unshare":
			flag := map[string]int{"uts": unix.CLONE_NEWUTS, "ipc": unix.CLONE_NEWIPC}[arg]
			err = unix.Unshare(flag)
		default:
			err = fmt.Errorf("unknown step %q", step)
		}
		if err != nil {
			fmt.Println(step+":", err)
			return 1, true
		}
	}
	return 0, true
}

// loadExecRecords loads the base sensor, whose exec records the change
// filters compare with, for the test's lifetime.
func loadExecRecords(t *testing.T) *sensor.Base {
	t.Helper()
	b, err := sensor.LoadBase(sensor.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// runSteps runs the change helper with steps in the test directory,
// naming its events name.
func (e *filterEnv) runSteps(t *testing.T, name string, steps ...string) {
	t.Helper()
	e.startSteps(t, name, steps...).finish(t)
}

// stepsProcess is a running change helper.
type stepsProcess struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out strings.Builder
}

// startSteps starts the change helper with steps in the test directory,
// naming its events name.
func (e *filterEnv) startSteps(t *testing.T, name string, steps ...string) *stepsProcess {
	t.Helper()
	return e.startUnder(t, name, nil, steps...)
}

// startUnder is startSteps with the helper run by the command prefix
// (which execs its last argument, the helper).
func (e *filterEnv) startUnder(t *testing.T, name string, prefix []string, steps ...string) *stepsProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(prefix), self)
	p := &stepsProcess{cmd: exec.Command(argv[0], argv[1:]...)}
	p.cmd.Dir = e.h.dir
	p.cmd.Env = append(os.Environ(), changeHelperEnv+"="+strings.Join(steps, ","))
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.h.mu.Lock()
	e.h.pids[uint32(p.cmd.Process.Pid)] = name
	e.h.mu.Unlock()
	return p
}

// finish lets a waiting helper go on and waits for it.
func (p *stepsProcess) finish(t *testing.T) {
	t.Helper()
	io.WriteString(p.in, "go\n")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("%v: %v: %s", p.cmd.Env[len(p.cmd.Env)-1], err, p.out.String())
	}
}

// TestChangeFiltersBeforeStart checks the processes that were running
// before the exec sensor: without a record the change filters never match
// them; the agent's /proc scan (SeedExecCreds) gives them one, their
// capabilities and namespaces at the scan.
func TestChangeFiltersBeforeStart(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		base := loadExecRecords(t)
		e := newFilterEnvOpts(t, mech, sensor.Options{Features: testutil.Kernel(t).Map(), ExecCreds: base.ExecCreds()})
		e.h.load(t, filterPolicy("changes-before",
			`      matchCapabilityChanges:
      - type: Effective
        operator: In
        values: ["CAP_SYS_ADMIN"]
`))
		// as if started before the sensor: the records deleted
		unrecorded := e.startSteps(t, "unrecorded", "wait", "drop:21", "open:data0")
		seeded := e.startSteps(t, "seeded", "wait", "drop:21", "open:data0")
		for _, p := range []*stepsProcess{unrecorded, seeded} {
			pid := uint32(p.cmd.Process.Pid)
			// exec returns to the parent before the exec tracepoint runs
			var v bpf.ProcessExecCreds
			for i := 0; base.ExecCreds().Lookup(pid, &v) != nil; i++ {
				if i == 100 {
					t.Fatalf("no exec record of pid %d after 5s", pid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := base.ExecCreds().Delete(pid); err != nil {
				t.Fatal(err)
			}
		}
		unrecorded.finish(t)
		if n, err := sensor.SeedExecCreds(base.ExecCreds(), "/proc"); err != nil || n < 1 {
			t.Fatalf("seeded %d records: %v", n, err)
		}
		seeded.finish(t)
		e.check(t, "seeded data0")
	})
}

// TestChangeFilters checks matchCapabilityChanges and matchNamespaceChanges
// on processes that change their capabilities or namespaces after exec,
// through each mechanism: a change of a listed capability or namespace
// matches In once (the match makes the new value the reference), a change
// of an unlisted one matches NotIn, and a process that changed nothing
// matches neither.
func TestChangeFilters(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		base := loadExecRecords(t)
		e := newFilterEnvOpts(t, mech, sensor.Options{Features: testutil.Kernel(t).Map(), ExecCreds: base.ExecCreds()})
		e.h.load(t, filterPolicy("changes",
			`      matchCapabilityChanges:
      - type: Effective
        operator: In
        values: ["CAP_SYS_ADMIN"]
`, `      matchNamespaceChanges:
      - operator: In
        values: ["Uts"]
`, `      matchCapabilityChanges:
      - type: Effective
        operator: NotIn
        values: ["CAP_SYS_ADMIN"]
`, `      matchNamespaceChanges:
      - operator: NotIn
        values: ["Uts"]
`))
		const sysAdmin, netRaw = "drop:21", "drop:13"
		// nothing changed
		e.runSteps(t, "same", "open:data0", "open:data1", "open:data2", "open:data3")
		// a listed capability: In once, not NotIn
		e.runSteps(t, "admin", "open:data0", sysAdmin, "open:data2", "open:data0", "open:data0", "open:data2")
		// an unlisted one: NotIn once, not In
		e.runSteps(t, "raw", netRaw, "open:data0", "open:data2", "open:data2")
		// a listed namespace: In once, not NotIn
		e.runSteps(t, "uts", "unshare:uts", "open:data3", "open:data1", "open:data1", "open:data3")
		// an unlisted one: NotIn, not In
		e.runSteps(t, "ipc", "unshare:ipc", "open:data1", "open:data3")
		// the record is the first exec's after the fork: a later exec in
		// a new namespace (unshare --uts prog) has changed it
		e.runSteps(t, "exec", "unshare:uts", "reexec", "open:data1", "open:data1")
		e.check(t, "admin data0", "raw data2", "uts data1", "ipc data3", "exec data1")
	})
}

// TestChangeFiltersRefused checks that a loader without the exec records
// refuses the change filters instead of loading a filter that never
// holds.
func TestChangeFiltersRefused(t *testing.T) {
	forEachMechanism(t, func(t *testing.T, mech string) {
		e := newFilterEnv(t, mech)
		_, err := e.h.tryLoad(t, filterPolicy("changes-refused", `      matchNamespaceChanges:
      - operator: In
        values: ["Mnt"]
`), mech)
		if err == nil || !strings.Contains(err.Error(), "exec sensor's records") {
			t.Fatalf("loading a change filter without the exec records: %v", err)
		}
	})
}
