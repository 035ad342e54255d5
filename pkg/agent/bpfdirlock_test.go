package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
