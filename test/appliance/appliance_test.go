package appliance

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// In the busybox base image every applet is a link to /bin/busybox, which is
// the binary the kernel runs and the events show.
const busybox = "/bin/busybox"

// TestImage checks what the Dockerfile puts in the image: the entrypoint, the
// health check, the labels, and the policies (only the top-level ones of
// policies/ active in /etc/tetragon, all of them under /usr/share).
func TestImage(t *testing.T) {
	requireSuite(t)
	var img struct {
		Config struct {
			Entrypoint  []string
			Labels      map[string]string
			Healthcheck struct{ Test []string }
			User        string
		}
	}
	if err := json.Unmarshal([]byte(docker(t, "image", "inspect", "-f", "{{json .}}", suite.image)), &img); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(img.Config.Entrypoint, " "); got != "/usr/bin/tetragon" {
		t.Errorf("entrypoint %q, want /usr/bin/tetragon", got)
	}
	if got := strings.Join(img.Config.Healthcheck.Test, " "); got != "CMD /usr/bin/tetra status" {
		t.Errorf("health check %q, want CMD /usr/bin/tetra status", got)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if img.Config.Labels[l] == "" {
			t.Errorf("label %s is missing (labels: %v)", l, img.Config.Labels)
		}
	}
	if exec.Command("git", "-C", suite.repo, "rev-parse", "HEAD").Run() == nil && img.Config.Labels["org.opencontainers.image.revision"] == "" {
		t.Errorf("label org.opencontainers.image.revision is empty in a git checkout")
	}

	name := "tetragon-e2e-files-" + suite.run
	removeContainerAtEnd(t, name)
	docker(t, "create", "--name", name, suite.image)
	files := func(dir string) []string {
		cmd := exec.Command("docker", "cp", name+":"+dir, "-")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		var names []string
		tr := tar.NewReader(out)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("docker cp %s: %v", dir, err)
			}
			if h.Typeflag == tar.TypeReg {
				// the archive's root is the directory's base name
				_, rel, _ := strings.Cut(h.Name, "/")
				names = append(names, rel)
			}
		}
		sort.Strings(names)
		return names
	}
	var active, shipped []string
	top, _ := filepath.Glob(filepath.Join(suite.repo, "policies", "*.yaml"))
	for _, p := range top {
		active = append(active, filepath.Base(p))
	}
	filepath.WalkDir(filepath.Join(suite.repo, "policies"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(filepath.Join(suite.repo, "policies"), p)
			shipped = append(shipped, rel)
		}
		return nil
	})
	sort.Strings(active)
	sort.Strings(shipped)
	if want := []string{"enforcement.yaml", "file-monitoring.yaml"}; !slices.Equal(active, want) {
		t.Errorf("policies/*.yaml in the repository: %v, want %v (the seeds' policies)", active, want)
	}
	// no /etc/tetragon in the image: the seed's `docker run -v
	// file.yaml:/etc/tetragon/` mounts a single file there, which Docker
	// refuses over a directory
	if r := dockerResult(t, "cp", name+":/etc/tetragon", "-"); r.code == 0 {
		t.Errorf("the image has /etc/tetragon; the seed's single-file mount needs it absent")
	}
	if got := files("/usr/share/tetragon/policies"); !slices.Equal(got, shipped) {
		t.Errorf("/usr/share/tetragon/policies in the image: %v, want %v", got, shipped)
	}
}

