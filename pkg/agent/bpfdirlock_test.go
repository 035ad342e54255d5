package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/kernelfs"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestBPFDirLock: on bpffs itself, one holder at a time; the refusal names
// the holder's pid; released, the directory is gone and free again. (flock
// is per open file, so a second open in this process is a second agent.)
func TestBPFDirLock(t *testing.T) {
	testutil.RequireRoot(t)
	if _, err := kernelfs.BPF().Ensure(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(kernelfs.BPF().Path, fmt.Sprintf("tetragon-test-lock-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.RemoveAll(root + "_lock") })
	first, err := lockBPFDir(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockBPFDir(root)
	want := fmt.Sprintf("another tetragon (pid %d) is using --bpf-dir %s (it holds %s_lock)", os.Getpid(), root, root)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second lock: %v, want %q", err, want)
	}
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "_lock"); !os.IsNotExist(err) {
		t.Fatalf("lock directory left after release: %v", err)
	}
	again, err := lockBPFDir(root)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := again.release(); err != nil {
		t.Fatal(err)
	}
}

// TestStartFailsOnBrokenTracingPolicy: Start gives the located error and
// leaves nothing behind: no socket, pins or lock, nothing running on what
// it closed; the same directory then starts.
func TestStartFailsOnBrokenTracingPolicy(t *testing.T) {
	testutil.RequireRoot(t)
	cfg := testConfig(t)
	cfg.TracingPolicy = filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(cfg.TracingPolicy, []byte("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: broken\nspec:\n  kprobes:\n  - call: fd_install\n    syscall: false\n    args:\n    - index: 0\n      type: nosuchtype\n"), 0o644)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	_, err := Start(context.Background(), cfg, log)
	if err == nil || !strings.Contains(err.Error(), "--tracing-policy "+cfg.TracingPolicy+" does not load:\nbroken.yaml:11:13:") {
		t.Fatalf("start: %v", err)
	}
	for _, p := range []string{cfg.ServerAddress, "/sys/fs/bpf/" + cfg.BPFDir, "/sys/fs/bpf/" + cfg.BPFDir + "_lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after a failed start: %v", p, err)
		}
	}
	cfg.TracingPolicy = ""
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start after the failed one: %v", err)
	}
	cancel()
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
}
