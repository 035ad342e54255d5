package appliance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int // exit status; 128+n for a signal, as a shell reports it
}

// run runs a command to its end (within timeout) and returns what it did.
// The error is for a command that could not run or timed out, not for a
// non-zero exit status.
func run(timeout time.Duration, env []string, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		} else {
			r.code = ws.ExitStatus()
		}
		return r, nil
	case err != nil:
		return r, err
	}
	return r, nil
}

// docker runs the docker CLI, failing the test unless it exits 0, and
// returns its trimmed standard output.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	r, err := run(2*time.Minute, nil, "docker", args...)
	if err == nil && r.code != 0 {
		err = fmt.Errorf("exit status %d", r.code)
	}
	if err != nil {
		t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// dockerResult runs the docker CLI and returns what it did, whatever its exit
// status.
func dockerResult(t testing.TB, args ...string) result {
	t.Helper()
	r, err := run(2*time.Minute, nil, "docker", args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	}
	return r
}

// removeContainerAtEnd removes the named container when the test ends.
func removeContainerAtEnd(t testing.TB, name string) {
	t.Cleanup(func() { run(time.Minute, nil, "docker", "rm", "-f", "-v", name) })
}

// workload starts a long-running container of the base image that first runs
// prepare, and waits until prepare is done (it creates the file ready).
func workload(t testing.TB, name, prepare, ready string) {
	t.Helper()
	removeContainerAtEnd(t, name)
	docker(t, "run", "-d", "--name", name, "--label", "org.tetragon-lite.e2e="+suite.run, suite.base,
		"sh", "-c", prepare+" && touch /tmp/.ready && exec sleep 3600")
	eventually(t, 30*time.Second, name+" prepared", func() bool {
		return dockerResult(t, "exec", name, "test", "-e", "/tmp/.ready").code == 0 &&
			(ready == "" || dockerResult(t, "exec", name, "test", "-e", ready).code == 0)
	})
}

// eventually polls cond every 200ms until it holds, or fails the test.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// agent is an agent container of this run.
type agent struct {
	name   string // container name
	bpfDir string // --bpf-dir: its pins, under /sys/fs/bpf
	// compose arguments (-p, -f ...) when compose started it.
	compose []string
	env     []string
}

// composeOptions are what a test changes of docker-compose.yml, through an
// override file: everything else is the file as shipped.
type composeOptions struct {
	name      string   // container name and project name
	policyDir string   // mounted on /etc/tetragon
	command   []string // agent flags
}

// startCompose starts the agent with the repository's docker-compose.yml and
// an override, waits until it is ready, and takes it down (pins included)
// when the test ends.
func startCompose(t *testing.T, o composeOptions) *agent {
	t.Helper()
	a := &agent{name: o.name, bpfDir: "appliance-" + o.name, env: []string{"TETRAGON_IMAGE=" + suite.image}}
	override := filepath.Join(t.TempDir(), "docker-compose.override.yml")
	var b strings.Builder
	q := strconv.Quote // a JSON string is a YAML string
	fmt.Fprintf(&b, "services:\n  tetragon:\n")
	fmt.Fprintf(&b, "    container_name: %s\n", q(o.name))
	fmt.Fprintf(&b, "    labels:\n      org.tetragon-lite.e2e: %s\n", q(suite.run))
	fmt.Fprintf(&b, "    environment:\n      TETRAGON_BPF_DIR: %s\n", q(a.bpfDir))
	fmt.Fprintf(&b, "    volumes:\n      - %s\n", q(o.policyDir+":/etc/tetragon:ro"))
	if o.command != nil {
		cmd, _ := json.Marshal(o.command)
		fmt.Fprintf(&b, "    command: %s\n", cmd)
	}
	if err := os.WriteFile(override, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	a.compose = []string{"-p", o.name, "-f", filepath.Join(suite.repo, "docker-compose.yml"), "-f", override}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent %s log:\n%s", a.name, a.logs(t))
		}
		a.composeRun(t, "down", "--timeout", "20")
		a.removePins(t)
	})
	start := time.Now()
	a.composeRun(t, "up", "-d", "--no-build")
	a.waitReady(t, start)
	return a
}

