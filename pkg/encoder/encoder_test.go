package encoder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

var when = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.UTC)

func proc(pid uint32, binary, args string) *api.Process {
	return &api.Process{
		ExecId:       "bm9kZTE6MTIzOjQy",
		Pid:          wrapperspb.UInt32(pid),
		Uid:          wrapperspb.UInt32(1000),
		Cwd:          "/home/user",
		Binary:       binary,
		Arguments:    args,
		Flags:        "execve",
		StartTime:    timestamppb.New(when.Add(-time.Second)),
		ParentExecId: "bm9kZTE6MTAwOjE=",
	}
}

func exec(p *api.Process) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		Event:    &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: p, Parent: proc(1, "/usr/bin/bash", "")}},
		NodeName: "node1",
		Time:     timestamppb.New(when),
	}
}

func exit(p *api.Process, signal string, status uint32) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		Event: &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{
			Process: p, Parent: proc(1, "/usr/bin/bash", ""), Signal: signal, Status: status, Time: timestamppb.New(when),
		}},
		NodeName: "node1",
		Time:     timestamppb.New(when.Add(1500 * time.Millisecond)),
	}
}

func withContainer(p *api.Process, id, name string) *api.Process {
	p.Docker = id
	p.Container = &api.Container{Id: id, Name: name, Image: &api.Image{Name: "nginx:1.27"}}
	return p
}

// unknownKind is what a newer agent's event kind (a field number this build
// does not know) looks like: no oneof set, payload in unknown fields.
func unknownKind(t *testing.T) *api.GetEventsResponse {
	t.Helper()
	raw, err := proto.Marshal(&api.GetEventsResponse{NodeName: "node1", Time: timestamppb.New(when)})
	if err != nil {
		t.Fatal(err)
	}
	raw = protowire.AppendTag(raw, 50, protowire.BytesType)
	raw = protowire.AppendBytes(raw, []byte{0x0a, 0x00})
	ev := &api.GetEventsResponse{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func kprobe(p *api.Process, fn string, action api.KprobeAction, args ...*api.KprobeArgument) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{
			Process: p, FunctionName: fn, Args: args, Action: action, PolicyName: "file-monitoring"}},
		NodeName: "node1",
		Time:     timestamppb.New(when),
	}
}

func fileArg(path string) *api.KprobeArgument {
	return &api.KprobeArgument{Arg: &api.KprobeArgument_FileArg{FileArg: &api.KprobeFile{Path: path}}}
}

func intArg(v int32) *api.KprobeArgument {
	return &api.KprobeArgument{Arg: &api.KprobeArgument_IntArg{IntArg: v}}
}

