package compiler

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// tracefsDirs are where tracefs is looked for: its own mount point, and
// the older one under debugfs.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// tpField is one field of a tracepoint's format.
type tpField struct {
	Name string
	// Type as the format spells it, without the array suffix: "int",
	// "const char *", "__data_loc char[]", "char".
	Type   string
	Array  bool // Name was written name[N]
	Offset int
	Size   int
	Signed bool
}

func (f tpField) String() string {
	if f.Array {
		return f.Type + " " + f.Name + "[]"
	}
	return f.Type + " " + f.Name
}

// readFormat reads the format of tracepoint group/event from tracefs.
// Names are checked by the policy parser (letters, digits, _), so they
// cannot leave the events directory.
func readFormat(group, event string) ([]tpField, error) {
	var errs []error
	for _, dir := range tracefsDirs {
		f, err := os.Open(filepath.Join(dir, "events", group, event, "format"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer f.Close()
		fields, err := parseFormat(f)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
		}
		return fields, nil
	}
	if err := errors.Join(errs...); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tracepoint %s/%s not found in the kernel (no %s/events/%s/%s)", group, event, tracefsDirs[0], group, event)
	}
	return nil, fmt.Errorf("tracepoint %s/%s: %w", group, event, errors.Join(errs...))
}

// parseFormat parses the field lines of a tracepoint format file:
//
//	field:const char * filename;	offset:24;	size:8;	signed:0;
func parseFormat(r interface{ Read([]byte) (int, error) }) ([]tpField, error) {
	var fields []tpField
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var f tpField
		for _, part := range strings.Split(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), ":")
			if !ok {
				continue
			}
			var err error
			switch k {
			case "field":
				i := strings.LastIndexAny(v, " \t*")
				if i < 0 {
					return nil, fmt.Errorf("field %q: no name", v)
				}
				f.Type, f.Name = strings.TrimSpace(v[:i+1]), v[i+1:]
				if b := strings.IndexByte(f.Name, '['); b >= 0 {
					f.Name, f.Array = f.Name[:b], true
				}
			case "offset":
				f.Offset, err = strconv.Atoi(v)
			case "size":
				f.Size, err = strconv.Atoi(v)
			case "signed":
				f.Signed = v == "1"
			}
			if err != nil {
				return nil, fmt.Errorf("field line %q: %s: %w", line, k, err)
			}
		}
		fields = append(fields, f)
	}
	return fields, sc.Err()
}

// compileTracepoint compiles a tracepoints: hook. A perf tracepoint's
// arguments index its format fields, the common_* ones included (so the
// first field of a syscall tracepoint is index 4, __syscall_nr); with raw:
// true they index the tracepoint's TP_PROTO arguments, read as a kernel
// function's parameters.
func compileTracepoint(d Decl, id uint32, k *tracingpolicy.BTFKernel) (sensor.ProgHookSpec, hookInfo, error) {
	spec := sensor.ProgHookSpec{ID: id, Attach: sensor.AttachTracepoint, Group: d.Subsystem, Symbol: d.Call}
	info := newInfo(d, MechTracepoint)
	name := d.Subsystem + "/" + d.Call
	var source argSource
	if d.Raw {
		// a raw tracepoint is named by its event alone
		spec.Attach, info.event.Mechanism = sensor.AttachRawTracepoint, MechRawTracepoint
		proto, err := k.RawTracepoint(d.Call)
		if err != nil {
			return spec, info, fmt.Errorf("raw tracepoint %s: %w", d.Call, err)
		}
		source = rawSyscall64Source(proto, protoSource(proto))
	} else {
		fields, err := readFormat(d.Subsystem, d.Call)
		if err != nil {
			return spec, info, err
		}
		source = fieldSource(fields)
	}
	// errors name the tracepoint as group/event
	d.Call = name
	slot, err := compileArgs(d, &spec, &info, source)
	if err != nil {
		return spec, info, err
	}
	spec.Selectors, info.event.Limits, err = compileSelectors(d, spec.Args, slot,
		fmt.Errorf("action Override is not possible on tracepoints"))
	return spec, info, err
}

