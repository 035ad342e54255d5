package observer

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/tetragon-lite/tetragon/bpf"
)

// loaderRecord builds a loader record as bpf/loader.c writes it: the fixed
// part, then the path's bytes, nothing more.
func loaderRecord(pid uint32, path string, buildID []byte) []byte {
	var r bpf.LoaderLoaderRec
	off := int(unsafe.Offsetof(r.Path))
	r.Hdr.Op, r.Hdr.Version, r.Hdr.Size, r.Hdr.Ktime = OpLoader, RecordVersion, uint32(off+len(path)), 42
	r.Pid, r.Tid = pid, pid+1
	r.BuildIdSize = uint32(copy(r.BuildId[:], buildID))
	r.PathLen = uint32(len(path))
	return append(bytes.Clone(asBytes(&r)[:off]), path...)
}

func TestDecodeLoader(t *testing.T) {
	id := []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	var d Decoder
	rec, err := d.Decode(loaderRecord(7, "/usr/lib/x86_64-linux-gnu/libc.so.6", id))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := rec.(*Loader)
	if !ok {
		t.Fatalf("decoded %T, want *Loader", rec)
	}
	if l.Pid != 7 || l.Tid != 8 || l.Ktime != 42 || l.Path != "/usr/lib/x86_64-linux-gnu/libc.so.6" || !bytes.Equal(l.BuildID, id) {
		t.Errorf("decoded %+v", l)
	}

	// a build id of another size (an 8-byte one, say) keeps its size
	rec, err = d.Decode(loaderRecord(7, "/a", id[:8]))
	if err != nil || !bytes.Equal(rec.(*Loader).BuildID, id[:8]) {
		t.Errorf("8-byte build id: %+v %v", rec, err)
	}

	bad := loaderRecord(7, "/lib/x.so", id)
	// the header claims fewer bytes than the path needs
	short := bytes.Clone(bad)
	short[4] -= 2
	if _, err := d.Decode(short); !errors.Is(err, errMalformed) {
		t.Errorf("path beyond the record: %v, want malformed", err)
	}
	// a build id longer than its array
	long := bytes.Clone(bad)
	long[int(unsafe.Offsetof(bpf.LoaderLoaderRec{}.BuildIdSize))] = 21
	if _, err := d.Decode(long); !errors.Is(err, errMalformed) {
		t.Errorf("build id of 21 bytes: %v, want malformed", err)
	}
	// cut inside the fixed part
	if _, err := d.Decode(bad[:20]); !errors.Is(err, errMalformed) {
		t.Errorf("cut record: %v, want malformed", err)
	}
}

// FuzzDecodeLoader: loader records of any content decode or fail, never
// reading beyond what they were given.
func FuzzDecodeLoader(f *testing.F) {
	f.Add(loaderRecord(1, "/usr/lib/x86_64-linux-gnu/libc.so.6", []byte("0123456789abcdefghij")))
	f.Add(loaderRecord(1, "", nil))
	f.Add(loaderRecord(1, "/\xff\x00x", []byte{1}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Decoder
		rec, err := d.Decode(raw)
		if err == nil && rec == nil {
			t.Fatal("nil record without error")
		}
		if l, ok := rec.(*Loader); ok && len(l.Path)+len(l.BuildID) > len(raw) {
			t.Fatal("decoded more bytes than given")
		}
	})
}