func events(t *testing.T) []*api.GetEventsResponse {
	const longID = "4b7d6e2f9a1c0d3e5f7a9b1c3d5e7f90123456789abcdef0123456789abcdef"
	return []*api.GetEventsResponse{
		exec(proc(42, "/usr/bin/curl", "-s https://ebpf.io/applications/#tetragon")),
		exec(withContainer(proc(77, "/usr/sbin/nginx", `-g "daemon off;"`), longID, "web-1")),
		exec(withContainer(proc(78, "/bin/sh", "-c id"), longID, "")),
		exec(proc(43, "/usr/bin/true", "")),
		exit(proc(43, "/usr/bin/true", ""), "", 0),
		exit(proc(42, "/usr/bin/curl", "-s https://ebpf.io/applications/#tetragon"), "", 6),
		exit(withContainer(proc(77, "/usr/sbin/nginx", `-g "daemon off;"`), longID, "web-1"), "SIGKILL", 0),
		exec(proc(44, "/tmp/evil\x1b]0;owned\x07", "a\x1b[31mb\nc\u202etxt.exe\x7f")),
		exec(nil),
		kprobe(withContainer(proc(80, "/bin/cat", "/etc/shadow"), longID, "xwing"), "security_file_permission", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/shadow"), intArg(4)),
		kprobe(proc(81, "/bin/bash", `-c "echo foo >> /etc/bar"`), "security_file_permission", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/bar"), intArg(2)),
		kprobe(proc(82, "/bin/cat", "/tmp/tetragon"), "fd_install", api.KprobeAction_KPROBE_ACTION_SIGKILL, intArg(3), fileArg("/tmp/tetragon")),
		kprobe(proc(83, "/usr/bin/python3", "x.py"), "security_mmap_file", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/usr/lib/libc.so.6"), &api.KprobeArgument{Arg: &api.KprobeArgument_UintArg{UintArg: 5}}, intArg(2)),
		kprobe(proc(84, "/usr/bin/truncate", "-s0 /etc/motd"), "security_path_truncate", api.KprobeAction_KPROBE_ACTION_POST, &api.KprobeArgument{Arg: &api.KprobeArgument_PathArg{PathArg: &api.KprobePath{Path: "/etc/motd"}}}),
		kprobe(proc(85, "/usr/bin/touch", "/tmp/x"), "sys_openat", api.KprobeAction_KPROBE_ACTION_POST, intArg(-100), &api.KprobeArgument{Arg: &api.KprobeArgument_StringArg{StringArg: "/tmp/x"}}),
		unknownKind(t),
		{},
	}
}

func encodeAll(t *testing.T, opts CompactOptions) string {
	t.Helper()
	var b bytes.Buffer
	enc := NewCompact(&b, opts)
	for _, ev := range events(t) {
		if err := enc.Encode(ev); err != nil {
			t.Fatalf("Encode(%v): %v", ev, err)
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (UPDATE_GOLDEN=1 writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (UPDATE_GOLDEN=1 rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestCompactGolden(t *testing.T) {
	for _, tt := range []struct {
		file string
		opts CompactOptions
	}{
		{"compact.golden", CompactOptions{Color: ColorNever}},
		{"compact_color.golden", CompactOptions{Color: ColorAlways}},
		{"compact_timestamps.golden", CompactOptions{Color: ColorNever, Timestamps: true}},
	} {
		t.Run(tt.file, func(t *testing.T) { golden(t, tt.file, encodeAll(t, tt.opts)) })
	}
}

// The golden files are easy to regenerate by mistake: pin the key lines here.
func TestCompactLines(t *testing.T) {
	lines := strings.Split(encodeAll(t, CompactOptions{Color: ColorNever}), "\n")
	want := []string{
		"🚀 process node1 /usr/bin/curl -s https://ebpf.io/applications/#tetragon",
		`🚀 process web-1 /usr/sbin/nginx -g "daemon off;"`,
		"🚀 process 4b7d6e2f9a1c /bin/sh -c id",
		"🚀 process node1 /usr/bin/true",
		"💥 exit    node1 /usr/bin/true 0",
		"💥 exit    node1 /usr/bin/curl -s https://ebpf.io/applications/#tetragon 6",
		`💥 exit    web-1 /usr/sbin/nginx -g "daemon off;" SIGKILL`,
		`🚀 process node1 /tmp/evil\x1b]0;owned\x07 a\x1b[31mb\x0ac\u202etxt.exe\x7f`,
		"🚀 process node1",
		"📚 read    xwing /bin/cat /etc/shadow",
		"📝 write   node1 /bin/bash /etc/bar",
		"📬 open    node1 /bin/cat /tmp/tetragon",
		"📝 mmap-rx node1 /usr/bin/python3 /usr/lib/libc.so.6",
		"📝 truncate node1 /usr/bin/truncate /etc/motd",
		"📬️ openat  node1 /usr/bin/touch /tmp/x",
		"❓ unknown node1",
		"❓ unknown",
		"",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\ngot  %q\nwant %q", i, lines[i], want[i])
		}
	}
}

// TestCompactReadWrite: reads and writes of system call hooks are labelled
// as Tetragon labels them: the file (a file_arg first argument) and the
// size_arg third argument, "N bytes"; the buffer itself is not printed.
func TestCompactReadWrite(t *testing.T) {
	buf := &api.KprobeArgument{Arg: &api.KprobeArgument_BytesArg{BytesArg: []byte("hello")}}
	size := &api.KprobeArgument{Arg: &api.KprobeArgument_SizeArg{SizeArg: 5}}
	for _, c := range []struct {
		ev   *api.GetEventsResponse
		want string
	}{
		{kprobe(proc(9, "/bin/bash", ""), "__x64_sys_write", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/passwd"), buf, size),
			"📝 write   node1 /bin/bash /etc/passwd 5 bytes"},
		{kprobe(proc(9, "/bin/cat", ""), "__x64_sys_read", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/shadow"), buf, size),
			"📚 read    node1 /bin/cat /etc/shadow 5 bytes"},
		{kprobe(proc(9, "/bin/bash", ""), "__x64_sys_write", api.KprobeAction_KPROBE_ACTION_POST, intArg(1), buf, size),
			"📝 write   node1 /bin/bash 5 bytes"},
		{kprobe(proc(9, "/bin/bash", ""), "__x64_sys_write", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/tmp/x")),
			"📝 write   node1 /bin/bash /tmp/x"},
	} {
		var b bytes.Buffer
		if err := NewCompact(&b, CompactOptions{Color: ColorNever}).Encode(c.ev); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// TestCompactKprobeLabels: the functions Tetragon's compact encoder labels
// by what they do, from the arguments its example policies declare.
func TestCompactKprobeLabels(t *testing.T) {
	str := func(s string) *api.KprobeArgument {
		return &api.KprobeArgument{Arg: &api.KprobeArgument_StringArg{StringArg: s}}
	}
	sock := &api.KprobeArgument{Arg: &api.KprobeArgument_SockArg{SockArg: &api.KprobeSock{
		Protocol: "IPPROTO_UDP", Saddr: "::1", Sport: 40000, Daddr: "10.0.0.2", Dport: 80}}}
	uint := func(v uint32) *api.KprobeArgument {
		return &api.KprobeArgument{Arg: &api.KprobeArgument_UintArg{UintArg: v}}
	}
	p := proc(9, "/bin/x", "")
	post := api.KprobeAction_KPROBE_ACTION_POST
	for _, c := range []struct {
		ev   *api.GetEventsResponse
		want string
	}{
		{kprobe(p, "__x64_sys_openat", post, intArg(-100), str("/etc/passwd")), "📬️ openat  node1 /bin/x /etc/passwd"},
		{kprobe(p, "__x64_sys_close", post, fileArg("/tmp/f")), "📪 close   node1 /bin/x /tmp/f"},
		{kprobe(p, "__x64_sys_mount", post, str("/dev/sda1"), str("/mnt")), "💾 mount   node1 /bin/x /dev/sda1 /mnt"},
		{kprobe(p, "__x64_sys_setuid", post, intArg(0)), "🔑 setuid  node1 /bin/x 0"},
		{kprobe(p, "__x64_sys_setns", post, intArg(3), intArg(0x40000000)), "🔧 setns   node1 /bin/x net"},
		{kprobe(p, "__x64_sys_clock_settime", post), "⏰ clock_settime node1 /bin/x"},
		{kprobe(p, "tcp_connect", post, sock), "🔌 connect node1 /bin/x tcp ::1:40000 -> 10.0.0.2:80"},
		{kprobe(p, "tcp_sendmsg", post, sock, intArg(12)), "📤 sendmsg node1 /bin/x tcp ::1:40000 -> 10.0.0.2:80 bytes 12"},
		{kprobe(p, "security_file_permission", post, fileArg("/etc/x"), intArg(0x6)), "❓ security_file_permission node1 /bin/x /etc/x"},
		{kprobe(p, "security_mmap_file", post, fileArg("/lib/l.so"), uint(0x7), uint(1)), "📝 mmap-rwx node1 /bin/x /lib/l.so"},
		{kprobe(p, "security_mmap_file", post), "❓ security_mmap_file node1 /bin/x"},
		{kprobe(p, "security_file_open", post, fileArg("/etc/x")), "❓ syscall node1 /bin/x security_file_open"},
	} {
		var b bytes.Buffer
		if err := NewCompact(&b, CompactOptions{Color: ColorNever}).Encode(c.ev); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestCompactColor(t *testing.T) {
	var b bytes.Buffer
	enc := NewCompact(&b, CompactOptions{Color: ColorAlways})
	for _, ev := range []*api.GetEventsResponse{
		exit(withContainer(proc(7, "/bin/sleep", "60"), "abc", "db"), "SIGKILL", 0),
		exit(proc(8, "/bin/true", ""), "", 0),
	} {
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	want := "💥 exit    \x1b[35mdb\x1b[0m \x1b[34m/bin/sleep\x1b[0m \x1b[36m60\x1b[0m \x1b[31mSIGKILL\x1b[0m\n" +
		"💥 exit    \x1b[35mnode1\x1b[0m \x1b[34m/bin/true\x1b[0m 0\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

func TestCompactTimestamps(t *testing.T) {
	var b bytes.Buffer
	enc := NewCompact(&b, CompactOptions{Color: ColorNever, Timestamps: true})
	ev := exec(proc(1, "/bin/ls", "-l"))
	ev.Time = timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.FixedZone("CET", 3600)))
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	ev.Time = nil
	if err := enc.Encode(ev); err != nil {
		t.Fatal(err)
	}
	want := "2025-01-02T02:04:05.006Z 🚀 process node1 /bin/ls -l\n" +
		"-                        🚀 process node1 /bin/ls -l\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

// A kind the switch has no case for is rendered from reflection: check that
// path on kinds whose fields are known.
func TestGenericLine(t *testing.T) {
	c := NewCompact(nil, CompactOptions{Color: ColorNever})
	c.generic(exec(withContainer(proc(5, "/bin/cat", "/etc/passwd"), "abc", "db")))
	if got, want := c.buf.String(), "❓ exec    db /bin/cat /etc/passwd"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c.buf.Reset()
	c.generic(exit(nil, "", 0))
	if got, want := c.buf.String(), "❓ exit    node1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestColorAuto(t *testing.T) {
	ev := exec(proc(1, "/bin/ls", ""))

	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := NewCompact(f, CompactOptions{Color: ColorAuto}).Encode(ev); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte("\x1b[")) {
		t.Errorf("auto colored output to a regular file: %q", got)
	}

	tty := openPTY(t)
	if c := NewCompact(tty, CompactOptions{Color: ColorAuto}); !c.color {
		t.Error("auto does not color on a terminal")
	}
	if c := NewCompact(tty, CompactOptions{Color: ColorNever}); c.color {
		t.Error("never colors on a terminal")
	}
	var b bytes.Buffer
	if c := NewCompact(&b, CompactOptions{Color: ColorAuto}); c.color {
		t.Error("auto colors into a buffer")
	}
}

// openPTY returns the terminal side of a new pseudo-terminal.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("getting pty number: %v", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

func TestParseColorMode(t *testing.T) {
	for in, want := range map[string]ColorMode{"auto": ColorAuto, "ALWAYS": ColorAlways, "never": ColorNever} {
		if got, err := ParseColorMode(in); err != nil || got != want {
			t.Errorf("ParseColorMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseColorMode("yes"); err == nil || !strings.Contains(err.Error(), `"yes"`) {
		t.Errorf("ParseColorMode(yes) error = %v", err)
	}
}

func TestJSONShape(t *testing.T) {
	var b bytes.Buffer
	enc := NewJSON(&b)
	evs := []*api.GetEventsResponse{
		exec(withContainer(proc(77, "/usr/sbin/nginx", "-g x"), "abc123", "web-1")),
		exit(proc(43, "/usr/bin/true", ""), "SIGKILL", 0),
		unknownKind(t),
	}
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			t.Fatal(err)
		}
	}
	out := b.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output does not end with a newline: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(evs) {
		t.Fatalf("got %d lines for %d events:\n%s", len(lines), len(evs), out)
	}
	if !strings.HasPrefix(lines[0], `{"process_exec":{"process":{`) {
		t.Errorf("first line does not start with the event kind and process: %s", lines[0])
	}
	if strings.Contains(lines[0], ": ") || strings.Contains(lines[0], ", ") {
		t.Errorf("line is not compact: %s", lines[0])
	}

	var ex map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ex); err != nil {
		t.Fatalf("line 0 is not JSON: %v\n%s", err, lines[0])
	}
	assertPath(t, ex, "process_exec.process.binary", "/usr/sbin/nginx")
	assertPath(t, ex, "process_exec.process.pid", float64(77))
	assertPath(t, ex, "process_exec.process.exec_id", "bm9kZTE6MTIzOjQy")
	assertPath(t, ex, "process_exec.process.parent_exec_id", "bm9kZTE6MTAwOjE=")
	assertPath(t, ex, "process_exec.process.start_time", "2025-03-14T15:09:25.535897932Z")
	assertPath(t, ex, "process_exec.process.docker", "abc123")
	assertPath(t, ex, "process_exec.process.container.name", "web-1")
	assertPath(t, ex, "process_exec.process.container.image.name", "nginx:1.27")
	assertPath(t, ex, "process_exec.parent.binary", "/usr/bin/bash")
	assertPath(t, ex, "node_name", "node1")
	assertPath(t, ex, "time", "2025-03-14T15:09:26.535897932Z")

	var ew map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &ew); err != nil {
		t.Fatalf("line 1 is not JSON: %v\n%s", err, lines[1])
	}
	assertPath(t, ew, "process_exit.process.binary", "/usr/bin/true")
	assertPath(t, ew, "process_exit.signal", "SIGKILL")
	if _, ok := ew["process_exit"].(map[string]any)["status"]; ok {
		t.Error("zero status emitted (proto3 omits defaults, like Tetragon)")
	}
	if _, ok := ew["process_exit"].(map[string]any)["process"].(map[string]any)["arguments"]; ok {
		t.Error("empty arguments emitted")
	}

	// The unknown kind keeps its envelope: a jq filter on node_name still works.
	if lines[2] != `{"node_name":"node1","time":"2025-03-14T15:09:26.535897932Z"}` {
		t.Errorf("unknown kind: %s", lines[2])
	}
}

func assertPath(t *testing.T, m map[string]any, path string, want any) {
	t.Helper()
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			t.Errorf("%s: %v is not an object", path, cur)
			return
		}
		if cur, ok = obj[k]; !ok {
			t.Errorf("%s: no key %q in %v", path, k, obj)
			return
		}
	}
	if cur != want {
		t.Errorf("%s = %#v, want %#v", path, cur, want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

// One Write per event, whole lines only: a reader piping into jq sees every
// event as soon as it is encoded.
type countWriter struct{ writes []string }

func (c *countWriter) Write(p []byte) (int, error) {
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func TestOneWritePerEvent(t *testing.T) {
	for name, mk := range map[string]func(w *countWriter) Encoder{
		"json":    func(w *countWriter) Encoder { return NewJSON(w) },
		"compact": func(w *countWriter) Encoder { return NewCompact(w, CompactOptions{Color: ColorAlways}) },
	} {
		w := &countWriter{}
		enc := mk(w)
		evs := events(t)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
		if len(w.writes) != len(evs) {
			t.Errorf("%s: %d writes for %d events", name, len(w.writes), len(evs))
		}
		for _, s := range w.writes {
			if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
				t.Errorf("%s: write is not one line: %q", name, s)
			}
		}
	}
	ev := exec(proc(1, "/bin/ls", ""))
	if err := NewJSON(failWriter{}).Encode(ev); err == nil || !strings.Contains(err.Error(), "writing event") {
		t.Errorf("JSON to a failing writer: %v", err)
	}
	if err := NewCompact(failWriter{}, CompactOptions{}).Encode(ev); err == nil || !strings.Contains(err.Error(), "writing event") {
		t.Errorf("compact to a failing writer: %v", err)
	}
}

// A policy's message and tags: Tetragon's compact encoder labels a kprobe
// event by its function and never prints them (its kprobe case reads only
// the function name and arguments), so neither does this one; the JSON
// carries them, and policy_name and return_action, under Tetragon's names.
func TestPolicyMessageAndTags(t *testing.T) {
	plain := kprobe(proc(9, "/bin/cat", "/etc/shadow"), "security_file_permission", api.KprobeAction_KPROBE_ACTION_POST, fileArg("/etc/shadow"), intArg(4))
	ev := proto.Clone(plain).(*api.GetEventsResponse)
	k := ev.GetProcessKprobe()
	k.PolicyName, k.Message, k.Tags = "file-monitoring", "Sensitive file read", []string{"observability.filesystem", "cis"}
	k.Return, k.ReturnAction = &api.KprobeArgument{Arg: &api.KprobeArgument_IntArg{IntArg: 0}}, api.KprobeAction_KPROBE_ACTION_POST

	compact := func(ev *api.GetEventsResponse) string {
		var b bytes.Buffer
		if err := NewCompact(&b, CompactOptions{Color: ColorNever}).Encode(ev); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got, want := compact(ev), "📚 read    node1 /bin/cat /etc/shadow\n"; got != want || compact(plain) != want {
		t.Fatalf("compact: %q (without message %q), want %q", got, compact(plain), want)
	}

	var b bytes.Buffer
	if err := NewJSON(&b).Encode(ev); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	assertPath(t, m, "process_kprobe.policy_name", "file-monitoring")
	assertPath(t, m, "process_kprobe.message", "Sensitive file read")
	assertPath(t, m, "process_kprobe.return_action", "KPROBE_ACTION_POST")
	assertPath(t, m, "process_kprobe.action", "KPROBE_ACTION_POST")
	if tags := fmt.Sprint(m["process_kprobe"].(map[string]any)["tags"]); tags != "[observability.filesystem cis]" {
		t.Errorf("tags: %s", tags)
	}
}
