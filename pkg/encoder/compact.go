package encoder

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/mattn/go-isatty"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// ColorMode says when the compact encoder colors its output.
type ColorMode string

const (
	// ColorAuto colors only when the writer is a terminal.
	ColorAuto ColorMode = "auto"
	// ColorAlways colors even into pipes and files (e.g. for `less -R`).
	ColorAlways ColorMode = "always"
	// ColorNever writes no escape codes.
	ColorNever ColorMode = "never"
)

// ParseColorMode accepts auto, always and never.
func ParseColorMode(s string) (ColorMode, error) {
	switch m := ColorMode(strings.ToLower(s)); m {
	case ColorAuto, ColorAlways, ColorNever:
		return m, nil
	}
	return "", fmt.Errorf("invalid color mode %q: want auto, always or never", s)
}

// CompactOptions configure NewCompact.
type CompactOptions struct {
	Color ColorMode
	// Timestamps prefixes each line with the event time (RFC 3339, ms, UTC).
	Timestamps bool
}

// ANSI SGR sequences.
const (
	red     = "\x1b[31m"
	blue    = "\x1b[34m"
	magenta = "\x1b[35m"
	cyan    = "\x1b[36m"
	reset   = "\x1b[0m"
)

// labelWidth is the width of the longest label word, "process": labels are
// padded to it so that sources line up.
const labelWidth = 7

// timeLayout is RFC 3339 with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Compact writes one emoji line per event.
type Compact struct {
	w          io.Writer
	color      bool
	timestamps bool
	buf        strings.Builder
}

// NewCompact returns a compact encoder writing to w. With ColorAuto it
// colors when w is an *os.File on a terminal. It is not safe for concurrent
// use.
func NewCompact(w io.Writer, opts CompactOptions) *Compact {
	color := false
	switch opts.Color {
	case ColorAlways:
		color = true
	case ColorAuto:
		if f, ok := w.(*os.File); ok {
			color = isatty.IsTerminal(f.Fd())
		}
	}
	return &Compact{w: w, color: color, timestamps: opts.Timestamps}
}

// Encode writes ev as one line. Kinds this encoder has no case for get a
// generic line naming the kind; it never fails on an event's content.
func (c *Compact) Encode(ev *api.GetEventsResponse) error {
	c.buf.Reset()
	if c.timestamps {
		if t := ev.GetTime(); t != nil {
			c.buf.WriteString(t.AsTime().UTC().Format(timeLayout))
		} else {
			// Keeps the columns of lines with and without a time aligned.
			fmt.Fprintf(&c.buf, "%-*s", len("2006-01-02T15:04:05.000Z"), "-")
		}
		c.buf.WriteByte(' ')
	}
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		p := e.ProcessExec.GetProcess()
		c.line("🚀", "process", ev.GetNodeName(), p)
	case *api.GetEventsResponse_ProcessExit:
		x := e.ProcessExit
		c.line("💥", "exit", ev.GetNodeName(), x.GetProcess())
		status, paint := strconv.FormatUint(uint64(x.GetStatus()), 10), ""
		if x.GetSignal() != "" {
			status = x.GetSignal()
		}
		if x.GetSignal() != "" || x.GetStatus() != 0 {
			paint = red
		}
		c.part(paint, status)
	case *api.GetEventsResponse_ProcessKprobe:
		c.kprobe(ev.GetNodeName(), e.ProcessKprobe)
	case *api.GetEventsResponse_ProcessTracepoint:
		t := e.ProcessTracepoint
		c.head("⁉️", "tracepoint", ev.GetNodeName(), t.GetProcess())
		c.part(cyan, joinSet(t.GetSubsys(), t.GetEvent()))
	case *api.GetEventsResponse_ProcessUprobe:
		u := e.ProcessUprobe
		c.head("🕵️", "uprobe", ev.GetNodeName(), u.GetProcess())
		c.part(cyan, joinSet(u.GetPath(), u.GetSymbol()))
	case *api.GetEventsResponse_ProcessUsdt:
		u := e.ProcessUsdt
		c.head("🕵️", "usdt", ev.GetNodeName(), u.GetProcess())
		c.part(cyan, joinSet(u.GetPath(), u.GetProvider(), u.GetName()))
	case *api.GetEventsResponse_ProcessLoader:
		// as Tetragon: the build id in hex (when there is one), then the
		// file
		l := e.ProcessLoader
		c.head("🧬", "loader", ev.GetNodeName(), l.GetProcess())
		c.part("", hex.EncodeToString(l.GetBuildid()))
		c.part(cyan, l.GetPath())
	case *api.GetEventsResponse_ProcessLsm:
		l := e.ProcessLsm
		c.head("🔒", "LSM", ev.GetNodeName(), l.GetProcess())
		c.part(cyan, l.GetFunctionName())
	default:
		c.generic(ev)
	}
	c.buf.WriteByte('\n')
	if _, err := io.WriteString(c.w, c.buf.String()); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return nil
}

