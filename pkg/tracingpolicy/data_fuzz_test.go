package tracingpolicy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cilium/ebpf/btf"
)

// FuzzDataEntry varies a kprobe's data: entry and a matchData filter on
// it: what the parser accepts must read back as written (a current_task
// entry with a resolve path, a filter on an existing entry with the
// entry's type), and what it refuses must be reported on a line of the
// document.
func FuzzDataEntry(f *testing.F) {
	f.Add("current_task", "uint32", "cred.euid.val", uint8(0), "NotEqual", "0")
	f.Add("current_task", "string", "comm", uint8(0), "Prefix", "sh")
	f.Add("current_task", "int", "mm.owner.pid", uint8(0), "InRange", "1:100")
	f.Add("pt_regs", "uint64", "ax", uint8(0), "Equal", "1")
	f.Add("current_task", "char_buf", "comm", uint8(1), "Equal", "x")
	f.Add("current_task", "uint32", "cred..euid", uint8(0), "Mask", "0x10")
	f.Add("", "uint32", "", uint8(3), "SPort", "80")
	f.Fuzz(func(t *testing.T, source, typ, resolve string, index uint8, operator, value string) {
		for _, s := range []string{source, typ, resolve, operator, value} {
			if !utf8.ValidString(s) {
				return // YAML text is UTF-8: no policy to parse (not a skip: nothing is left unchecked)
			}
		}
		q := strconv.Quote
		data := []byte(fmt.Sprintf("%s  kprobes:\n  - call: security_socket_connect\n    syscall: false\n    data:\n    - source: %s\n      type: %s\n      resolve: %s\n    selectors:\n    - matchData:\n      - index: %d\n        operator: %s\n        values: [%s]\n",
			header, q(source), q(typ), q(resolve), index, q(operator), q(value)))
		pols, err := Parse("f.yaml", data)
		checkParsed(t, data, pols, err)
		if err != nil {
			if errors.Is(err, ErrNotPolicy) {
				t.Fatalf("a TracingPolicy document reported as not a policy: %v", err)
			}
			return
		}
		k := pols[0].Spec.KProbes[0]
		if source != DataCurrentTask || len(k.Data) != 1 || k.Data[0].Index != 0 || k.Data[0].Resolve != resolve ||
			k.Data[0].Type != canonicalType(typ) || checkResolvePath(resolve) != "" {
			t.Fatalf("read back %+v from source %q", k.Data, source)
		}
		m := k.Selectors[0].MatchData
		op, _ := parseOperator(operator)
		if index != 0 || len(m) != 1 || m[0].Index != 0 || m[0].Operator != op || m[0].ArgType != k.Data[0].Type || m[0].Values[0] != value {
			t.Fatalf("matchData read back %+v", m)
		}
	})
}

// FuzzTaskResolve follows resolve paths from the running kernel's struct
// task_struct, as a current_task data entry does: a path the parser
// accepts either resolves, in at most MaxResolveDepth steps each reading 0,
// 1, 2, 4 or 8 bytes, or is refused with an error naming the path; never a
// panic.
func FuzzTaskResolve(f *testing.F) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		f.Skipf("kernel lacks BTF: %v", err)
	}
	task, err := NewBTFKernel(spec).CurrentTask()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"cred.euid.val", "comm", "mm.owner.real_parent.comm", "pid", "real_parent.cred.cap_effective",
		"files.fdt.fd", "nsproxy.uts_ns.name.nodename", "thread_info.flags", "se.load.weight", "signal.rlim", "cred.euid.val.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		if checkResolvePath(path) != "" {
			return
		}
		steps, final, err := ResolvePath(task, path)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(path)) {
				t.Fatalf("error %v does not name the path %q", err, path)
			}
			return
		}
		if len(steps) == 0 || len(steps) > MaxResolveDepth || final.C == "" {
			t.Fatalf("%q: steps %+v, final %+v", path, steps, final)
		}
		for _, s := range steps {
			switch s.Load {
			case 0, 1, 2, 4, 8:
			default:
				t.Fatalf("%q: step %+v loads %d bytes", path, s, s.Load)
			}
		}
	})
}
