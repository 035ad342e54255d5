package sensor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tetragon-lite/tetragon/bpf"
)

// USDT argument locations (bpf/lib/usdt.h).
const (
	UsdtConst uint8 = 1 // the value is Value
	UsdtReg   uint8 = 2 // in the register at pt_regs offset Reg
	UsdtMem   uint8 = 3 // in user memory at register Reg plus Value
)

// UsdtArg says where a USDT probe's argument is when the probe fires
// (pkg/usdt parses the probe's note); Size (1, 2, 4, 8) and Signed are
// the value's width and signedness.
type UsdtArg struct {
	Loc    uint8
	Reg    uint8
	Value  int64
	Size   uint8
	Signed bool
}

// MaxRegWrites is how many registers one selector can write (Set, Regs).
const MaxRegWrites = 4 // bpf/lib/usdt.h's MAX_REG_WRITES (TestLimitsMatchC)

// RegWrite is a register a selector writes when it matches: Reg is its
// offset in the kernel's struct pt_regs.
type RegWrite struct {
	Reg   uint8
	Value uint64
}

// ErrNoCtxWrites is returned where the kernel does not let uprobe programs
// write the probed thread's registers, which Set, Regs and Override on
// uprobes do.
var ErrNoCtxWrites = errors.New("writing the probed thread's registers (actions Set, Regs, and Override on uprobes) needs a kernel that lets uprobe programs write their context, struct pt_regs; this kernel's verifier refuses it (invalid bpf_context access)")

// ProbeCtxWrites tries to load a kprobe-type program (what uprobes run)
// that writes its context; it returns ErrNoCtxWrites where the verifier
// refuses, and the load error if the probe fails otherwise.
func ProbeCtxWrites() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Kprobe, License: "GPL", Instructions: asm.Instructions{
		asm.Mov.Imm(asm.R2, 0),
		asm.StoreMem(asm.R1, 80, asm.R2, asm.DWord), // ax
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	}})
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ve) && ctxWriteRefused(ve):
		return ErrNoCtxWrites
	case err != nil:
		return fmt.Errorf("probing uprobe context writes: %w", err)
	}
	return p.Close()
}

// setUsdt fills the USDT and register-write part of the hook's load-time
// configuration for spec.
func setUsdt(cfg *bpf.HookHookCfg, spec ProgHookSpec) error {
	u := &cfg.Usdt
	if len(spec.Usdt) > MaxParams {
		return fmt.Errorf("USDT hook reads %d arguments, at most %d", len(spec.Usdt), MaxParams)
	}
	for i, a := range spec.Usdt {
		switch a.Loc {
		case 0:
			continue // a slot the hook does not read
		case UsdtConst, UsdtReg, UsdtMem:
		default:
			return fmt.Errorf("USDT argument %d: unknown location %d", i, a.Loc)
		}
		switch a.Size {
		case 1, 2, 4, 8:
		default:
			return fmt.Errorf("USDT argument %d: size %d", i, a.Size)
		}
		if a.Reg%8 != 0 || a.Reg > 160 {
			return fmt.Errorf("USDT argument %d: register offset %d is no pt_regs register", i, a.Reg)
		}
		u.Loc[i], u.Reg[i], u.Val[i], u.Size[i], u.Sign[i] = a.Loc, a.Reg, a.Value, a.Size, boolByte(a.Signed)
	}
	u.On = len(spec.Usdt) > 0
	for i, sel := range spec.Selectors {
		if len(sel.RegWrites) > MaxRegWrites {
			return fmt.Errorf("selector %d writes %d registers, at most %d", i, len(sel.RegWrites), MaxRegWrites)
		}
		if i >= MaxSelectors {
			break
		}
		u.SelNwrites[i] = uint8(len(sel.RegWrites))
		for j, w := range sel.RegWrites {
			if w.Reg%8 != 0 || w.Reg > 160 {
				return fmt.Errorf("selector %d: register offset %d is no pt_regs register", i, w.Reg)
			}
			u.SelWreg[i][j], u.SelWval[i][j] = w.Reg, w.Value
		}
		if spec.Attach == AttachUprobe && sel.Actions&ActOverride != 0 && sel.Error == 0 {
			// the program tells an Override selector by its error
			return fmt.Errorf("selector %d: Override on a uprobe needs a non-zero argError", i)
		}
		u.CtxWrites = u.CtxWrites || len(sel.RegWrites) > 0 || spec.Attach == AttachUprobe && sel.Actions&ActOverride != 0
	}
	if u.CtxWrites && spec.Attach != AttachUprobe {
		return errors.New("only uprobe hooks can write registers")
	}
	if u.CtxWrites {
		// the refusal named, rather than the object's verifier log
		if err := ProbeCtxWrites(); err != nil {
			return err
		}
	}
	return nil
}

// ctxWriteRefused reports a verifier refusing the program's writes to its
// context, which kernels before uprobe context writes (6.18) do.
func ctxWriteRefused(ve *ebpf.VerifierError) bool {
	for _, l := range ve.Log {
		if strings.Contains(l, "invalid bpf_context access") {
			return true
		}
	}
	return false
}