// composeRun runs a Compose command on the agent's project.
func (a *agent) composeRun(t testing.TB, args ...string) string {
	t.Helper()
	argv := append(append(append([]string{}, suite.compose[1:]...), a.compose...), args...)
	r, err := run(3*time.Minute, a.env, suite.compose[0], argv...)
	if err == nil && r.code != 0 {
		err = fmt.Errorf("exit status %d", r.code)
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", suite.compose[0], strings.Join(argv, " "), err, r.stdout, r.stderr)
	}
	return r.stdout + r.stderr
}

// removePins removes what the agent left under /sys/fs/bpf: a test must not
// leave a Sigkill policy behind on the host.
func (a *agent) removePins(t testing.TB) {
	for _, dir := range []string{a.bpfDir, a.bpfDir + "_old", a.bpfDir + "_lock"} {
		p := filepath.Join("/sys/fs/bpf", dir)
		if _, err := os.Stat(p); err == nil {
			if err := os.RemoveAll(p); err != nil {
				t.Errorf("removing pins %s: %v", p, err)
			}
		}
	}
}

// agentStatus is the part of `tetra status -o json` the tests read.
type agentStatus struct {
	Agent struct {
		Ready       bool   `json:"ready"`
		NodeName    string `json:"node_name"`
		Subscribers int    `json:"subscribers"`
	} `json:"agent"`
}

