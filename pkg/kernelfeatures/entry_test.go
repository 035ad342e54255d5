package kernelfeatures

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// TestEntryFileOffset checks the uprobe offset by reading the same bytes
// from the executable file and from this process's memory mapping of it.
func TestEntryFileOffset(t *testing.T) {
	off, err := entryFileOffset(selfExe)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink(selfExe)
	if err != nil {
		t.Fatal(err)
	}

	fromFile := make([]byte, 32)
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(fromFile, int64(off)); err != nil {
		t.Fatal(err)
	}

	addr := mappedAddress(t, exe, off)
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	fromMem := make([]byte, len(fromFile))
	if _, err := mem.ReadAt(fromMem, int64(addr)); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !bytes.Equal(fromFile, fromMem) {
		t.Fatalf("file offset %#x holds % x, mapped at %#x holds % x", off, fromFile, addr, fromMem)
	}
}

// mappedAddress finds where file offset off of path is mapped executable.
func mappedAddress(t *testing.T, path string, off uint64) uint64 {
	t.Helper()
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		var start, end, mapOff uint64
		var perms, dev, inode, file string
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x %s %x %s %s %s", &start, &end, &perms, &mapOff, &dev, &inode, &file); err != nil {
			continue
		}
		if file == path && strings.Contains(perms, "x") && off >= mapOff && off < mapOff+(end-start) {
			return start + off - mapOff
		}
	}
	t.Fatalf("offset %#x of %s is not mapped executable", off, path)
	return 0
}
