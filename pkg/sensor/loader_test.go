package sensor

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestLoaderLoads: the loader sensor's program passes the verifier and its
// perf events open (with build ids) on every kernel here; where kprobes
// attach it attaches and counts, elsewhere only the attach step fails,
// naming the function. (Its records: pkg/hooks TestLoaderEvents.)
func TestLoaderLoads(t *testing.T) {
	features := testutil.Kernel(t).Map()
	ring, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	l, err := LoadLoader(ring, Options{Features: features})
	if !features[kernelfeatures.Kprobe] {
		if err == nil {
			l.Close()
			t.Fatal("the loader sensor attached on a kernel whose probe finds no kprobes")
		}
		if !strings.Contains(err.Error(), "loader sensor: attaching kprobe to perf_event_mmap_output") {
			t.Fatalf("failed before the attach step: %v", err)
		}
		t.Logf("loaded, refused at attach as expected here: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(l.perf) == 0 {
		t.Error("no perf event opened")
	}
	st, err := l.Stats()
	if err != nil || st.MemoryBytes == 0 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