// line writes the parts every process event has: emoji, label, source,
// binary and arguments (the latter left out when empty).
func (c *Compact) line(emoji, label, node string, p *api.Process) {
	c.head(emoji, label, node, p)
	c.part(cyan, p.GetArguments())
}

// head writes emoji, label, source and binary.
func (c *Compact) head(emoji, label, node string, p *api.Process) {
	fmt.Fprintf(&c.buf, "%s %-*s", emoji, labelWidth, label)
	c.part(magenta, source(node, p))
	c.part(blue, p.GetBinary())
}

// Kernel access mask bits (MAY_* in include/linux/fs.h).
const (
	mayWrite = 2
	mayRead  = 4
)

// kprobe renders a policy event as Tetragon's compact encoder labels the
// common hooks (by the function, without its system call prefix): reads
// and writes, opens, mounts, sockets, BPF objects... from the arguments
// Tetragon's examples declare; other functions as "syscall" and their name.
func (c *Compact) kprobe(node string, k *api.ProcessKprobe) {
	args := k.GetArgs()
	arg := func(i int) *api.KprobeArgument {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	fn := k.GetFunctionName()
	emoji, label, detail := "❓", "syscall", fn
	switch strings.TrimPrefix(strings.TrimPrefix(fn, "__x64_"), "__arm64_") {
	case "sys_read":
		emoji, label, detail = "📚", "read", fileBytes(args)
	case "sys_write":
		emoji, label, detail = "📝", "write", fileBytes(args)
	case "fd_install":
		emoji, label, detail = "📬", "open", arg(1).GetFileArg().GetPath()
	case "sys_openat":
		emoji, label, detail = "📬️", "openat", arg(1).GetStringArg()
	case "sys_open":
		emoji, label, detail = "📬️", "open", arg(1).GetStringArg()
	case "sys_close":
		emoji, label, detail = "📪", "close", arg(0).GetFileArg().GetPath()
	case "sys_mount":
		emoji, label, detail = "💾", "mount", joinSet(arg(0).GetStringArg(), arg(1).GetStringArg())
	case "sys_pivot_root":
		emoji, label, detail = "💾", "pivot_root", joinSet(arg(0).GetStringArg(), arg(1).GetStringArg())
	case "sys_setuid":
		emoji, label, detail = "🔑", "setuid", ""
		if a := arg(0); a != nil {
			detail = strconv.Itoa(int(a.GetIntArg()))
		}
	case "sys_clock_settime":
		emoji, label, detail = "⏰", "clock_settime", ""
	case "proc_exec_connector":
		emoji, label, detail = "🔧", "proc_exec_connector", ""
	case "sys_setns":
		emoji, label, detail = "🔧", "setns", ""
		if a := arg(1); a != nil {
			detail = nsType(a.GetIntArg())
		}
	case "tcp_connect":
		emoji, label, detail = "🔌", "connect", tcpText(arg(0))
	case "tcp_close":
		emoji, label, detail = "🧹", "close", tcpText(arg(0))
	case "tcp_sendmsg":
		emoji, label, detail = "📤", "sendmsg", strings.TrimSpace(tcpText(arg(0))+" bytes "+strconv.Itoa(int(arg(1).GetIntArg())))
	case "bpf_check":
		emoji, label, detail = "🐝", "bpf_load", ""
		if a := arg(0); a != nil {
			b := a.GetBpfAttrArg()
			detail = fmt.Sprintf("%s %s instruction count %d", b.GetProgType(), b.GetProgName(), b.GetInsnCnt())
		}
	case "security_perf_event_alloc":
		emoji, label, detail = "🐝", "perf_event_alloc", ""
		if a := arg(0); a != nil {
			detail = joinSet(a.GetPerfEventArg().GetType(), a.GetPerfEventArg().GetKprobeFunc())
		}
	case "security_bpf_map_alloc":
		emoji, label, detail = "🗺", "bpf_map_create", ""
		if a := arg(0); a != nil {
			m := a.GetBpfMapArg()
			detail = fmt.Sprintf("%s %s key size %d value size %d max entries %d", m.GetMapType(), m.GetMapName(),
				m.GetKeySize(), m.GetValueSize(), m.GetMaxEntries())
		}
	case "security_file_permission":
		// exactly one access: MAY_WRITE or MAY_READ, as Tetragon tells them
		emoji, label, detail = "❓", "security_file_permission", ""
		if arg(0) != nil && arg(1) != nil {
			switch arg(1).GetIntArg() {
			case mayWrite:
				emoji, label = "📝", "write"
			case mayRead:
				emoji, label = "📚", "read"
			}
			detail = arg(0).GetFileArg().GetPath()
		}
	case "security_mmap_file":
		emoji, label, detail = "❓", "security_mmap_file", ""
		if arg(0) != nil && arg(1) != nil {
			emoji, label, detail = "📝", "mmap-"+protLetters(arg(1).GetUintArg()), arg(0).GetFileArg().GetPath()
		}
	case "security_path_truncate":
		emoji, label, detail = "❓", "security_path_truncate", ""
		if a := arg(0); a != nil {
			emoji, label, detail = "📝", "truncate", a.GetPathArg().GetPath()
		}
	}
	// as in Tetragon: the binary without its arguments, then what it touched
	c.head(emoji, label, node, k.GetProcess())
	c.part(cyan, detail)
}

// joinSet joins the non-empty strings with spaces.
func joinSet(s ...string) string {
	return strings.Join(slices.DeleteFunc(s, func(x string) bool { return x == "" }), " ")
}

// tcpText renders a sock argument as Tetragon's compact lines do:
// "tcp 10.0.0.1:40000 -> 10.0.0.2:80" (the protocol named tcp whatever it
// is, the address and port joined by a colon, IPv6 too).
func tcpText(a *api.KprobeArgument) string {
	if a == nil {
		return ""
	}
	s := a.GetSockArg()
	return fmt.Sprintf("tcp %s:%d -> %s:%d", s.GetSaddr(), s.GetSport(), s.GetDaddr(), s.GetDport())
}

// nsType names setns(2)'s nstype argument (a CLONE_NEW* flag; 0: any).
func nsType(t int32) string {
	switch t {
	case 0:
		return "any"
	case 0x2000000:
		return "cgroup"
	case 0x8000000:
		return "ipc"
	case 0x40000000:
		return "net"
	case 0x20000:
		return "mnt"
	case 0x20000000:
		return "pid"
	case 0x80:
		return "time"
	case 0x10000000:
		return "user"
	case 0x4000000:
		return "uts"
	}
	return ""
}

// fileBytes renders a read or write as Tetragon does: the file of the
// first argument (when it is one) and the third's size_arg, "N bytes".
func fileBytes(args []*api.KprobeArgument) string {
	var parts []string
	if len(args) > 0 && args[0].GetFileArg() != nil {
		parts = append(parts, args[0].GetFileArg().GetPath())
	}
	if len(args) > 2 && args[2] != nil {
		parts = append(parts, strconv.FormatUint(args[2].GetSizeArg(), 10)+" bytes")
	}
	return strings.Join(parts, " ")
}

// protLetters renders mmap's PROT_READ|PROT_WRITE|PROT_EXEC as the
// letters of the bits set, in that order ("rx").
func protLetters(prot uint32) string {
	var b strings.Builder
	for i, l := range "rwx" {
		if prot&(1<<i) != 0 {
			b.WriteRune(l)
		}
	}
	return b.String()
}

// generic renders a kind without its own case: the oneof's field name
// (process_kprobe -> kprobe), and the process if the kind has one; a kind
// unknown to this build (from a newer agent) shows as "unknown".
func (c *Compact) generic(ev *api.GetEventsResponse) {
	kind, p := "unknown", (*api.Process)(nil)
	m := ev.ProtoReflect()
	if od := m.Descriptor().Oneofs().ByName("event"); od != nil {
		if fd := m.WhichOneof(od); fd != nil {
			kind = strings.TrimPrefix(string(fd.Name()), "process_")
			if fd.Message() != nil {
				p = processField(m.Get(fd).Message())
			}
		}
	}
	c.line("❓", kind, ev.GetNodeName(), p)
}

func processField(m protoreflect.Message) *api.Process {
	fd := m.Descriptor().Fields().ByName("process")
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return nil
	}
	p, _ := m.Get(fd).Message().Interface().(*api.Process)
	return p
}

// part appends a space and s, colored, unless s is empty.
func (c *Compact) part(color, s string) {
	if s == "" {
		return
	}
	c.buf.WriteByte(' ')
	if c.color && color != "" {
		c.buf.WriteString(color)
		writeSafe(&c.buf, s)
		c.buf.WriteString(reset)
		return
	}
	writeSafe(&c.buf, s)
}

// writeSafe escapes control, line-separator and bidi-override characters:
// arguments and binary names come from the watched processes, and must
// neither break the one-line-per-event format, nor send escape sequences to
// the reader's terminal, nor reorder what the reader sees.
func writeSafe(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case !unicode.IsControl(r) && !unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		default:
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
}

// source is where the process runs: its pod as namespace/name (as
// Tetragon writes it), else its container's name, else its short container
// id, else the node.
func source(node string, p *api.Process) string {
	if pod := p.GetPod(); pod.GetName() != "" {
		return pod.GetNamespace() + "/" + pod.GetName()
	}
	if name := p.GetContainer().GetName(); name != "" {
		return name
	}
	id := p.GetDocker()
	if id == "" {
		id = p.GetContainer().GetId()
	}
	if id != "" {
		return id[:min(len(id), 12)]
	}
	return node
}