// status asks the agent for its status with tetra inside its container.
func (a *agent) status(t testing.TB) (agentStatus, error) {
	t.Helper()
	var st agentStatus
	r, err := run(30*time.Second, nil, "docker", "exec", a.name, "tetra", "status", "-o", "json")
	if err != nil {
		return st, err
	}
	if r.code != 0 {
		return st, fmt.Errorf("tetra status: exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	}
	return st, json.Unmarshal([]byte(r.stdout), &st)
}

// waitReady waits until tetra status in the container says ready, failing
// early if the container stops.
func (a *agent) waitReady(t testing.TB, since time.Time) {
	t.Helper()
	deadline := since.Add(2 * time.Minute)
	for {
		st, err := a.status(t)
		if err == nil && st.Agent.Ready {
			t.Logf("agent %s ready %v after start", a.name, time.Since(since).Round(time.Millisecond))
			return
		}
		if state := docker(t, "inspect", "-f", "{{.State.Status}} {{.RestartCount}}", a.name); state != "running 0" {
			t.Fatalf("agent container %s: %s (want running, no restarts); log:\n%s", a.name, state, a.logs(t))
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s not ready within %v: %v; log:\n%s", a.name, deadline.Sub(since), err, a.logs(t))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// logs returns the agent container's log.
func (a *agent) logs(t testing.TB) string {
	r, err := run(time.Minute, nil, "docker", "logs", a.name)
	if err != nil {
		return err.Error()
	}
	return r.stdout + r.stderr
}

// events is a running `docker exec <agent> tetra getevents ...`.
type events struct {
	lines chan string
	args  []string
}

// getevents runs `docker exec <agent> tetra getevents args...` and returns once
// the agent counts its subscription, so nothing that follows is missed.
func (a *agent) getevents(t *testing.T, args ...string) *events {
	t.Helper()
	st, err := a.status(t)
	if err != nil {
		t.Fatal(err)
	}
	before := st.Agent.Subscribers
	e := &events{lines: make(chan string, 10000), args: append([]string{"tetra", "getevents"}, args...)}
	cmd := exec.Command("docker", append([]string{"exec", a.name}, e.args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(e.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			e.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		// Ending the docker client does not end the process it started in the
		// container: end that one (the agent shares the host's PID namespace).
		a.killExecs(e.args)
		cmd.Process.Kill()
		cmd.Wait()
		wg.Wait()
		if s := strings.TrimSpace(stderr.String()); s != "" && t.Failed() {
			t.Logf("getevents stderr: %s", s)
		}
	})
	eventually(t, 30*time.Second, "getevents subscribed", func() bool {
		st, err := a.status(t)
		return err == nil && st.Agent.Subscribers > before
	})
	return e
}

// killExecs ends the processes running argv in the agent's container.
func (a *agent) killExecs(argv []string) {
	id, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", a.name).Output()
	if err != nil {
		return
	}
	want := strings.Join(argv, "\x00") + "\x00"
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || string(cmdline) != want {
			continue
		}
		cgroup, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cgroup"))
		if err == nil && bytes.Contains(cgroup, bytes.TrimSpace(id)) {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}

// collect reads lines until one satisfies last (which is kept), then waits
// settle for more; it fails the test if last never comes within timeout.
func (e *events) collect(t *testing.T, timeout, settle time.Duration, last func(string) bool) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-e.lines:
			if !ok {
				t.Fatalf("getevents ended; lines so far:\n%s", strings.Join(got, "\n"))
			}
			got = append(got, l)
			if last(l) {
				quiet := time.After(settle)
				for {
					select {
					case l, ok := <-e.lines:
						if !ok {
							return got
						}
						got = append(got, l)
					case <-quiet:
						return got
					}
				}
			}
		case <-deadline:
			t.Fatalf("no closing line within %v; lines so far:\n%s", timeout, strings.Join(got, "\n"))
		}
	}
}

// sameLines fails the test unless got is exactly want.
func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	got = withoutRuntimeInit(t, got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s: tetra getevents -o compact printed:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// runtimeInit matches the compact lines of the container runtime's own
// `runc init`, which some runc versions (Debian 12's 1.1.5+ds1-1+deb12u1
// among them) execute inside the container's cgroup before the entrypoint:
// one exec and the exits of its helper processes. runc 1.1 runs a copy of
// itself that the kernel names "/" (a read-only bind mount of the binary,
// detached: /proc/PID/exe says "/" too) or "/memfd:runc_cloned:... (deleted)"
// (its memfd fallback). They are real executions in the container and the
// agent shows them (README); the checks here are about the workload, and
// must hold with any runtime version.
var runtimeInit = regexp.MustCompile(`^(🚀 process|💥 exit   ) \S+ (/|/\S*runc\S*( \(deleted\))?) init( 0)?$`)

// withoutRuntimeInit drops the runtime's lines, logging them.
func withoutRuntimeInit(t *testing.T, lines []string) []string {
	t.Helper()
	var kept []string
	for _, l := range lines {
		if runtimeInit.MatchString(l) {
			t.Logf("container runtime's own line: %s", l)
			continue
		}
		kept = append(kept, l)
	}
	return kept
}

// copyTree copies the regular files and directories under src into dst.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// policyDir returns a new directory readable by the agent container.
func policyDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRuntimeInitLines(t *testing.T) {
	for _, l := range []string{
		"🚀 process xwing /memfd:runc_cloned:/proc/self/exe (deleted) init",
		"💥 exit    xwing /memfd:runc_cloned:/proc/self/exe (deleted) init 0",
		"🚀 process 9d2860e54ea6 /usr/sbin/runc init",
		"🚀 process xwing / init", // runc's detached bind mount of itself
		"💥 exit    xwing / init 0",
	} {
		if !runtimeInit.MatchString(l) {
			t.Errorf("%q is runc's own line, not matched", l)
		}
	}
	for _, l := range []string{
		"🚀 process xwing /bin/busybox init",                                  // a workload's own init
		"💥 exit    xwing /memfd:runc_cloned:/proc/self/exe (deleted) init 1", // runc init failing is worth seeing
		`🚀 process xwing /bin/busybox -c "runc init"`,
	} {
		if runtimeInit.MatchString(l) {
			t.Errorf("%q matched as runc's own line", l)
		}
	}
}
