package testutil

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// FileHelperEnv makes a test binary whose TestMain calls FileHelper a helper
// that does one file operation, "<op>:<path>", for tests that watch the
// kernel functions it calls:
//   - mmap: a shared, read-only mapping;
//   - mmap-rw: that, then a shared, writable one of the same read-only
//     descriptor, which mmap refuses after security_mmap_file passed it;
//   - truncate: truncate(2) to 0 bytes;
//   - readdir: read(2) on a directory, which fails after
//     security_file_permission passed it.
//
// Each operation prints its outcome, so that a test can check the kernel
// did what the expected events say.
const FileHelperEnv = "TETRAGON_TEST_FILE_HELPER"

// FileHelper runs the operation FileHelperEnv asks for; ok is false when it
// asks for none. The code is 1 when a step that must work did not.
func FileHelper() (code int, ok bool) {
	v := os.Getenv(FileHelperEnv)
	if v == "" {
		return 0, false
	}
	op, path, _ := strings.Cut(v, ":")
	switch op {
	case "mmap", "mmap-rw":
		f, err := os.Open(path)
		if err != nil {
			fmt.Println(err)
			return 1, true
		}
		b, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED)
		if err != nil {
			fmt.Println("mmap read:", err)
			return 1, true
		}
		fmt.Printf("mapped %q\n", strings.TrimRight(string(b), "\x00"))
		if op == "mmap-rw" {
			_, err = syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
			fmt.Println("mmap write:", err)
		}
	case "truncate":
		fmt.Println("truncate:", syscall.Truncate(path, 0))
	case "readdir":
		f, err := os.Open(path)
		if err != nil {
			fmt.Println(err)
			return 1, true
		}
		_, err = syscall.Read(int(f.Fd()), make([]byte, 16))
		fmt.Println("read:", err)
	default:
		fmt.Println("unknown helper operation", op)
		return 1, true
	}
	return 0, true
}
