//go:build k8s_e2e

// Package k8s runs the file-monitoring seed's Kubernetes steps, as written,
// against a real single-node cluster (scripts/k8s/cluster.sh): the agent's
// DaemonSet from install/kubernetes, the quickstart policy applied with
// kubectl, and the events read with tetra inside the agent's pod.
//
// It builds a cluster when none runs (the first time, the Kubernetes build
// takes 15 to 30 minutes; binaries are cached under /var/cache), so it is
// behind the k8s_e2e build tag:
//
//	go test -tags k8s_e2e -count=1 -v -timeout 60m ./test/k8s
//
// K8S_E2E_KEEP=1 leaves a cluster this run started up afterwards.
package k8s

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var repo = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

// env is what kubectl needs: KUBECONFIG and the cached binaries on PATH.
var env []string

// reused: the cluster ran before this run (K8S_E2E_KEEP=1), and an agent
// pod of an earlier image may still run: the image's tag does not change.
var reused bool

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "test/k8s: must run as root (it runs a kubelet and containerd)")
		return 1
	}
	cluster := filepath.Join(repo, "scripts/k8s/cluster.sh")
	started := false
	if exec.Command(cluster, "status").Run() != nil {
		t0 := time.Now()
		cmd := exec.Command(cluster, "up")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "test/k8s: cluster.sh up: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "test/k8s: cluster up in %s\n", time.Since(t0).Round(time.Second))
		started = true
	} else {
		reused = true
		// a running cluster gets this tree's agent image
		cmd := exec.Command(cluster, "images")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "test/k8s: cluster.sh images: %v\n", err)
			return 1
		}
	}
	out, err := exec.Command(cluster, "env").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "test/k8s: cluster.sh env: %v\n", err)
		return 1
	}
	env = os.Environ()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv := strings.TrimPrefix(line, "export ")
		k, v, _ := strings.Cut(kv, "=")
		v = strings.ReplaceAll(v, "$PATH", os.Getenv("PATH"))
		env = append(env, k+"="+v)
	}
	code := m.Run()
	if started && os.Getenv("K8S_E2E_KEEP") != "1" {
		cmd := exec.Command(cluster, "down")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "test/k8s: cluster.sh down: %v\n", err)
		}
	}
	return code
}

// kubectl runs kubectl and returns its stdout; a failure fails the test.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := kubectlResult(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func kubectlResult(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = env
	cmd.Dir = repo
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// agentLogs prints the agent's log when a test failed, for the reason.
func agentLogs(t *testing.T) {
	if !t.Failed() {
		return
	}
	out, errOut, _ := kubectlResult("-n", "kube-system", "logs", "ds/tetragon", "-c", "tetragon", "--tail", "60")
	t.Logf("agent log:\n%s%s", out, errOut)
}

// stream is a running `tetra getevents` whose lines are collected.
type stream struct {
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
}

func getevents(t *testing.T, args ...string) *stream {
	t.Helper()
	argv := append([]string{"exec", "-n", "kube-system", "ds/tetragon", "-c", "tetragon", "--", "tetra", "getevents"}, args...)
	cmd := exec.Command("kubectl", argv...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(argv, " "), err)
	}
	s := &stream{cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if t.Failed() && errOut.Len() > 0 {
			t.Logf("tetra getevents stderr: %s", errOut.String())
		}
	})
	return s
}

// since returns the lines from index from on.
func (s *stream) since(from int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines[min(from, len(s.lines)):]...)
}

