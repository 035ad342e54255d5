package testutil

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// io_uring's ABI (include/uapi/linux/io_uring.h): what one request on a
// fresh ring needs. x/sys/unix has the system calls' numbers only.
const (
	uringOffSQRing  = 0
	uringOffCQRing  = 0x8000000
	uringOffSQEs    = 0x10000000
	uringEnterWait  = 1 // IORING_ENTER_GETEVENTS
	uringSingleMmap = 1 // IORING_FEAT_SINGLE_MMAP

	// the new path's directory, AT_FDCWD, in the request's unsigned len
	atFDCWD = uint32(1<<32 + unix.AT_FDCWD)

	uringOpRenameat = 35 // IORING_OP_RENAMEAT
	uringOpUnlinkat = 36 // IORING_OP_UNLINKAT
)

type uringSQOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type uringCQOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

type uringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	Resv                                                                   [3]uint32
	SQOff                                                                  uringSQOffsets
	CQOff                                                                  uringCQOffsets
}

// uringSQE is struct io_uring_sqe, as a rename or unlink fills it.
type uringSQE struct {
	Opcode, Flags uint8
	Ioprio        uint16
	Fd            int32
	Addr2         uint64 // the new path (renameat)
	Addr          uint64 // the path
	Len           uint32 // the new path's directory fd (renameat)
	OpFlags       uint32
	UserData      uint64
	BufIndex      uint16
	Personality   uint16
	SpliceFdIn    int32
	Addr3         uint64
	Pad           uint64
}

// UringRename renames oldpath to newpath with one io_uring request,
// which makes no rename system call: the rename runs in the kernel's
// io_uring worker. It skips the test when the kernel refuses io_uring.
func UringRename(t testing.TB, oldpath, newpath string) {
	t.Helper()
	o, err := unix.BytePtrFromString(oldpath)
	if err != nil {
		t.Fatal(err)
	}
	n, err := unix.BytePtrFromString(newpath)
	if err != nil {
		t.Fatal(err)
	}
	uringRequest(t, "rename "+oldpath, uringSQE{Opcode: uringOpRenameat, Fd: unix.AT_FDCWD,
		Addr: uint64(uintptr(unsafe.Pointer(o))), Len: atFDCWD, Addr2: uint64(uintptr(unsafe.Pointer(n)))},
		o, n)
}

// UringUnlink deletes path with one io_uring request, as UringRename
// renames.
func UringUnlink(t testing.TB, path string) {
	t.Helper()
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		t.Fatal(err)
	}
	uringRequest(t, "unlink "+path, uringSQE{Opcode: uringOpUnlinkat, Fd: unix.AT_FDCWD, Addr: uint64(uintptr(unsafe.Pointer(p)))}, p)
}

// uringRequest submits sqe on a ring of its own, waits for its
// completion and fails the test with what when the request failed. keep
// are the buffers sqe points to.
func uringRequest(t testing.TB, what string, sqe uringSQE, keep ...*byte) {
	t.Helper()
	var p uringParams
	r1, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		if errors.Is(errno, unix.ENOSYS) || errors.Is(errno, unix.EPERM) {
			t.Skipf("the kernel refuses io_uring (io_uring_setup: %v; kernel.io_uring_disabled)", errno)
		}
		t.Fatalf("io_uring_setup: %v", errno)
	}
	fd := int(r1)
	defer unix.Close(fd)
	sqSize := int(p.SQOff.Array + p.SQEntries*4)
	cqSize := int(p.CQOff.CQEs + p.CQEntries*16)
	if p.Features&uringSingleMmap != 0 {
		sqSize = max(sqSize, cqSize)
	}
	mmap := func(off int64, size int) []byte {
		t.Helper()
		b, err := unix.Mmap(fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			t.Fatalf("mapping the io_uring at %#x: %v", off, err)
		}
		t.Cleanup(func() { unix.Munmap(b) })
		return b
	}
	sq := mmap(uringOffSQRing, sqSize)
	cq := sq
	if p.Features&uringSingleMmap == 0 {
		cq = mmap(uringOffCQRing, cqSize)
	}
	sqes := mmap(uringOffSQEs, int(p.SQEntries)*int(unsafe.Sizeof(sqe)))
	u32 := func(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

	tail := atomic.LoadUint32(u32(sq, p.SQOff.Tail))
	slot := tail & *u32(sq, p.SQOff.RingMask)
	*(*uringSQE)(unsafe.Pointer(&sqes[slot*uint32(unsafe.Sizeof(sqe))])) = sqe
	*u32(sq, p.SQOff.Array+slot*4) = slot
	atomic.StoreUint32(u32(sq, p.SQOff.Tail), tail+1)
	// The first enter submits and waits. A signal (the Go runtime's
	// preemption, SIGURG) ends the wait early, and io_uring_enter then
	// returns the number it submitted, not EINTR: the completion may
	// still be ahead, so the wait is repeated, submitting nothing, until
	// it is there.
	toSubmit := uintptr(1)
	head := atomic.LoadUint32(u32(cq, p.CQOff.Head))
	for head == atomic.LoadUint32(u32(cq, p.CQOff.Tail)) {
		_, _, errno = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), toSubmit, 1, uringEnterWait, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			t.Fatalf("io_uring_enter (%s): %v", what, errno)
		}
		toSubmit = 0
	}
	// the kernel copied the paths when the request was submitted
	runtime.KeepAlive(keep)
	cqe := p.CQOff.CQEs + (head&*u32(cq, p.CQOff.RingMask))*16
	if res := int32(*u32(cq, cqe+8)); res < 0 {
		t.Fatalf("%s through io_uring: %v", what, unix.Errno(-res))
	}
	atomic.StoreUint32(u32(cq, p.CQOff.Head), head+1)
}
