package compiler

import "github.com/cilium/ebpf/btf"

// runningKernel is the running kernel as a caller gives it to the
// compiler: its BTF, which /sys/kernel/btf/vmlinux lets any user read.
func runningKernel() Facts {
	spec, err := btf.LoadKernelSpec()
	return Facts{Kernel: spec, KernelErr: err}
}
