package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"
)

// replacedCheckEvery is how often, at most, a write first checks that the
// path still names the file being written.
const replacedCheckEvery = time.Second

// lineFile is the export file as log shippers need it: lumberjack rotates
// it, and on top of that
//   - a line is written whole or not at all: a write that fails part way
//     (ENOSPC, EDQUOT, EIO) leaves part of a line, which is cut off again
//     before anything else is written, so no line is ever glued to the next;
//   - when the file is renamed or deleted by someone else, writing goes on
//     in a new file at the path instead of in the unlinked inode.
type lineFile struct {
	name string
	lj   *lumberjack.Logger
	log  zerolog.Logger

	// torn: a failed write may have left part of a line at the end
	torn bool
	// id is the file at name when it was last written (valid: known)
	id        fileID
	valid     bool
	nextCheck time.Time
}

type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: st.Dev, ino: st.Ino}, true
}

// Write writes p, one or more whole lines. On an error nothing of p stays
// in the file (as far as the file can be cut back) and 0 is returned.
func (f *lineFile) Write(p []byte) (int, error) {
	if now := time.Now(); !now.Before(f.nextCheck) {
		f.nextCheck = now.Add(replacedCheckEvery)
		f.reopenIfReplaced()
	}
	if f.torn {
		if err := f.cutPartialLine(); err != nil {
			return 0, fmt.Errorf("removing a partly written line from %s: %w", f.name, err)
		}
	}
	n, err := f.lj.Write(p)
	if err != nil {
		if n > 0 {
			f.torn = true
			// close, so the next write opens the cut file in append mode
			f.lj.Close()
			if cerr := f.cutPartialLine(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("removing the partly written line: %w", cerr))
			}
		}
		return 0, err
	}
	if !f.valid {
		if fi, serr := os.Stat(f.name); serr == nil {
			f.id, f.valid = idOf(fi)
			if fi.Mode()&fs.ModeNamedPipe != 0 {
				growFIFO(f.name)
			}
		}
	}
	return n, nil
}

// fifoSize is the pipe buffer the export asks for when its file is a FIFO
// (a log shipper reading it): the kernel's default, 64 KiB, holds about 40
// events, so at tens of thousands of events a second the exporter blocks
// whenever the reader is a little late, and its queue overflows. 1 MiB is
// the default fs.pipe-max-size.
const fifoSize = 1 << 20

// growFIFO enlarges the pipe of the FIFO at path, which the export has
// open (a pipe's size is the pipe's, whichever descriptor sets it). Best
// effort: a smaller pipe works, it only blocks the exporter sooner.
func growFIFO(path string) {
	// read and write: opening a FIFO so never waits for the other end
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if n, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil && n < fifoSize {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, fifoSize)
	}
}

// reopenIfReplaced closes the file when the path no longer names it: the
// next write then opens (or creates) the file at the path. lumberjack's own
// rotation also changes the file at the path; reopening is harmless then.
func (f *lineFile) reopenIfReplaced() {
	if !f.valid {
		return
	}
	fi, err := os.Stat(f.name)
	if err == nil {
		if id, ok := idOf(fi); ok && id == f.id {
			return
		}
	}
	f.log.Debug().Str("file", f.name).Msg("The export file was moved, replaced or deleted: writing to the file at its path")
	f.valid = false
	if err := f.lj.Close(); err != nil {
		f.log.Warn().Err(err).Str("file", f.name).Msg("Closing the replaced export file")
	}
}

// cutPartialLine truncates the file at the path after its last newline,
// with lumberjack's handle closed. Only regular files can be cut; for
// others (a FIFO) there is nothing to do.
func (f *lineFile) cutPartialLine() error {
	fd, err := os.OpenFile(f.name, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f.torn = false
		return nil
	}
	if err != nil {
		return err
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		f.torn = false
		return nil
	}
	end, err := lastLineEnd(fd, fi.Size())
	if err != nil {
		return err
	}
	if end != fi.Size() {
		if err := fd.Truncate(end); err != nil {
			return err
		}
	}
	f.torn = false
	return nil
}

// lastLineEnd returns the offset just past the last newline of the first
// size bytes of r (0 when there is none).
func lastLineEnd(r *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Close closes the file.
func (f *lineFile) Close() error { return f.lj.Close() }