// fieldSource reads declared arguments from a tracepoint's format fields;
// each one takes the next parameter slot.
func fieldSource(fields []tpField) argSource {
	return func(spec *sensor.ProgHookSpec, a tracingpolicy.ArgSpec) (sensor.Arg, error) {
		if int(a.Index) >= len(fields) {
			return sensor.Arg{}, fmt.Errorf("argument index %d: the tracepoint has %d fields (%s)", a.Index, len(fields), describeFields(fields))
		}
		f := fields[a.Index]
		if f.Offset < 0 || f.Offset > 0xffff || f.Size <= 0 {
			return sensor.Arg{}, fmt.Errorf("argument %d: field %s has offset %d and size %d", a.Index, f, f.Offset, f.Size)
		}
		reg := uint8(len(spec.Fields))
		if int(reg) >= sensor.MaxParams {
			return sensor.Arg{}, fmt.Errorf("at most %d fields can be read", sensor.MaxParams)
		}
		loc := sensor.TracepointField{Offset: uint16(f.Offset), Size: uint8(min(f.Size, 8)), Read: sensor.FieldValue}
		t := a.Type
		charData := strings.HasPrefix(f.Type, "__data_loc char") || f.Array && strings.HasSuffix(f.Type, "char")
		var arg sensor.Arg
		switch {
		case (a.Type.PlainInt() || t == tracingpolicy.TypeFd) && !f.Array && !strings.HasPrefix(f.Type, "__data_loc") && f.Size <= 8:
			arg = intSource(tracingpolicy.ArgSpec{Index: uint32(reg), Type: a.Type})
			// a field narrower than the declared type is extended as the
			// field's own signedness says
			if f.Size < t.Size() || arg.Size == 0 && f.Size < 8 {
				arg.Size, arg.Signed = uint8(f.Size), f.Signed
			}
		case t == tracingpolicy.TypeSyscall64 && !f.Array && !strings.HasPrefix(f.Type, "__data_loc") && f.Size <= 8 && !strings.Contains(f.Type, "*"):
			arg = syscall64Arg(reg)
		case t == tracingpolicy.TypeString || t == tracingpolicy.TypeCharBuf || t == tracingpolicy.TypeFilename:
			switch {
			case strings.HasPrefix(f.Type, "__data_loc char"):
				loc.Read = sensor.FieldDataLoc
			case charData:
				loc.Read = sensor.FieldAddr
			case strings.HasSuffix(f.Type, "char *") && !f.Array:
			default:
				return sensor.Arg{}, fmt.Errorf("argument %d: type %s needs a char *, char[] or __data_loc char[] field, and field %d is %s", a.Index, a.Type, a.Index, f)
			}
			// kernel or user memory: a syscall tracepoint's char * is the
			// caller's
			arg = sensor.Arg{Source: sensor.SrcRegStr, Reg: reg, Kind: sensor.KindPath}
		case t == tracingpolicy.TypeSockaddr && f.Type == "struct sockaddr *" && !f.Array:
			// syscalls/sys_enter_connect's uservaddr: the caller's memory
			arg = sensor.Arg{Source: sensor.SrcRegSockaddr, Reg: reg, Kind: sensor.KindPath}
		default:
			return sensor.Arg{}, fmt.Errorf("argument %d: type %s cannot be read from field %s (tracepoint fields read: integer types, fd and syscall64 from integer fields, string from char *, char[] and __data_loc char[] fields, sockaddr from struct sockaddr * fields)", a.Index, a.Type, f)
		}
		spec.Fields = append(spec.Fields, loc)
		return arg, nil
	}
}

func describeFields(fields []tpField) string {
	var s []string
	for i, f := range fields {
		s = append(s, fmt.Sprintf("%d: %s", i, f))
	}
	return strings.Join(s, ", ")
}

// syscall64Arg reads parameter slot reg as a system call number, marked
// when the call is a 32-bit one (see sensor.Syscall64Compat).
func syscall64Arg(reg uint8) sensor.Arg {
	return sensor.Arg{Source: sensor.SrcRegSyscall64, Reg: reg, Kind: sensor.KindInt}
}

// rawSyscall64Source serves syscall64 on a raw tracepoint's integer
// parameter (raw_syscalls' long id) and leaves the other types to next.
func rawSyscall64Source(proto tracingpolicy.FuncProto, next argSource) argSource {
	return func(spec *sensor.ProgHookSpec, a tracingpolicy.ArgSpec) (sensor.Arg, error) {
		if a.Type != tracingpolicy.TypeSyscall64 {
			return next(spec, a)
		}
		if int(a.Index) >= len(proto.Params) || a.Index >= sensor.MaxParams {
			return sensor.Arg{}, fmt.Errorf("argument index %d: the tracepoint has %d parameters (at most %d can be read)", a.Index, len(proto.Params), sensor.MaxParams)
		}
		if param := proto.Params[a.Index]; param.Type.Kind != tracingpolicy.CInt {
			return sensor.Arg{}, fmt.Errorf("argument %d: type syscall64 needs an integer parameter, and parameter %d is %s", a.Index, a.Index, param.Type)
		}
		return syscall64Arg(uint8(a.Index)), nil
	}
}
