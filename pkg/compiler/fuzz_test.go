package compiler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// FuzzCompile runs what a policy file goes through before anything
// reaches the kernel: parsing, conversion to hooks (FromPolicy) and the
// compilation of arguments and selectors into the tables the BPF programs
// read, for the syscall-tracepoint mapping and for uprobes, which need no
// kernel to compile. None of it may panic or hang, whatever the file says;
// a compiled hook must stay within the limits the BPF objects assume.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob("../../policies/*.yaml")
	examples, _ := filepath.Glob("../../policies/examples/*.yaml")
	for _, name := range append(files, examples...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: f
spec:
  uprobes:
  - path: /bin/sh
    symbols: [main]
    args: [{index: 0, type: int}, {index: 1, type: string}]
    selectors:
    - matchArgs: [{index: 1, operator: Postfix, values: [sh]}]
      matchBinaries: [{operator: NotIn, values: [/bin/sh], followChildren: true}]
      matchPIDs: [{operator: In, values: [1], followForks: true, isNamespacePID: true}]
      matchCapabilities: [{type: Effective, operator: In, values: [CAP_SYS_ADMIN]}]
      matchActions: [{action: Sigkill}]
`))
	f.Add([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: f
spec:
  lists:
  - {name: dups, type: syscalls, values: [sys_dup, sys_dup2]}
  kprobes:
  - call: sys_close
    syscall: true
    args: [{index: 0, type: int}]
    selectors:
    - matchArgs: [{index: 0, operator: InMap, values: ["list:dups", "3", "10:20"]}]
    - matchArgs: [{index: 0, operator: NotInMap, values: ["0:2"]}]
`))
	f.Add([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: f
spec:
  lists:
  - {name: io, type: syscalls, values: [sys_openat, sys_read, sys_close]}
  - {name: fns, values: [fd_install, security_file_open]}
  selectorsMacros:
    cat: {matchBinaries: [{operator: In, values: [/usr/bin/cat]}]}
  kprobes:
  - call: "list:io"
    args: [{index: 0, type: fd}, {index: 2, type: size_t}]
    selectors:
    - macros: [cat]
      matchArgs: [{index: 0, operator: Prefix, values: [/etc/]}]
      matchActions: [{action: Sigkill, argError: -1}]
  - call: "list:fns"
    args: [{index: 1, type: file}]
`))
	// the socket operators, on a mapped syscall's sockaddr
	f.Add([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: f
spec:
  kprobes:
  - call: sys_connect
    args: [{index: 0, type: int}, {index: 1, type: sockaddr}]
    selectors:
    - matchArgs: [{index: 1, operator: NotSAddr, values: ["127.0.0.1/8", "::1", "fd00::/8"]}, {index: 1, operator: SPort, values: ["80", "1000:2000"]}, {index: 1, operator: Family, values: [AF_INET, "10"]}]
    - matchArgs: [{index: 1, operator: SAddr, values: ["10.0.0.0/8"]}, {index: 1, operator: NotSPort, values: ["22"]}]
      matchActions: [{action: Sigkill}]
`))
	// the range, substring and file-type operators, on fd_install's
	// mapping
	f.Add([]byte(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: f
spec:
  kprobes:
  - call: fd_install
    args: [{index: 0, type: int}, {index: 1, type: file}]
    selectors:
    - matchArgs: [{index: 0, operator: InRange, values: ["3:10", "-1:0x20"]}, {index: 1, operator: SubStringIgnCase, values: [Shadow, passwd]}, {index: 1, operator: NotFileType, values: [dir, pipe]}]
    - matchArgs: [{index: 0, operator: NotInRange, values: ["0:2"]}, {index: 1, operator: SubString, values: [/.ssh/]}, {index: 1, operator: FileType, values: [reg]}]
      matchActions: [{action: Sigkill}]
`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pols, err := tp.Parse("f.yaml", data)
		if err != nil {
			return
		}
		for _, p := range pols {
			decls, err := FromPolicy(p, false)
			if err != nil {
				continue
			}
			// lists as the mapping serves them; generated lists need the
			// kernel, and are left out
			var plain []Decl
			for _, d := range decls {
				if !tp.ListType(d.List.Type).Generated() {
					plain = append(plain, d)
				}
			}
			if decls, err = ExpandLists(plain, Facts{}); err != nil {
				continue
			}
			for i, d := range decls {
				var args, sels, params int
				switch d.Kind {
				case hookevent.KindUprobe:
					spec, _, err := compileUprobe(d, uint32(i))
					if err != nil {
						continue
					}
					args, sels, params = len(spec.Args), len(spec.Selectors), spec.Params
				case hookevent.KindKprobe, "":
					spec, _, err := compileSyscallMapping(d, uint32(i), "fuzzing")
					if err != nil {
						continue
					}
					args, sels = len(spec.Args), len(spec.Selectors)
				default:
					continue
				}
				if args > 5 || sels > 5 || params > 6 {
					t.Fatalf("hook %s compiled to %d arguments, %d selectors, %d parameters", d.Call, args, sels, params)
				}
			}
		}
	})
}
