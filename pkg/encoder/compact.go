package encoder

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
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
		c.part(cyan, strings.TrimSpace(t.GetSubsys()+" "+t.GetEvent()+" "+argsText(t.GetArgs())))
	case *api.GetEventsResponse_ProcessUprobe:
		u := e.ProcessUprobe
		c.head("🕵️", "uprobe", ev.GetNodeName(), u.GetProcess())
		c.part(cyan, strings.TrimSpace(u.GetPath()+" "+u.GetSymbol()+" "+argsText(u.GetArgs())))
	case *api.GetEventsResponse_ProcessUsdt:
		u := e.ProcessUsdt
		c.head("🕵️", "usdt", ev.GetNodeName(), u.GetProcess())
		c.part(cyan, strings.TrimSpace(u.GetPath()+" "+u.GetProvider()+":"+u.GetName()+" "+argsText(u.GetArgs())))
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
		c.part(cyan, strings.TrimSpace(l.GetFunctionName()+" "+argsText(l.GetArgs())))
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
const mayWrite = 2

// kprobe renders a policy event the way Tetragon labels the common hooks:
// file reads and writes, opens, mmaps and truncates by what they do, other
// calls as "syscall" with the function and its arguments.
func (c *Compact) kprobe(node string, k *api.ProcessKprobe) {
	args := k.GetArgs()
	fn := k.GetFunctionName()
	emoji, label, detail := "❓", "syscall", strings.TrimSpace(fn+" "+argsText(args))
	switch strings.TrimPrefix(strings.TrimPrefix(fn, "__x64_"), "__arm64_") {
	case "security_file_permission":
		emoji, label, detail = "📚", "read", argPath(args, 0)
		if len(args) > 1 && argInt(args[1])&mayWrite != 0 {
			emoji, label = "📝", "write"
		}
	case "tcp_connect", "tcp_v4_connect", "tcp_v6_connect":
		emoji, label, detail = "🔌", "connect", firstSock(args)
	case "tcp_close":
		emoji, label, detail = "🧹", "close", firstSock(args)
	case "fd_install", "security_file_open":
		emoji, label, detail = "📬", "open", firstPath(args)
	case "security_mmap_file":
		emoji, label, detail = "📝", "mmap", argPath(args, 0)
		if len(args) > 1 {
			detail += " " + protLetters(argInt(args[1]))
		}
	case "security_path_truncate", "security_file_truncate":
		emoji, label, detail = "📝", "truncate", argPath(args, 0)
	case "sys_read", "sys_pread64":
		emoji, label, detail = "📚", "read", fileBytes(args)
	case "sys_write", "sys_pwrite64":
		emoji, label, detail = "📝", "write", fileBytes(args)
	}
	// as in Tetragon: the binary without its arguments, then what it touched
	c.head(emoji, label, node, k.GetProcess())
	c.part(cyan, detail)
}

func argInt(a *api.KprobeArgument) int64 {
	switch v := a.GetArg().(type) {
	case *api.KprobeArgument_IntArg:
		return int64(v.IntArg)
	case *api.KprobeArgument_UintArg:
		return int64(v.UintArg)
	case *api.KprobeArgument_LongArg:
		return v.LongArg
	case *api.KprobeArgument_SizeArg:
		return int64(v.SizeArg)
	}
	return 0
}

