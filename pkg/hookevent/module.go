package hookevent

import (
	"encoding/binary"
	"math/bits"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
)

// moduleDataSize is struct module_data's size (bpf/hook.c): taints (8
// bytes), sig_ok, has_sig, 6 bytes of padding, the name (56 bytes).
const moduleDataSize = 72

// moduleArg decodes struct module_data into Tetragon's KernelModule: the
// taint bits the API names (TaintedBitsType's values are the bits
// themselves), and signature_ok only where the kernel has the field
// (CONFIG_MODULE_SIG).
func moduleArg(b []byte) *api.KernelModule {
	if len(b) < moduleDataSize {
		return &api.KernelModule{}
	}
	m := &api.KernelModule{Name: escape.String(cString(b[16:moduleDataSize]))}
	if b[9] != 0 {
		m.SignatureOk = wrapperspb.Bool(b[8] != 0)
	}
	for taints := binary.LittleEndian.Uint64(b); taints != 0; taints &= taints - 1 {
		bit := api.TaintedBitsType(uint64(1) << bits.TrailingZeros64(taints))
		if _, named := api.TaintedBitsType_name[int32(bit)]; named {
			m.Tainted = append(m.Tainted, bit)
		}
	}
	return m
}

// int32ListArg decodes the int32s the kernel copied (little-endian, as
// x86_64 keeps them); a fault left none.
func int32ListArg(b []byte) *api.KprobeArgument {
	vals := make([]int32, 0, len(b)/4)
	for ; len(b) >= 4; b = b[4:] {
		vals = append(vals, int32(binary.LittleEndian.Uint32(b)))
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_Int32ListArg{Int32ListArg: &api.KprobeInt32List{Values: vals}}}
}