func (s *stream) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// seedRun runs cmd in xwing as the seed does, until the stream shows a line
// for which last is true (a first run can come before tetra is subscribed),
// and returns the lines of that run.
func seedRun(t *testing.T, s *stream, cmd string, last func(string) bool) []string {
	t.Helper()
	for attempt := 0; attempt < 6; attempt++ {
		from := s.len()
		// the seed: kubectl exec -ti xwing -- bash -c '...' (no terminal here)
		if _, errOut, err := kubectlResult("exec", "xwing", "--", "bash", "-c", cmd); err != nil {
			t.Fatalf("kubectl exec xwing -- bash -c %q: %v: %s", cmd, err, errOut)
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			lines := s.since(from)
			for i, l := range lines {
				if last(l) {
					// what follows a moment later (a late read) counts too
					time.Sleep(500 * time.Millisecond)
					return s.since(from)[:i+1]
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Fatalf("no events of %q after 6 runs; the stream had:\n%s", cmd, strings.Join(s.since(0), "\n"))
	return nil
}

func TestSeed(t *testing.T) {
	t0 := time.Now()
	t.Cleanup(func() { agentLogs(t) })
	overlay := "test/k8s/overlay"
	kubectl(t, "apply", "-k", overlay)
	if reused {
		// the pod of the earlier run runs the earlier image
		kubectl(t, "-n", "kube-system", "rollout", "restart", "ds/tetragon")
	}
	t.Cleanup(func() {
		if os.Getenv("K8S_E2E_KEEP") == "1" {
			return
		}
		kubectlResult("delete", "--ignore-not-found", "--wait", "--timeout", "120s", "-k", overlay)
		// keep-sensors-on-exit leaves the pins on the node
		os.RemoveAll("/sys/fs/bpf/tetragon-e2e-k8s")
		os.RemoveAll("/sys/fs/bpf/tetragon-e2e-k8s_old")
	})
	kubectl(t, "apply", "-f", "test/k8s/testdata/xwing.yaml")
	t.Cleanup(func() {
		kubectlResult("delete", "--ignore-not-found", "--wait=false", "-f", "test/k8s/testdata/xwing.yaml")
	})
	kubectl(t, "-n", "kube-system", "rollout", "status", "ds/tetragon", "--timeout", "300s")
	kubectl(t, "wait", "--for=condition=Ready", "pod/xwing", "--timeout", "300s")
	t.Logf("agent and xwing ready in %s", time.Since(t0).Round(time.Second))

	// The seed: kubectl apply -f file_monitoring.yaml
	policy := "test/testdata/tetragon/examples/quickstart/file_monitoring.yaml"
	kubectl(t, "apply", "-f", policy)
	t.Cleanup(func() { kubectlResult("delete", "--ignore-not-found", "-f", policy) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, _ := kubectlResult("exec", "-n", "kube-system", "ds/tetragon", "-c", "tetragon", "--", "tetra", "tracingpolicy", "list")
		if strings.Contains(out, "file-monitoring-filtered") && strings.Contains(out, "enabled") {
			t.Logf("policy loaded:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file-monitoring-filtered not enabled within 60s; tetra tracingpolicy list:\n%s", out)
		}
		time.Sleep(time.Second)
	}

	// The seed: kubectl exec -ti -n kube-system ds/tetragon -c tetragon --
	// tetra getevents -o compact --pods xwing
	s := getevents(t, "-o", "compact", "--pods", "xwing")
	time.Sleep(2 * time.Second)

	t.Run("ReadShadow", func(t *testing.T) {
		got := seedRun(t, s, "cat /etc/shadow", func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    default/xwing /bin/cat ")
		})
		// The seed's four lines; cat reads twice (the file, then the end of
		// file), and each read(2) is an event.
		want := []string{
			`🚀 process default/xwing /bin/bash -c "cat /etc/shadow"`,
			`🚀 process default/xwing /bin/cat /etc/shadow`,
			`📚 read    default/xwing /bin/cat /etc/shadow`,
			`📚 read    default/xwing /bin/cat /etc/shadow`,
			`💥 exit    default/xwing /bin/cat /etc/shadow 0`,
		}
		sameLines(t, got, want)
	})

	t.Run("WriteEtc", func(t *testing.T) {
		got := seedRun(t, s, "echo foo >> /etc/bar", func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    default/xwing /bin/bash ")
		})
		want := []string{
			`🚀 process default/xwing /bin/bash -c "echo foo >> /etc/bar"`,
			`📝 write   default/xwing /bin/bash /etc/bar`,
			`💥 exit    default/xwing /bin/bash -c "echo foo >> /etc/bar" 0`,
		}
		sameLines(t, got, want)
	})

	t.Run("NamespaceFilter", func(t *testing.T) {
		// --namespace kube-system sees nothing of xwing, --namespace default does
		other := getevents(t, "-o", "compact", "--namespace", "kube-system", "--pods", "xwing")
		mine := getevents(t, "-o", "compact", "--namespace", "default", "--pods", "xwing")
		time.Sleep(2 * time.Second)
		seedRun(t, mine, "cat /etc/shadow", func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    default/xwing /bin/cat ")
		})
		if l := other.since(0); len(l) > 0 {
			t.Errorf("--namespace kube-system showed xwing's events:\n%s", strings.Join(l, "\n"))
		}
	})

	t.Run("ScopedPolicies", func(t *testing.T) { scopedPolicies(t) })

	t.Run("StatusEvents", func(t *testing.T) {
		// the quickstart policy enforces on this node: an Enforced event
		// on the object, from this node's agent
		node := strings.TrimSpace(kubectl(t, "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"))
		waitEvent(t, "file-monitoring-filtered", "Normal", "Enforced", "enforced on node "+node)
		bad := "test/k8s/testdata/bad-policy.yaml"
		kubectl(t, "apply", "-f", bad)
		t.Cleanup(func() { kubectlResult("delete", "--ignore-not-found", "-f", bad) })
		waitEvent(t, "status-not-enforced", "Warning", "NotEnforced", "no_such_kernel_function_tetragon_test")
	})

	t.Run("PodInJSON", func(t *testing.T) {
		j := getevents(t, "-o", "json", "--pods", "xwing", "-e", "exec")
		time.Sleep(2 * time.Second)
		lines := seedRun(t, j, "cat /etc/shadow", func(l string) bool { return strings.Contains(l, `"binary":"/bin/cat"`) })
		l := lines[len(lines)-1]
		for _, want := range []string{`"pod":{"namespace":"default","name":"xwing"`, `"container":{"id":"`, `"name":"spaceship"`,
			`"pod_labels":{"app.kubernetes.io/name":"xwing","class":"xwing"}`, `"workload":"xwing","workload_kind":"Pod"`} {
			if !strings.Contains(l, want) {
				t.Errorf("exec event lacks %s:\n%s", want, l)
			}
		}
	})

	// last: it replaces the agent's pod, which the streams above read
	t.Run("PersistentEnforcement", persistentEnforcement)
}

// sameLines compares the lines in order, the events of one command.
func sameLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// waitEnabled waits until tetra tracingpolicy list shows every policy
// named enabled.
func waitEnabled(t *testing.T, names ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _, _ := kubectlResult("exec", "-n", "kube-system", "ds/tetragon", "-c", "tetragon", "--", "tetra", "tracingpolicy", "list")
		ok := true
		for _, n := range names {
			found := false
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, n) && strings.Contains(l, "enabled") {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not enabled within 60s; tetra tracingpolicy list:\n%s", names, out)
		}
		time.Sleep(time.Second)
	}
}

// scopedPolicies checks that a TracingPolicyNamespaced and a policy with a
// podSelector and containerSelector act on the pods they name only, in the
// kernel (the other pod's reads give no event at all), and that a pod the
// podSelector comes to select (a label changed) is reached.
func scopedPolicies(t *testing.T) {
	tie := "test/k8s/testdata/tiefighter.yaml"
	kubectl(t, "apply", "-f", tie)
	t.Cleanup(func() { kubectlResult("delete", "--ignore-not-found", "--wait=false", "-f", tie) })
	kubectl(t, "-n", "empire", "wait", "--for=condition=Ready", "pod/tiefighter", "--timeout", "120s")
	for _, pod := range [][]string{{"xwing"}, {"-n", "empire", "tiefighter"}} {
		args := append(append([]string{"exec"}, pod...), "--", "bash", "-c", "echo x > /tmp/ns-watched; echo x > /tmp/pod-watched")
		kubectl(t, args...)
	}
	policy := "test/k8s/testdata/scoped.yaml"
	kubectl(t, "apply", "-f", policy)
	t.Cleanup(func() { kubectlResult("delete", "--ignore-not-found", "-f", policy) })
	waitEnabled(t, "scoped-namespace", "scoped-pods")

	s := getevents(t, "-o", "compact")
	time.Sleep(2 * time.Second)
	readBoth := "cat /tmp/ns-watched /tmp/pod-watched"
	tieRead := func() {
		t.Helper()
		if _, errOut, err := kubectlResult("exec", "-n", "empire", "tiefighter", "--", "bash", "-c", readBoth); err != nil {
			t.Fatalf("kubectl exec tiefighter: %v: %s", err, errOut)
		}
	}
	// tiefighter first: its reads, if a policy saw them, come before
	// xwing's last line
	from := s.len()
	tieRead()
	seedRun(t, s, readBoth, func(l string) bool {
		return strings.HasPrefix(l, "📚 read    default/xwing /bin/cat /tmp/pod-watched")
	})
	time.Sleep(time.Second)
	lines := s.since(from)
	for _, want := range []string{"📚 read    default/xwing /bin/cat /tmp/ns-watched", "📚 read    default/xwing /bin/cat /tmp/pod-watched"} {
		if !containsLine(lines, want) {
			t.Errorf("no %q; the stream had:\n%s", want, strings.Join(lines, "\n"))
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "empire/tiefighter") && strings.Contains(l, "-watched") && strings.HasPrefix(l, "📚") {
			t.Errorf("a scoped policy saw tiefighter's read: %s", l)
		}
	}

	// tiefighter becomes class xwing: the podSelector policy reaches it,
	// the namespaced one (default) still does not
	kubectl(t, "-n", "empire", "label", "pod", "tiefighter", "class=xwing", "--overwrite")
	var got []string
	for attempt := 0; attempt < 10 && !containsLine(got, "📚 read    empire/tiefighter /bin/cat /tmp/pod-watched"); attempt++ {
		from := s.len()
		tieRead()
		time.Sleep(time.Second)
		got = s.since(from)
	}
	if !containsLine(got, "📚 read    empire/tiefighter /bin/cat /tmp/pod-watched") {
		t.Fatalf("the podSelector policy did not reach tiefighter after its label changed; the stream had:\n%s", strings.Join(s.since(0), "\n"))
	}
	for _, l := range s.since(0) {
		if strings.HasPrefix(l, "📚 read    empire/tiefighter /bin/cat /tmp/ns-watched") {
			t.Errorf("the namespaced policy of default saw tiefighter's read: %s", l)
		}
	}
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// waitEvent waits until the events of TracingPolicy name include one of
// type typ and reason whose message contains msg.
func waitEvent(t *testing.T, name, typ, reason, msg string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _, _ = kubectlResult("get", "events", "-A", "--field-selector", "involvedObject.kind=TracingPolicy,involvedObject.name="+name,
			"-o", `jsonpath={range .items[*]}{.type}|{.reason}|{.source.component}|{.message}{"\n"}{end}`)
		for _, l := range strings.Split(out, "\n") {
			f := strings.SplitN(l, "|", 4)
			if len(f) == 4 && f[0] == typ && f[1] == reason && f[2] == "tetragon" && strings.Contains(f[3], msg) {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("no %s %s event with %q on TracingPolicy %s within 30s; its events:\n%s", typ, reason, msg, name, out)
}

// catForbidden runs cat /tmp/forbidden in xwing and reports whether it was
// killed (exit status 137, SIGKILL) or, when not, what happened.
func catForbidden() (killed bool, what string) {
	out, errOut, err := kubectlResult("exec", "xwing", "--", "cat", "/tmp/forbidden")
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(errOut, "exit code 137") {
		return true, ""
	}
	return false, fmt.Sprintf("%v: stdout %q stderr %q", err, out, errOut)
}

// agentPods names the agent's pods and whether each is ready.
func agentPods(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(kubectl(t, "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=tetragon",
		"-o", `jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[*].ready} {end}`))
}

// persistentEnforcement checks that a policy keeps killing across
// `kubectl -n kube-system rollout restart ds/tetragon`: the old agent
// leaves its pins, the new one takes over make-before-break. Every attempt
// during the restart, with no agent or a starting one, is killed.
func persistentEnforcement(t *testing.T) {
	kubectl(t, "exec", "xwing", "--", "bash", "-c", "echo secret > /tmp/forbidden")
	policy := "test/k8s/testdata/kill-policy.yaml"
	kubectl(t, "apply", "-f", policy)
	t.Cleanup(func() { kubectlResult("delete", "--ignore-not-found", "-f", policy) })
	waitEnabled(t, "kill-forbidden")
	if killed, what := catForbidden(); !killed {
		t.Fatalf("cat /tmp/forbidden in xwing was not killed before the restart: %s", what)
	}
	old := agentPods(t)
	kubectl(t, "-n", "kube-system", "rollout", "restart", "ds/tetragon")
	done := make(chan error, 1)
	go func() {
		_, errOut, err := kubectlResult("-n", "kube-system", "rollout", "status", "ds/tetragon", "--timeout", "300s")
		if err != nil {
			err = fmt.Errorf("%w: %s", err, errOut)
		}
		done <- err
	}()
	attempts, unready := 0, 0
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("rollout status: %v", err)
			}
			finished = true
		default:
		}
		// one more after the rollout finished: the new agent enforces
		pods := agentPods(t)
		killed, what := catForbidden()
		attempts++
		if !killed {
			t.Fatalf("attempt %d during the restart (agent pods: %s): cat /tmp/forbidden was not killed: %s", attempts, pods, what)
		}
		if !strings.Contains(pods, "=true") {
			unready++ // no agent ready at that moment
		}
	}
	now := agentPods(t)
	if strings.Fields(now)[0] == strings.Fields(old)[0] {
		t.Fatalf("the agent's pod is still %s after the rollout restart", now)
	}
	if unready == 0 {
		t.Fatalf("%d attempts, none while no agent was ready: the test did not see the gap", attempts)
	}
	t.Logf("%d attempts killed during the restart (%d with no agent ready); %s replaced by %s", attempts, unready, old, now)
	waitEnabled(t, "kill-forbidden")
}
