package observer

import (
	"fmt"
	"unsafe"

	"github.com/tetragon-lite/tetragon/bpf"
)

// OpLoader is the loader sensor's record (bpf/loader.c).
const OpLoader = 5

// Loader is a decoded loader record: process Pid (thread Tid) mapped the
// ELF file at Path, whose build id is BuildID.
type Loader struct {
	Ktime    uint64
	Pid, Tid uint32
	BuildID  []byte
	// Path is the file's path as the mapping process sees it (the kernel's
	// d_path from that process's root), possibly not valid UTF-8.
	Path string
}

func decodeLoader(raw []byte) (*Loader, error) {
	var r bpf.LoaderLoaderRec
	pathOff := int(unsafe.Offsetof(r.Path))
	if len(raw) < pathOff {
		return nil, fmt.Errorf("%w: loader record of %d bytes, want at least %d", errMalformed, len(raw), pathOff)
	}
	copy(asBytes(&r), raw[:pathOff])
	if int(r.BuildIdSize) > len(r.BuildId) {
		return nil, fmt.Errorf("%w: loader build id of %d bytes, at most %d", errMalformed, r.BuildIdSize, len(r.BuildId))
	}
	n := int(r.PathLen)
	if n > len(r.Path) || pathOff+n > len(raw) {
		return nil, fmt.Errorf("%w: loader path of %d bytes exceeds the record", errMalformed, n)
	}
	return &Loader{
		Ktime: r.Hdr.Ktime, Pid: r.Pid, Tid: r.Tid,
		BuildID: append([]byte(nil), r.BuildId[:r.BuildIdSize]...),
		Path:    string(raw[pathOff : pathOff+n]),
	}, nil
}
