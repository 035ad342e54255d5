package compiler

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/tetragon-lite/tetragon/pkg/hookevent"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
	"github.com/tetragon-lite/tetragon/pkg/usdt"
)

// usdtHooks converts a policy's spec.usdts.
func (c *converter) usdtHooks(us []tp.UsdtSpec) []Decl {
	var decls []Decl
	for _, u := range us {
		d := c.hook(hookevent.KindUsdt, u.Name, u.Args, u.Selectors, u.Message, u.Tags, u.Src)
		d.Path, d.Provider = u.Path, u.Provider
		decls = append(decls, d)
	}
	return decls
}

// compileUsdt compiles a usdts: hook: a uprobe at each site of the probe
// (a probe used in several places, or inlined, has a note per site),
// whose arguments are read where that site's note says they are, and
// whose semaphore (if it has one) the kernel increments while the hook is
// attached, so that the program evaluates the probe's arguments.
func compileUsdt(d Decl, id uint32) ([]sensor.ProgHookSpec, hookInfo, error) {
	path := hostPath(d.Path)
	info := newInfo(d, MechUprobe)
	sites, err := usdt.Find(path, d.Provider, d.Call)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, info, fmt.Errorf("USDT %s:%s: the binary %s does not exist on this system: %w", d.Provider, d.Call, d.Path, err)
		}
		return nil, info, fmt.Errorf("USDT %s:%s: %w", d.Provider, d.Call, err)
	}
	var specs []sensor.ProgHookSpec
	for i, site := range sites {
		// the sites' arguments have the same types: the info (record
		// slots, rate limits) of any site serves them all
		spec, si, err := compileSite(d, id, path, site)
		if err != nil {
			if len(sites) > 1 {
				err = fmt.Errorf("site %d of %d (file offset %#x): %w", i+1, len(sites), site.Offset, err)
			}
			return nil, info, err
		}
		specs = append(specs, spec)
		info = si
	}
	return specs, info, nil
}

// compileSite compiles a usdts: hook at one site of the probe.
func compileSite(d Decl, id uint32, path string, site usdt.Probe) (sensor.ProgHookSpec, hookInfo, error) {
	spec := sensor.ProgHookSpec{ID: id, Attach: sensor.AttachUprobe, Symbol: d.Provider + ":" + d.Call, Path: path,
		Offset: site.Offset, RefCtrOffset: site.Semaphore}
	info := newInfo(d, MechUprobe)
	what := fmt.Sprintf("the USDT probe %s:%s", d.Provider, d.Call)
	regs := registerSource(what)
	slot, err := compileArgs(d, &spec, &info, func(s *sensor.ProgHookSpec, a tp.ArgSpec) (sensor.Arg, error) {
		if int(a.Index) >= len(site.Args) {
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
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot,
		fmt.Errorf("action Override returns from a function, and a USDT probe is inside one"))
	if err != nil {
		return spec, info, err
	}
	for si, s := range d.Selectors {
		for _, a := range s.MatchActions {
			if a.Action != tp.ActionSet {
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
func setWrite(site usdt.Probe, a tp.ActionSelector) (sensor.RegWrite, error) {
	if int(a.ArgIndex) >= len(site.Args) {
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
func regWrites(acts []tp.ActionSelector) []sensor.RegWrite {
	var out []sensor.RegWrite
	for _, a := range acts {
		if a.Action != tp.ActionRegs {
			continue
		}
		for _, r := range a.ArgRegs {
			out = append(out, sensor.RegWrite{Reg: uint8(r.Offset), Value: r.Value})
		}
	}
	return out
}
