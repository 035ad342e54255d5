package appliance

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// suite is what TestMain prepares once for every test of the run.
var suite struct {
	repo  string // repository root
	run   string // unique id of this run, part of every name it creates
	image string // the appliance image built for this run
	base  string // the busybox image workloads run in (imported, kept cached)
	// compose is the Compose command: "docker compose" (v2) or "docker-compose" (v1).
	compose []string
	// help is the output of the image's `tetragon --help`, for features that
	// are not built yet.
	help string

	// unavailable says why no Docker engine can be used here: the tests skip,
	// or fail when mustHaveEngine (CI=true on the host).
	unavailable    string
	mustHaveEngine bool
	// setupErr is a broken setup (the image does not build, ...): every test
	// fails with it.
	setupErr error
}

// baseImage is the image ensure-dockerd.sh imports from busybox-static.
const baseImage = "tetragon-test/busybox:latest"

func TestMain(m *testing.M) {
	flag.Parse()
	var cleanup []func()
	setup(&cleanup)
	code := m.Run()
	for i := len(cleanup) - 1; i >= 0; i-- {
		cleanup[i]()
	}
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "appliance: "+format+"\n", args...)
}

func setup(cleanup *[]func()) {
	if lane := os.Getenv("TETRAGON_LANE"); lane != "" && lane != "host" {
		// Not a missing engine that CI should catch: the qemu guests never have one.
		suite.unavailable = "lane " + lane + " boots a bare kernel without a Docker engine; this suite runs on the host lane"
		return
	}
	if testing.Short() {
		suite.unavailable = "-short: the appliance suite builds an image and starts containers"
		return
	}
	suite.mustHaveEngine = os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		suite.unavailable = "needs root (it starts dockerd and loads BPF through the agent container)"
		return
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		suite.setupErr = err
		return
	}
	suite.repo = repo
	suite.run = strconv.FormatInt(time.Now().UnixNano(), 36)
	suite.base = baseImage
	start := time.Now()

	// dockerd, the base image and Compose, then the image: a cold Go build of
	// the static binaries takes minutes on a busy 2-CPU machine.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts/docker/ensure-dockerd.sh"))
	cmd.Env = append(os.Environ(), "WITH_COMPOSE=1", "TEST_IMAGE="+suite.base)
	if out, err := cmd.CombinedOutput(); err != nil {
		suite.unavailable = fmt.Sprintf("scripts/docker/ensure-dockerd.sh: %v\n%s", err, out)
		return
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		suite.compose = []string{"docker", "compose"}
	} else if exec.Command("docker-compose", "version").Run() == nil {
		suite.compose = []string{"docker-compose"}
	} else {
		suite.unavailable = "neither `docker compose` nor `docker-compose` works after ensure-dockerd.sh WITH_COMPOSE=1"
		return
	}
	logf("dockerd ready in %v; compose: %s", time.Since(start).Round(time.Millisecond), strings.Join(suite.compose, " "))

	sweepStale()

	// Pins outlive an agent container only on the host's bpffs; the compose
	// file's instructions say to mount it first. So does this suite.
	if err := ensureBPFFS(); err != nil {
		suite.setupErr = err
		return
	}

	// The appliance image, from the repository's Dockerfile, offline.
	suite.image = "tetragon-lite/tetragon:e2e-" + suite.run
	before := danglingImages()
	built := time.Now()
	cmd = exec.CommandContext(ctx, filepath.Join(repo, "scripts/docker/build-image.sh"))
	cmd.Env = append(os.Environ(), "IMAGE="+suite.image, "BASE_IMAGE="+suite.base, "TEST_IMAGE="+suite.base)
	out, err := cmd.CombinedOutput()
	// The legacy builder leaves the first stage (the binaries) as an untagged
	// image: remove those this build made, and the image itself, at the end.
	*cleanup = append(*cleanup, func() {
		for id := range danglingImages() {
			if !before[id] {
				exec.Command("docker", "image", "rm", id).Run()
			}
		}
	})
	if err != nil {
		suite.setupErr = fmt.Errorf("scripts/docker/build-image.sh: %v\n%s", err, out)
		return
	}
	*cleanup = append(*cleanup, func() {
		if out, err := exec.Command("docker", "image", "rm", suite.image).CombinedOutput(); err != nil {
			logf("removing %s: %v %s", suite.image, err, out)
		}
	})
	logf("built %s in %v", suite.image, time.Since(built).Round(time.Millisecond))

	help, err := exec.Command("docker", "run", "--rm", suite.image, "--help").CombinedOutput()
	if err != nil {
		suite.setupErr = fmt.Errorf("docker run %s --help: %v\n%s", suite.image, err, help)
		return
	}
	suite.help = string(help)
}