// TestAppliance runs the appliance the way the quick start does, with the
// shipped policies directory, and the seed scenarios against it.
func TestAppliance(t *testing.T) {
	requireSuite(t)
	policies := policyDir(t)
	// What the compose file mounts: the repository's policies/, examples and all.
	copyTree(t, filepath.Join(suite.repo, "policies"), policies)
	a := startCompose(t, composeOptions{name: "tetragon-e2e-" + suite.run, policyDir: policies})

	t.Run("ShippedPoliciesOnly", func(t *testing.T) {
		logs := a.logs(t)
		var loaded []string
		for _, m := range regexp.MustCompile(`Loaded tracing policy .*policy=(\S+)`).FindAllStringSubmatch(logs, -1) {
			loaded = append(loaded, m[1])
		}
		sort.Strings(loaded)
		if want := []string{"enforcement", "file-monitoring"}; !slices.Equal(loaded, want) {
			t.Errorf("policies loaded: %v, want %v; log:\n%s", loaded, want, logs)
		}
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, " ERR ") || strings.Contains(l, " WRN ") {
				t.Errorf("agent log has a warning or error: %s", l)
			}
		}
	})

	// The compose file shares the host's UTS namespace: host processes are
	// labelled with the host's name, as when the agent runs on the host.
	t.Run("HostName", func(t *testing.T) {
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		st, err := a.status(t)
		if err != nil {
			t.Fatal(err)
		}
		if st.Agent.NodeName != host {
			t.Fatalf("node name %q, want the host's name %q", st.Agent.NodeName, host)
		}
	})

	// The seed: read a secret in a container named xwing.
	t.Run("ReadShadow", func(t *testing.T) {
		x := "xwing-" + suite.run + "-read"
		ev := a.getevents(t, "-o", "compact", "--containers", x)
		removeContainerAtEnd(t, x)
		if r := dockerResult(t, "run", "--name", x, "--label", "org.tetragon-lite.e2e="+suite.run, suite.base, "sh", "-c", "cat /etc/shadow"); r.code != 0 || !strings.HasPrefix(r.stdout, "root:") {
			t.Fatalf("cat /etc/shadow in %s: exit %d, %q %q", x, r.code, r.stdout, r.stderr)
		}
		got := ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    "+x+" ")
		})
		sameLines(t, "cat /etc/shadow", got, []string{
			fmt.Sprintf(`🚀 process %s %s -c "cat /etc/shadow"`, x, busybox),
			fmt.Sprintf(`🚀 process %s %s /etc/shadow`, x, busybox),
			// one per read of the file: its bytes, then the end of file
			fmt.Sprintf(`📚 read    %s %s /etc/shadow`, x, busybox),
			fmt.Sprintf(`📚 read    %s %s /etc/shadow`, x, busybox),
			fmt.Sprintf(`💥 exit    %s %s /etc/shadow 0`, x, busybox),
		})
	})

	// The seed: write under /etc in xwing.
	t.Run("WriteEtc", func(t *testing.T) {
		x := "xwing-" + suite.run + "-write"
		ev := a.getevents(t, "-o", "compact", "--containers", x)
		removeContainerAtEnd(t, x)
		if r := dockerResult(t, "run", "--name", x, "--label", "org.tetragon-lite.e2e="+suite.run, suite.base, "sh", "-c", "echo foo >> /etc/bar"); r.code != 0 {
			t.Fatalf("echo foo >> /etc/bar in %s: exit %d, %q", x, r.code, r.stderr)
		}
		got := ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    "+x+" ")
		})
		sameLines(t, "echo foo >> /etc/bar", got, []string{
			fmt.Sprintf(`🚀 process %s %s -c "echo foo >> /etc/bar"`, x, busybox),
			fmt.Sprintf(`📝 write   %s %s /etc/bar`, x, busybox),
			fmt.Sprintf(`💥 exit    %s %s -c "echo foo >> /etc/bar" 0`, x, busybox),
		})
	})

	// The persistent-enforcement seed's policy, shipped active: `cat
	// /tmp/tetragon` in a container is killed, and reported.
	t.Run("Enforcement", func(t *testing.T) {
		x := "xwing-" + suite.run + "-kill"
		// Creating /tmp/tetragon opens it, which the policy kills: make the
		// file under another name and rename it.
		workload(t, x, "echo secret > /tmp/x && mv /tmp/x /tmp/tetragon", "/tmp/tetragon")
		ev := a.getevents(t, "-o", "compact", "--containers", x)
		if r := dockerResult(t, "exec", x, "cat", "/tmp/tetragon"); r.code != 137 || r.stdout != "" {
			t.Fatalf("docker exec %s cat /tmp/tetragon: exit %d, stdout %q; want 137 (SIGKILL) and nothing read", x, r.code, r.stdout)
		}
		got := ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    "+x+" ")
		})
		sameLines(t, "cat /tmp/tetragon", got, []string{
			fmt.Sprintf(`🚀 process %s %s /tmp/tetragon`, x, busybox),
			fmt.Sprintf(`📬 open    %s %s /tmp/tetragon`, x, busybox),
			fmt.Sprintf(`💥 exit    %s %s /tmp/tetragon SIGKILL`, x, busybox),
		})
		// Only that file.
		if r := dockerResult(t, "exec", x, "cat", "/etc/passwd"); r.code != 0 {
			t.Fatalf("cat /etc/passwd in %s: exit %d", x, r.code)
		}
	})

	// Issue 7: a policy file dropped into the mounted policy directory on the
	// host takes effect in the running appliance, without a restart.
	t.Run("PolicyHotReload", func(t *testing.T) {
		x := "xwing-" + suite.run + "-reload"
		target := "/tmp/reload-" + suite.run
		workload(t, x, "echo secret > /tmp/x && mv /tmp/x "+target, target)
		if r := dockerResult(t, "exec", x, "cat", target); r.code != 0 {
			t.Fatalf("cat %s before the policy: exit %d", target, r.code)
		}
		file := filepath.Join(policies, "reload-"+suite.run+".yaml")
		t.Cleanup(func() { os.Remove(file) })
		policy := testutil.KillOnOpenPolicy("reload-"+suite.run, target)
		dropped := time.Now()
		if err := os.WriteFile(file, policy, 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "the dropped policy kills cat "+target, func() bool {
			return dockerResult(t, "exec", x, "cat", target).code == 137
		})
		t.Logf("enforcing %v after the file was written", time.Since(dropped).Round(time.Millisecond))
		if st := docker(t, "inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", a.name); !strings.HasSuffix(st, " 0") {
			t.Fatalf("the agent restarted: %s", st)
		}
	})

	// Last: the image's HEALTHCHECK (tetra status) runs every 30s.
	t.Run("Healthy", func(t *testing.T) {
		eventually(t, 75*time.Second, "docker reports the agent healthy", func() bool {
			return docker(t, "inspect", "-f", "{{.State.Health.Status}}", a.name) == "healthy"
		})
		if n := docker(t, "inspect", "-f", "{{.RestartCount}}", a.name); n != "0" {
			t.Fatalf("agent restarted %s times", n)
		}
	})
}

