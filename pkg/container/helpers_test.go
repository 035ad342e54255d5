package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// logBuffer collects the JSON lines a Watcher logs, for assertions on them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

type logLine struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

func (b *logBuffer) lines(t *testing.T) []logLine {
	t.Helper()
	b.mu.Lock()
	data := append([]byte(nil), b.buf.Bytes()...)
	b.mu.Unlock()
	var out []logLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func (b *logBuffer) count(t *testing.T, level, msgPrefix string) int {
	n := 0
	for _, l := range b.lines(t) {
		if l.Level == level && strings.HasPrefix(l.Message, msgPrefix) {
			n++
		}
	}
	return n
}

func newTestWatcher(t *testing.T, opts Options) (*Watcher, *logBuffer, func() error) {
	t.Helper()
	logs := &logBuffer{}
	w := New(zerolog.New(logs).Level(zerolog.DebugLevel), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(5 * time.Second):
				t.Error("Run did not return within 5s of cancelling its context")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		_ = stop()
		_ = w.Close()
	})
	return w, logs, stop
}

// eventually polls cond every 10ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requireDockerd makes sure a Docker engine answers, starting one with the
// project's script. Without one, the test fails under CI and is skipped elsewhere.
func requireDockerd(t *testing.T) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("dockerd is unavailable (CI=true): "+format, args...)
		}
		t.Skipf("dockerd is unavailable: "+format, args...)
	}
	if os.Geteuid() != 0 {
		unavailable("starting it needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../../scripts/docker/ensure-dockerd.sh").CombinedOutput()
	if err != nil {
		unavailable("scripts/docker/ensure-dockerd.sh: %v\n%s", err, out)
	}
}

// docker runs the docker CLI and returns its trimmed standard output.
func docker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
