package hookevent

import (
	"bufio"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// stackProbe is a function whose address the symbolizer must name.
//
//go:noinline
func stackProbe() uintptr {
	pc, _, _, _ := runtime.Caller(0)
	return pc
}

// The symbolizer on this process's own code (its ELF symbols, through
// /proc/self's mappings) and on a kernel text symbol from /proc/kallsyms.
func TestSymbolizer(t *testing.T) {
	s := newSymbolizer()
	pc := uint64(stackProbe())
	fn := runtime.FuncForPC(uintptr(pc))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	got := s.user(uint32(os.Getpid()), []uint64{pc, 1})
	want := fn.Name()
	if got[0].GetSymbol() != want || got[0].GetOffset() != pc-uint64(fn.Entry()) || got[0].GetModule() != exe || got[0].GetAddress() != pc {
		t.Errorf("user frame %+v, want symbol %s offset %d module %s", got[0], want, pc-uint64(fn.Entry()), exe)
	}
	if got[1].GetSymbol() != "" || got[1].GetModule() != "" || got[1].GetAddress() != 1 {
		t.Errorf("unmapped address: %+v, want the address alone", got[1])
	}
	// a process that is gone: addresses only
	if got := s.user(0, []uint64{pc}); got[0].GetSymbol() != "" || got[0].GetAddress() != pc {
		t.Errorf("no process: %+v", got[0])
	}
	// a function symbol's address in reflect terms agrees
	if p := uint64(reflect.ValueOf(TestSymbolizer).Pointer()); s.user(uint32(os.Getpid()), []uint64{p})[0].GetSymbol() != runtime.FuncForPC(uintptr(p)).Name() {
		t.Errorf("TestSymbolizer's entry not named")
	}

	testutil.RequireRoot(t) // kallsyms shows addresses to root only
	name, addr := firstKernelText(t)
	k := s.kernel([]uint64{addr, addr + 3})
	if k[0].GetSymbol() != name || k[0].GetOffset() != 0 || k[1].GetSymbol() != name && k[1].GetOffset() != 3 {
		t.Errorf("kernel frames %+v, want %s+0 and a symbol at +3", k, name)
	}
	if k[1].GetOffset() > 3 || k[1].GetAddress() != addr+3 {
		t.Errorf("kernel frame %+v", k[1])
	}
}

// firstKernelText returns a global text symbol of the running kernel.
func firstKernelText(t *testing.T) (string, uint64) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Skipf("no /proc/kallsyms: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[1] == "T" && fields[2] == "vfs_read" {
			a, _ := strconv.ParseUint(fields[0], 16, 64)
			if a == 0 {
				t.Fatal("kallsyms hides addresses from root")
			}
			return fields[2], a
		}
	}
	t.Fatal("vfs_read not in /proc/kallsyms")
	return "", 0
}

// FuzzStackInputs: the parsers of what stack symbolisation and the skb
// argument read never panic, and a parsed mapping is a file's address
// range.
func FuzzStackInputs(f *testing.F) {
	f.Add("00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n")
	f.Add("55d0-55e0 r--p 0000 fe:00 12 /a b c\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range parseMaps(s) {
			if !strings.HasPrefix(m.path, "/") {
				t.Fatalf("%q: mapping of %q", s, m.path)
			}
		}
		skb := skbArg([]byte(s))
		if len(s) < 64 && (skb.GetLen() != 0 || skb.GetFamily() != "") {
			t.Fatalf("%q: short skb data decoded as %v", s, skb)
		}
		sockArg([]byte(s))
	})
}