// danglingImages returns the ids of the untagged images.
func danglingImages() map[string]bool {
	out, _ := exec.Command("docker", "images", "-q", "--no-trunc", "--filter", "dangling=true").Output()
	ids := map[string]bool{}
	for _, id := range strings.Fields(string(out)) {
		ids[id] = true
	}
	return ids
}

// ensureBPFFS mounts bpffs on /sys/fs/bpf when the host has none there.
func ensureBPFFS() error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source super
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[4] != "/sys/fs/bpf" {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) && fields[i+1] == "bpf" {
				return nil
			}
		}
	}
	if err := syscall.Mount("bpf", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
		return fmt.Errorf("mounting bpffs on /sys/fs/bpf: %w", err)
	}
	logf("mounted bpffs on /sys/fs/bpf")
	return nil
}

// requireSuite stops the test when the suite could not be set up: a skip
// where no engine can be had (a failure under CI=true), a failure when the
// setup itself broke.
func requireSuite(t *testing.T) {
	t.Helper()
	if suite.unavailable != "" {
		if suite.mustHaveEngine {
			t.Fatalf("no usable Docker engine (CI=true): %s", suite.unavailable)
		}
		t.Skipf("no usable Docker engine: %s", suite.unavailable)
	}
	if suite.setupErr != nil {
		t.Fatalf("suite setup: %v", suite.setupErr)
	}
}

// requireAgentFlag skips the test until the agent has the flag (a feature
// being built in another issue); it starts running once the flag lands.
func requireAgentFlag(t *testing.T, flag, issue string) {
	t.Helper()
	if !strings.Contains(suite.help, flag) {
		t.Skipf("needs %s (%s): the image's `tetragon --help` does not list it yet", flag, issue)
	}
}

// staleAfter is how old a run's leftovers must be for a later run to remove
// them: far longer than a run takes, so a concurrent run keeps its own.
const staleAfter = 30 * time.Minute

// staleRun reports whether run (a run id: base-36 nanoseconds) started more
// than staleAfter ago.
func staleRun(run string) bool {
	ns, err := strconv.ParseInt(run, 36, 64)
	return err == nil && time.Since(time.Unix(0, ns)) > staleAfter
}

// sweepStale removes what an interrupted earlier run left behind (cleanups do
// not run when a test binary is killed or times out): its containers, its
// images, and its pins, which may hold a Sigkill policy.
func sweepStale() {
	out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=org.tetragon-lite.e2e",
		"--format", `{{.ID}} {{.Label "org.tetragon-lite.e2e"}}`).Output()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if id, run, ok := strings.Cut(line, " "); ok && staleRun(run) {
			logf("removing container %s of an earlier run (%s)", id, run)
			exec.Command("docker", "rm", "-f", "-v", id).Run()
		}
	}
	out, _ = exec.Command("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "tetragon-lite/tetragon").Output()
	for _, ref := range strings.Fields(string(out)) {
		if _, tag, _ := strings.Cut(ref, ":"); strings.HasPrefix(tag, "e2e-") && staleRun(strings.TrimPrefix(tag, "e2e-")) {
			logf("removing image %s of an earlier run", ref)
			exec.Command("docker", "image", "rm", ref).Run()
		}
	}
	dirs, _ := filepath.Glob("/sys/fs/bpf/appliance-tetragon-e2e-*")
	for _, dir := range dirs {
		run := strings.TrimSuffix(filepath.Base(dir), "_old")
		run = run[strings.LastIndex(run, "-")+1:]
		if staleRun(run) {
			logf("removing pins %s of an earlier run", dir)
			os.RemoveAll(dir)
		}
	}
}