func argText(a *api.KprobeArgument) string {
	switch v := a.GetArg().(type) {
	case *api.KprobeArgument_FileArg:
		return v.FileArg.GetPath()
	case *api.KprobeArgument_PathArg:
		return v.PathArg.GetPath()
	case *api.KprobeArgument_StringArg:
		return v.StringArg
	case *api.KprobeArgument_SockArg:
		return sockText(v.SockArg)
	case *api.KprobeArgument_SockaddrArg:
		return hostPort(v.SockaddrArg.GetAddr(), v.SockaddrArg.GetPort())
	case *api.KprobeArgument_ModuleArg:
		return "module " + v.ModuleArg.GetName()
	case *api.KprobeArgument_DnsArg:
		if !v.DnsArg.GetParsed() {
			return "dns (not a DNS question)"
		}
		return "dns " + v.DnsArg.GetQueryTypeStr() + " " + v.DnsArg.GetQueryName()
	case *api.KprobeArgument_Int32ListArg:
		return fmt.Sprint(v.Int32ListArg.GetValues())
	case *api.KprobeArgument_BpfAttrArg:
		b := v.BpfAttrArg
		return fmt.Sprintf("%s %s (%d instructions)", b.GetProgType(), b.GetProgName(), b.GetInsnCnt())
	case *api.KprobeArgument_BpfMapArg:
		m := v.BpfMapArg
		return fmt.Sprintf("%s %s (key %d, value %d, %d entries)", m.GetMapType(), m.GetMapName(), m.GetKeySize(), m.GetValueSize(), m.GetMaxEntries())
	case *api.KprobeArgument_PerfEventArg:
		p := v.PerfEventArg
		if p.GetKprobeFunc() != "" {
			return fmt.Sprintf("%s %s+%#x", p.GetType(), p.GetKprobeFunc(), p.GetProbeAddr())
		}
		return fmt.Sprintf("%s config %#x", p.GetType(), p.GetConfig())
	case *api.KprobeArgument_SkbArg:
		s := v.SkbArg
		return fmt.Sprintf("%s %s -> %s", strings.ToLower(strings.TrimPrefix(s.GetProtocol(), "IPPROTO_")), hostPort(s.GetSaddr(), s.GetSport()), hostPort(s.GetDaddr(), s.GetDport()))
	case *api.KprobeArgument_BytesArg:
		return fmt.Sprintf("%d bytes", len(v.BytesArg))
	case *api.KprobeArgument_TruncatedBytesArg:
		return fmt.Sprintf("%d bytes", v.TruncatedBytesArg.GetOrigSize())
	case *api.KprobeArgument_UserNsArg:
		return fmt.Sprintf("userns %d", v.UserNsArg.GetNs().GetInum())
	case *api.KprobeArgument_ProcessCredentialsArg:
		c := v.ProcessCredentialsArg
		return fmt.Sprintf("uid=%d euid=%d", c.GetUid().GetValue(), c.GetEuid().GetValue())
	case *api.KprobeArgument_LinuxBinprmArg:
		return v.LinuxBinprmArg.GetPath()
	case *api.KprobeArgument_SyscallId:
		return fmt.Sprintf("%s/%d", v.SyscallId.GetAbi(), v.SyscallId.GetId())
	case *api.KprobeArgument_KernelCapTArg:
		return "caps " + v.KernelCapTArg
	case *api.KprobeArgument_CapInheritableArg:
		return "inheritable " + v.CapInheritableArg
	case *api.KprobeArgument_CapPermittedArg:
		return "permitted " + v.CapPermittedArg
	case *api.KprobeArgument_CapEffectiveArg:
		return "effective " + v.CapEffectiveArg
	case nil:
		return ""
	}
	return strconv.FormatInt(argInt(a), 10)
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

// firstSock renders the first socket argument as Tetragon does:
// "tcp 10.0.0.1:40000 -> 10.0.0.2:80".
func firstSock(args []*api.KprobeArgument) string {
	for _, a := range args {
		if s := a.GetSockArg(); s != nil {
			return sockText(s)
		}
	}
	return argsText(args)
}

func sockText(s *api.KprobeSock) string {
	proto := strings.ToLower(strings.TrimPrefix(s.GetProtocol(), "IPPROTO_"))
	return fmt.Sprintf("%s %s -> %s", proto, hostPort(s.GetSaddr(), s.GetSport()), hostPort(s.GetDaddr(), s.GetDport()))
}

func hostPort(addr string, port uint32) string {
	return net.JoinHostPort(addr, strconv.FormatUint(uint64(port), 10))
}

func argPath(args []*api.KprobeArgument, i int) string {
	if i >= len(args) {
		return ""
	}
	return argText(args[i])
}

// firstPath is the first file, path or string argument.
func firstPath(args []*api.KprobeArgument) string {
	for _, a := range args {
		switch a.GetArg().(type) {
		case *api.KprobeArgument_FileArg, *api.KprobeArgument_PathArg, *api.KprobeArgument_StringArg:
			return argText(a)
		}
	}
	return ""
}

func argsText(args []*api.KprobeArgument) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, argText(a))
	}
	return strings.Join(parts, " ")
}

// protLetters renders mmap's PROT_READ|PROT_WRITE|PROT_EXEC as "rwx".
func protLetters(prot int64) string {
	b := []byte("---")
	for i, l := range "rwx" {
		if prot&(1<<i) != 0 {
			b[i] = byte(l)
		}
	}
	return string(b)
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
