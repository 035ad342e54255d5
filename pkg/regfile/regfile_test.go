package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadRefusesWhatIsNotAFile: a FIFO without a writer (a symlink to
// one too), /dev/zero and a directory are refused at once with their
// kind; a file over the limit is refused after limit+1 bytes.
func TestReadRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "x.yaml")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 101), 0o644)
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("0123456789"), 0o644)

	for _, c := range []struct {
		path, want string
		is         error
	}{
		{fifo, fifo + ": not a regular file (fifo)", ErrNotRegular},
		{link, link + ": not a regular file (fifo)", ErrNotRegular},
		{"/dev/zero", "/dev/zero: not a regular file (character device)", ErrNotRegular},
		{dir, dir + ": not a regular file (directory)", ErrNotRegular},
		{big, big + ": file too large: more than 100 bytes", ErrTooLarge},
		{filepath.Join(dir, "missing"), "no such file or directory", fs.ErrNotExist},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Read(c.path, 100)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Read(%s): %v, want %q (%v)", c.path, err, c.want, c.is)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) blocks", c.path)
		}
	}
	if data, err := Read(good, 10); err != nil || string(data) != "0123456789" {
		t.Fatalf("a file exactly at the limit: %q, %v", data, err)
	}
}
