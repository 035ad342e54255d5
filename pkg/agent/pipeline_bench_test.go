package agent

import (
	"io"
	"testing"
	"time"
	"unsafe"

	"github.com/tetragon-lite/tetragon/bpf"
	"github.com/tetragon-lite/tetragon/pkg/encoder"
	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/process"
)

// rawExec builds an exec record as the kernel writes it, with a typical
// binary, cwd and argv.
func rawExec(pid uint32, ktime uint64) []byte {
	var r bpf.ProcessExecRec
	bin, cwd, args := "/usr/bin/cat", "/home/user/project", "cat\x00--number\x00/etc/hostname\x00"
	r.Pid, r.Tid, r.Ppid = pid, pid, 1
	r.BinaryLen, r.CwdLen, r.ArgsLen = uint16(len(bin)), uint16(len(cwd)), uint32(len(args))
	r.CapEffective = 0x1ffffffffff
	off := int(unsafe.Offsetof(r.Data))
	r.Hdr = bpf.ProcessRecHeader{Op: observer.OpExec, Version: observer.RecordVersion, Size: uint32(off + len(bin) + len(cwd) + len(args)), Ktime: ktime}
	raw := append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&r)), off)...)
	return append(append(append(raw, bin...), cwd...), args...)
}

func rawExit(pid uint32, ktime uint64) []byte {
	x := bpf.ProcessExitRec{Pid: pid, Tid: pid}
	x.Hdr = bpf.ProcessRecHeader{Op: observer.OpExit, Version: observer.RecordVersion, Size: uint32(unsafe.Sizeof(x)), Ktime: ktime}
	return append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x))...)
}

// BenchmarkExecEventPipeline measures the user-space cost of one process's
// life: decode its exec and exit records, run them through the process cache
// and encode both events as JSON lines. One op = two events.
func BenchmarkExecEventPipeline(b *testing.B) {
	cache := process.NewCache(process.Options{Node: "bench", Clock: process.NewClock(time.Now(), 0), Grace: time.Nanosecond, Max: 65536})
	cache.Exec(&observer.Exec{Ktime: 1, Pid: 1, Binary: "/sbin/init"})
	enc := encoder.NewJSON(io.Discard)
	var dec observer.Decoder
	execs, exits := make([][]byte, 1024), make([][]byte, 1024)
	for i := range execs {
		execs[i] = rawExec(uint32(1000+i), uint64(10+2*i))
		exits[i] = rawExit(uint32(1000+i), uint64(11+2*i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(execs)
		rec, err := dec.Decode(execs[j])
		if err != nil {
			b.Fatal(err)
		}
		if err := enc.Encode(cache.Exec(rec.(*observer.Exec)).GetEventsResponse); err != nil {
			b.Fatal(err)
		}
		rec, err = dec.Decode(exits[j])
		if err != nil {
			b.Fatal(err)
		}
		if err := enc.Encode(cache.Exit(rec.(*observer.Exit)).GetEventsResponse); err != nil {
			b.Fatal(err)
		}
		if j == len(execs)-1 {
			cache.Collect(time.Now().Add(time.Hour))
		}
	}
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/event")
}