// TestPersistentEnforcement: the persistent-enforcement seed with the
// appliance. With --keep-sensors-on-exit the kill goes on while the agent
// container is stopped, and while and after it is recreated.
func TestPersistentEnforcement(t *testing.T) {
	requireSuite(t)
	requireAgentFlag(t, "--keep-sensors-on-exit", "issue 6")
	policies := policyDir(t)
	data, err := os.ReadFile(filepath.Join(suite.repo, "policies", "enforcement.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policies, "enforcement.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	x := "xwing-" + suite.run + "-keep"
	workload(t, x, "echo secret > /tmp/x && mv /tmp/x /tmp/tetragon", "/tmp/tetragon")
	catCode := func() int { return dockerResult(t, "exec", x, "cat", "/tmp/tetragon").code }

	a := startCompose(t, composeOptions{
		name:      "tetragon-e2e-keep-" + suite.run,
		policyDir: policies,
		command:   []string{"--keep-sensors-on-exit"},
	})
	if c := catCode(); c != 137 {
		t.Fatalf("agent running: cat /tmp/tetragon exit %d, want 137", c)
	}

	a.composeRun(t, "stop")
	if st := docker(t, "inspect", "-f", "{{.State.Status}}", a.name); st != "exited" {
		t.Fatalf("agent container %s after compose stop, want exited", st)
	}
	if c := catCode(); c != 137 {
		t.Fatalf("agent stopped: cat /tmp/tetragon exit %d, want 137; agent log:\n%s", c, a.logs(t))
	}

	started := time.Now()
	a.composeRun(t, "up", "-d", "--no-build", "--force-recreate")
	if c := catCode(); c != 137 {
		t.Fatalf("agent recreated, starting: cat /tmp/tetragon exit %d, want 137", c)
	}
	a.waitReady(t, started)
	if c := catCode(); c != 137 {
		t.Fatalf("agent recreated, ready: cat /tmp/tetragon exit %d, want 137", c)
	}

	// Taking it down leaves the pins (that is the point); removing them ends
	// the enforcement.
	a.composeRun(t, "down", "--timeout", "20")
	if c := catCode(); c != 137 {
		t.Fatalf("agent removed: cat /tmp/tetragon exit %d, want 137 until the pins are removed", c)
	}
	a.removePins(t)
	if c := catCode(); c != 0 {
		t.Fatalf("pins removed: cat /tmp/tetragon exit %d, want 0", c)
	}
}

// leastPrivilege is the README's least-privilege `docker run` form: the
// host's PID, UTS and cgroup namespaces, CAP_SYS_ADMIN (BPF, perf events,
// mounting bpffs and tracefs; Docker 20.10 knows no CAP_BPF or CAP_PERFMON)
// and CAP_SYS_PTRACE (the /proc of other processes), Docker's default seccomp
// profile, no AppArmor profile (Docker's denies mount).
var leastPrivilege = []string{
	"--pid=host", "--uts=host", "--cgroupns=host",
	"--cap-drop", "ALL", "--cap-add", "SYS_ADMIN", "--cap-add", "SYS_PTRACE",
	"--security-opt", "apparmor=unconfined",
}

// dockerRunAgent starts the image with the least-privilege form and the
// README's mounts, the policies of policyDir, and docker.sock if withSocket;
// it waits until the agent is ready and removes it (and its pins) at the end.
func dockerRunAgent(t *testing.T, name, policyDir string, withSocket bool) *agent {
	t.Helper()
	a := &agent{name: name, bpfDir: "appliance-" + name}
	removeContainerAtEnd(t, name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent %s log:\n%s", name, a.logs(t))
		}
		run(time.Minute, nil, "docker", "stop", "-t", "20", name)
		a.removePins(t)
	})
	args := append([]string{"run", "-d", "--name", name, "--label", "org.tetragon-lite.e2e=" + suite.run}, leastPrivilege...)
	args = append(args,
		"-v", "/sys/kernel/btf/vmlinux:/var/lib/tetragon/btf:ro",
		"-v", "/sys/fs/bpf:/sys/fs/bpf",
		"-v", "/sys/kernel/tracing:/sys/kernel/tracing",
		"-v", policyDir+":/etc/tetragon:ro",
		"-e", "TETRAGON_BPF_DIR="+a.bpfDir)
	if withSocket {
		args = append(args, "-v", "/var/run/docker.sock:/var/run/docker.sock:ro")
	}
	started := time.Now()
	docker(t, append(args, suite.image)...)
	a.waitReady(t, started)
	return a
}

