// Package regfile reads files the agent and tetra are told to read
// (policies, configuration) without ever blocking on them: a FIFO, a
// device or a socket put where a file is expected is refused with an error
// naming the path, instead of hanging the reader (a FIFO without a writer)
// or filling its memory (/dev/zero).
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular means the path is not a regular file (after symlinks).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge means the file holds more than the reader's limit.
var ErrTooLarge = errors.New("file too large")

// Read returns the content of the regular file at path, at most limit
// bytes. It opens with O_NONBLOCK, so that opening a FIFO returns at once
// instead of waiting for a writer, and checks the opened file's type
// before reading a byte. A directory is refused with an error wrapping
// ErrNotRegular too; errors from open (fs.ErrNotExist...) are wrapped as
// they are.
func Read(path string, limit int64) ([]byte, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// one byte past the limit tells "at" from "over" without reading a
	// huge file whole
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}

// Open opens the regular file at path for reading without blocking; see
// Read. The caller closes the file.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, Kind(st.Mode()))
	}
	return f, nil
}

// Kind names a file type for error messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "regular file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "irregular file"
}
