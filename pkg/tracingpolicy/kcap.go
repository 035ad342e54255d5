package tracingpolicy

import (
	"fmt"
	"strings"
)

// Tetragon's capability-set argument types: a const kernel_cap_t * read as
// the 64-bit set it points to, reported as 16 hex digits in
// kernel_cap_t_arg (or cap_inheritable_arg, cap_permitted_arg,
// cap_effective_arg: the same read, another field). Matched as an unsigned
// 64-bit integer, and with CapabilityMask by capability names.
const (
	TypeKernelCapT     ArgType = "kernel_cap_t"
	TypeCapInheritable ArgType = "cap_inheritable"
	TypeCapPermitted   ArgType = "cap_permitted"
	TypeCapEffective   ArgType = "cap_effective"
)

// OpCapabilityMask holds when the set has one of the named capabilities
// (values: CAP_SYS_ADMIN, ...): the Mask test with each name's bit.
const OpCapabilityMask Operator = "CapabilityMask"

// CapSet reports whether t is one of the capability-set types.
func (t ArgType) CapSet() bool {
	switch t {
	case TypeKernelCapT, TypeCapInheritable, TypeCapPermitted, TypeCapEffective:
		return true
	}
	return false
}

// capSetFits reports whether a kernel parameter is a kernel_cap_t
// pointer: 6.1 names the struct (struct kernel_cap_struct), 6.3 and later
// leave it anonymous behind the typedef.
func capSetFits(c CType) (bool, string) {
	return c.Kind == CPointer && (c.Pointee == "struct kernel_cap_struct" || strings.Contains(c.C, "kernel_cap_t")), "kernel_cap_t *"
}

// capabilityMaskValues parses CapabilityMask values, capability names, to
// their bits.
func capabilityMaskValues(values []string) ([]int64, []error) {
	var bits []int64
	var errs []error
	for _, v := range values {
		n, ok := capabilityNumber(strings.TrimSpace(v))
		if !ok {
			errs = append(errs, fmt.Errorf("%q is not a capability name (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)", truncate(v)))
			bits = append(bits, 0)
			continue
		}
		bits = append(bits, int64(1)<<n)
		errs = append(errs, nil)
	}
	return bits, errs
}