// TestLeastPrivilegeDockerRun: the README's least-privilege `docker run`
// loads a policy, enforces it, and names containers.
func TestLeastPrivilegeDockerRun(t *testing.T) {
	requireSuite(t)
	policies := policyDir(t)
	data, err := os.ReadFile(filepath.Join(suite.repo, "policies", "enforcement.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(policies, "enforcement.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a := dockerRunAgent(t, "tetragon-e2e-lp-"+suite.run, policies, true)
	if logs := a.logs(t); strings.Contains(logs, " WRN ") || strings.Contains(logs, " ERR ") {
		t.Errorf("warnings or errors in the agent log:\n%s", logs)
	}
	x := "xwing-" + suite.run + "-lp"
	workload(t, x, "echo secret > /tmp/x && mv /tmp/x /tmp/tetragon", "/tmp/tetragon")
	ev := a.getevents(t, "-o", "compact", "--pods", x)
	if r := dockerResult(t, "exec", x, "cat", "/tmp/tetragon"); r.code != 137 {
		t.Fatalf("docker exec %s cat /tmp/tetragon: exit %d, want 137", x, r.code)
	}
	got := ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
		return strings.HasPrefix(l, "💥 exit    "+x+" ")
	})
	sameLines(t, "cat /tmp/tetragon", got, []string{
		fmt.Sprintf(`🚀 process %s %s /tmp/tetragon`, x, busybox),
		fmt.Sprintf(`📬 open    %s %s /tmp/tetragon`, x, busybox),
		fmt.Sprintf(`💥 exit    %s %s /tmp/tetragon SIGKILL`, x, busybox),
	})
}

// TestWithoutDockerSocket: the least-privilege `docker run` without
// /var/run/docker.sock. The agent runs, events show container ids, and the
// log has one warning about Docker.
func TestWithoutDockerSocket(t *testing.T) {
	requireSuite(t)
	a := dockerRunAgent(t, "tetragon-e2e-nosock-"+suite.run, policyDir(t), false)

	ev := a.getevents(t, "-o", "compact")
	x := "xwing-" + suite.run + "-nosock"
	removeContainerAtEnd(t, x)
	id := docker(t, "create", "--name", x, "--label", "org.tetragon-lite.e2e="+suite.run, suite.base, "sh", "-c", "exit 3")
	if r := dockerResult(t, "start", "-a", x); r.code != 3 {
		t.Fatalf("docker start -a %s: exit %d, want 3: %s", x, r.code, r.stderr)
	}
	short := id[:12]
	var got []string
	for _, l := range ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
		return strings.HasPrefix(l, "💥 exit    "+short+" ")
	}) {
		if strings.Contains(l, " "+short+" ") {
			got = append(got, l)
		}
	}
	sameLines(t, "sh -c 'exit 3' without docker.sock", got, []string{
		fmt.Sprintf(`🚀 process %s %s -c "exit 3"`, short, busybox),
		fmt.Sprintf(`💥 exit    %s %s -c "exit 3" 3`, short, busybox),
	})

	var docker []string
	for _, l := range strings.Split(a.logs(t), "\n") {
		if strings.Contains(strings.ToLower(l), "docker") && !strings.Contains(l, " DBG ") {
			docker = append(docker, l)
		}
	}
	if len(docker) != 1 || !strings.Contains(docker[0], " WRN ") {
		t.Fatalf("want exactly one log line about Docker, a warning; got %d:\n%s", len(docker), strings.Join(docker, "\n"))
	}
}

