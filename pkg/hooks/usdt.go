package hooks

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
	"github.com/tetragon-lite/tetragon/pkg/usdt"
)

// KindUsdt: a spec.usdts entry, served by a uprobe at the probe's
// instruction. Call is the probe's name, Provider its provider.
const KindUsdt HookKind = "usdt"

// usdtHooks converts a policy's spec.usdts.
func (c *converter) usdtHooks(us []tp.UsdtSpec) []HookDecl {
	var decls []HookDecl
	for _, u := range us {
		d := c.hook(KindUsdt, u.Name, u.Args, u.Selectors, u.Message, u.Tags, u.Src)
		d.Path, d.Provider = u.Path, u.Provider
		decls = append(decls, d)
	}
	return decls
}

// compileUsdt compiles a usdts: hook: a uprobe at the probe's instruction,
// whose arguments are read where the probe's ELF note says they are, and
// whose semaphore (if it has one) the kernel increments while the hook is
// attached, so that the program evaluates the probe's arguments.
func compileUsdt(d HookDecl, id uint32) (sensor.KprobeSpec, hookInfo, error) {
	path := hostPath(d.Path)
	spec := sensor.KprobeSpec{ID: id, Attach: sensor.AttachUprobe, Symbol: d.Provider + ":" + d.Call, Path: path}
	info := hookInfo{decl: d, mechanism: MechUprobe}
	sites, err := usdt.Find(path, d.Provider, d.Call)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return spec, info, fmt.Errorf("USDT %s:%s: the binary %s does not exist on this system: %w", d.Provider, d.Call, d.Path, err)
		}
		return spec, info, fmt.Errorf("USDT %s:%s: %w", d.Provider, d.Call, err)
	}
	if len(sites) > 1 {
		// each site has its own argument locations: one uprobe each,
		// which one hook object does not hold
		return spec, info, fmt.Errorf("USDT %s:%s: %s has %d sites of the probe; attaching to more than one is not built", d.Provider, d.Call, d.Path, len(sites))
	}
	site := sites[0]
	spec.Offset, spec.RefCtrOffset = site.Offset, site.Semaphore
	what := fmt.Sprintf("the USDT probe %s:%s", d.Provider, d.Call)
	regs := registerSource(what)
	slot, err := compileArgs(d, &spec, &info, func(s *sensor.KprobeSpec, a ArgDecl) (sensor.Arg, error) {
		if a.Index >= len(site.Args) {
			return sensor.Arg{}, fmt.Errorf("argument index %d: %s has %d arguments (%q)", a.Index, what, len(site.Args), site.ArgSpec)
		}
		return regs(s, a)
	})
	if err != nil {
		return spec, info, err
	}
	spec.Usdt = make([]sensor.UsdtArg, spec.Params)
	for i := range spec.Usdt {
		if i < len(site.Args) {
			spec.Usdt[i] = usdtArg(site.Args[i])
		}
	}
	spec.Selectors, info.limits, err = compileSelectors(d, spec.Args, slot,
		fmt.Errorf("action Override returns from a function, and a USDT probe is inside one"))
	if err != nil {
		return spec, info, err
	}
	for si, s := range d.Selectors {
		for _, a := range s.Actions {
			if a.Action != string(tp.ActionSet) {
				continue
			}
			w, err := setWrite(site, a)
			if err != nil {
				return spec, info, fmt.Errorf("%s: selectors[%d]: action Set: %w", d.Call, si, err)
			}
			spec.Selectors[si].RegWrites = append(spec.Selectors[si].RegWrites, w)
		}
	}
	return spec, info, nil
}

func usdtArg(a usdt.Arg) sensor.UsdtArg {
	u := sensor.UsdtArg{Reg: uint8(a.Reg), Value: a.Value, Size: a.Size, Signed: a.Signed}
	switch a.Loc {
	case usdt.LocConst:
		u.Loc = sensor.UsdtConst
	case usdt.LocReg:
		u.Loc = sensor.UsdtReg
	case usdt.LocMem:
		u.Loc = sensor.UsdtMem
	}
	return u
}

// setWrite compiles a Set action: argValue goes where the probe's note
// says argument argIndex is, which must be a register.
func setWrite(site usdt.Probe, a ActionDecl) (sensor.RegWrite, error) {
	if a.ArgIndex < 0 || a.ArgIndex >= len(site.Args) {
		return sensor.RegWrite{}, fmt.Errorf("argIndex %d: the probe has %d arguments (%q)", a.ArgIndex, len(site.Args), site.ArgSpec)
	}
	arg := site.Args[a.ArgIndex]
	switch arg.Loc {
	case usdt.LocConst:
		return sensor.RegWrite{}, fmt.Errorf("argIndex %d (%s) is a constant compiled into the probe: there is nothing to write", a.ArgIndex, arg)
	case usdt.LocMem:
		// bpf_probe_write_user; kernels in lockdown (integrity) refuse
		// it, this project's hosts among them
		return sensor.RegWrite{}, fmt.Errorf("argIndex %d (%s) is in the probed process's memory: writing it (bpf_probe_write_user) is not built, only arguments in registers can be set", a.ArgIndex, arg)
	}
	return sensor.RegWrite{Reg: uint8(arg.Reg), Value: uint64(a.ArgValue)}, nil
}

// regWrites compiles a uprobe selector's Regs actions.
func regWrites(acts []ActionDecl) []sensor.RegWrite {
	var out []sensor.RegWrite
	for _, a := range acts {
		if a.Action != string(tp.ActionRegs) {
			continue
		}
		for _, r := range a.Regs {
			out = append(out, sensor.RegWrite{Reg: uint8(r.Offset), Value: r.Value})
		}
	}
	return out
}
