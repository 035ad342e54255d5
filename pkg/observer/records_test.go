package observer

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/tetragon-lite/tetragon/bpf"
)

// execRecord builds a raw exec record as the kernel writes it.
func execRecord(binaryPath, cwd string, args []byte) []byte {
	var r bpf.ProcessExecRec
	r.Pid, r.Ppid, r.Uid = 42, 1, 1000
	r.BinaryLen, r.CwdLen, r.ArgsLen = uint16(len(binaryPath)), uint16(len(cwd)), uint32(len(args))
	copy(asBytes(&r.CgroupName), "docker-abc.scope")
	data := append(append([]byte(binaryPath), cwd...), args...)
	off := int(unsafe.Offsetof(r.Data))
	r.Hdr = bpf.ProcessRecHeader{Op: OpExec, Version: RecordVersion, Size: uint32(off + len(data)), Ktime: 7}
	raw := append([]byte{}, asBytes(&r)[:off]...)
	return append(raw, data...)
}

func TestDecodeExec(t *testing.T) {
	var d Decoder
	rec, err := d.Decode(execRecord("/usr/bin/cat", "/root", []byte("cat\x00/etc/hostname\x00")))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := rec.(*Exec)
	if !ok {
		t.Fatalf("decoded %T", rec)
	}
	if e.Binary != "/usr/bin/cat" || e.Cwd != "/root" || !bytes.Equal(e.Args, []byte("cat\x00/etc/hostname\x00")) ||
		e.Pid != 42 || e.UID != 1000 || e.CgroupName != "docker-abc.scope" || e.Ktime != 7 {
		t.Fatalf("decoded %+v", e)
	}
}

func TestDecodeFixed(t *testing.T) {
	var d Decoder
	x := bpf.ProcessExitRec{Hdr: bpf.ProcessRecHeader{Op: OpExit, Version: RecordVersion, Size: uint32(unsafe.Sizeof(bpf.ProcessExitRec{}))}, Pid: 9, Code: 0x100}
	rec, err := d.Decode(asBytes(&x))
	if err != nil {
		t.Fatal(err)
	}
	if ex := rec.(*Exit); ex.Pid != 9 || ex.Code != 0x100 {
		t.Fatalf("%+v", ex)
	}
}

func TestDecodeRejects(t *testing.T) {
	var d Decoder
	good := execRecord("/bin/true", "/", nil)
	cases := map[string][]byte{
		"empty":         nil,
		"short header":  good[:8],
		"wrong version": func() []byte { b := bytes.Clone(good); b[1] = 99; return b }(),
		"unknown op":    func() []byte { b := bytes.Clone(good); b[0] = 77; return b }(),
		"size too big": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[4:], uint32(len(b)+1))
			return b
		}(),
		"lengths past data": func() []byte {
			b := execRecord("/bin/true", "/", nil)
			off := int(unsafe.Offsetof(bpf.ProcessExecRec{}.BinaryLen))
			binary.LittleEndian.PutUint16(b[off:], 5000)
			return b
		}(),
		"truncated exit": func() []byte {
			x := bpf.ProcessExitRec{Hdr: bpf.ProcessRecHeader{Op: OpExit, Version: RecordVersion, Size: 16}}
			return asBytes(&x)[:16]
		}(),
	}
	for name, raw := range cases {
		if rec, err := d.Decode(raw); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, rec)
		}
	}
}

// FuzzDecode feeds arbitrary bytes: records come from the kernel, but a
// bpffs-pinned ring buffer left by another version can hold anything.
func FuzzDecode(f *testing.F) {
	f.Add(execRecord("/usr/bin/cat", "/root", []byte("cat\x00/etc/hostname\x00")))
	f.Add(execRecord("", "", nil))
	x := bpf.ProcessExitRec{Hdr: bpf.ProcessRecHeader{Op: OpExit, Version: RecordVersion, Size: 32}}
	f.Add(bytes.Clone(asBytes(&x)))
	fk := bpf.ProcessForkRec{Hdr: bpf.ProcessRecHeader{Op: OpFork, Version: RecordVersion, Size: 32}}
	f.Add(bytes.Clone(asBytes(&fk)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Decoder
		rec, err := d.Decode(raw)
		if err == nil && rec == nil {
			t.Fatal("nil record without error")
		}
		if e, ok := rec.(*Exec); ok && len(e.Binary)+len(e.Cwd)+len(e.Args) > len(raw) {
			t.Fatalf("decoded more bytes than given")
		}
	})
}