// TestSeedDockerRun runs the quickstart seed's `docker run` as written, but
// for what this machine cannot do: --privileged (refused here: the explicit
// capability set instead) and --pull always (no registry). It mounts one
// policy file onto /etc/tetragon/.
func TestSeedDockerRun(t *testing.T) {
	requireSuite(t)
	for _, tc := range []struct {
		name, file, policy string
	}{
		{"shipped", filepath.Join("policies", "file-monitoring.yaml"), "file-monitoring"},
		// Tetragon's examples/quickstart/file_monitoring.yaml as published:
		// return probes on three functions (issue 14).
		{"quickstart", filepath.Join("test", "testdata", "tetragon", "examples", "quickstart", "file_monitoring.yaml"), "file-monitoring-filtered"},
	} {
		t.Run(tc.name, func(t *testing.T) { seedDockerRun(t, tc.name, tc.file, tc.policy) })
	}
}

func seedDockerRun(t *testing.T, variant, file, policyName string) {
	name := "tetragon-e2e-seed-" + variant + "-" + suite.run
	a := &agent{name: name, bpfDir: "appliance-" + name}
	dir := t.TempDir()
	policy := filepath.Join(dir, "file_monitoring.yaml")
	data, err := os.ReadFile(filepath.Join(suite.repo, file))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policy, data, 0o644); err != nil {
		t.Fatal(err)
	}
	removeContainerAtEnd(t, name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", a.logs(t))
		}
		run(time.Minute, nil, "docker", "stop", "-t", "20", name)
		a.removePins(t)
	})
	started := time.Now()
	r := dockerResult(t, "run", "--name", name, "--rm", "-d", "--label", "org.tetragon-lite.e2e="+suite.run,
		"--pid=host", "--cgroupns=host",
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"-v", policy+":/etc/tetragon/",
		"-v", "/sys/kernel/btf/vmlinux:/var/lib/tetragon/btf",
		"-e", "TETRAGON_BPF_DIR="+a.bpfDir,
		suite.image)
	if r.code != 0 {
		t.Fatalf("the seed's docker run: exit %d: %s", r.code, r.stderr)
	}
	a.waitReady(t, started)
	logs := a.logs(t)
	loaded := regexp.MustCompile(`Loaded tracing policy .*`).FindAllString(logs, -1)
	if len(loaded) != 1 || !regexp.MustCompile(`(file|source)=/etc/tetragon( |$)`).MatchString(loaded[0]) || !strings.Contains(loaded[0], "policy="+policyName+" ") {
		t.Fatalf("want %s loaded from the file /etc/tetragon, and nothing else; log:\n%s", policyName, logs)
	}

	// The seed mounts no docker.sock: events name containers by id.
	ev := a.getevents(t, "-o", "compact")
	for _, c := range []struct{ cmd, want string }{
		{"cat /etc/shadow", "📚 read    %s %s /etc/shadow"},
		{"echo foo >> /etc/bar", "📝 write   %s %s /etc/bar"},
	} {
		x := fmt.Sprintf("xwing-%s-seed-%s-%d", suite.run, variant, len(c.cmd))
		removeContainerAtEnd(t, x)
		short := docker(t, "create", "--name", x, "--label", "org.tetragon-lite.e2e="+suite.run, suite.base, "sh", "-c", c.cmd)[:12]
		if r := dockerResult(t, "start", "-a", x); r.code != 0 {
			t.Fatalf("%s in %s: exit %d, %s", c.cmd, x, r.code, r.stderr)
		}
		got := ev.collect(t, 30*time.Second, time.Second, func(l string) bool {
			return strings.HasPrefix(l, "💥 exit    "+short+" ")
		})
		if want := fmt.Sprintf(c.want, short, busybox); !slices.Contains(got, want) {
			t.Fatalf("%s in %s (%s): no %q in:\n%s", c.cmd, x, short, want, strings.Join(got, "\n"))
		}
	}
}
