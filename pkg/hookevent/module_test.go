package hookevent

import (
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// struct module_data (bpf/hook.c) decodes into Tetragon's KernelModule:
// the named taint bits only, signature_ok only where the kernel has it.
func TestModuleArg(t *testing.T) {
	data := func(taints uint64, sigOK, hasSig byte, name string) []byte {
		b := make([]byte, moduleDataSize)
		binary.LittleEndian.PutUint64(b, taints)
		b[8], b[9] = sigOK, hasSig
		copy(b[16:], name)
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want *api.KernelModule
	}{
		{"unsigned out of tree", data(1<<12|1<<13, 0, 1, "hello"), &api.KernelModule{Name: "hello", SignatureOk: wrapperspb.Bool(false),
			Tainted: []api.TaintedBitsType{api.TaintedBitsType_TAINT_OUT_OF_TREE_MODULE, api.TaintedBitsType_TAINT_UNSIGNED_MODULE}}},
		// bit 9 (TAINT_WARN) is the kernel's, not a module's: not named
		{"signed, no CONFIG_MODULE_SIG field", data(1<<9|1, 1, 0, "crc7"), &api.KernelModule{Name: "crc7",
			Tainted: []api.TaintedBitsType{api.TaintedBitsType_TAINT_PROPRIETARY_MODULE}}},
		{"signed", data(0, 1, 1, "x"), &api.KernelModule{Name: "x", SignatureOk: wrapperspb.Bool(true)}},
		{"short record", []byte{1, 2}, &api.KernelModule{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := moduleArg(tc.b); !proto.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
