package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is the pipe buffer asked for when tetra's output is a pipe: the
// kernel's default (64 KiB) holds about a dozen JSON events, so a consumer
// that reads a little late blocks tetra, and each side then wakes the other
// every few events. 1 MiB is the default fs.pipe-max-size, the most an
// unprivileged process may ask.
const pipeSize = 1 << 20

// growPipe enlarges the pipe w writes to, if it is one. Best effort: a
// smaller pipe still works, it only costs more wake-ups.
func growPipe(w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if n, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && n < pipeSize {
			_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
		}
	})
}
