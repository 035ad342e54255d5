package hooks

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// ttyHelperEnv makes the test binary a helper that opens a pseudo
// terminal and writes to its master and its slave (tty_write runs for
// both), and prints the slave's number.
const ttyHelperEnv = "TETRAGON_HOOKS_TTY_HELPER"

// ttyLong is the size of the helper's long write: more than the data an
// iov_iter argument reports (sensor.MaxIovIterData).
const ttyLong = 5000

// ttyLongData is the long write's content: no NUL, no newline, and no
// period shorter than the limit, so a cut at the wrong place shows.
func ttyLongData() []byte {
	b := make([]byte, ttyLong)
	for i := range b {
		b[i] = 'a' + byte(i%23)
	}
	return b
}

func ttyHelper() (code int, ok bool) {
	if os.Getenv(ttyHelperEnv) == "" {
		return 0, false
	}
	fail := func(what string, err error) (int, bool) {
		fmt.Printf("%s: %v\n", what, err)
		return 1, true
	}
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail("open /dev/ptmx", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fail("unlockpt", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fail("ptsname", err)
	}
	slave, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail("open the slave", err)
	}
	// the selector watches the slave: the master's write gives no event
	if _, err := unix.Write(master, []byte("master write\n")); err != nil {
		return fail("write to the master", err)
	}
	if _, err := unix.Write(slave, []byte("slave write\n")); err != nil {
		return fail("write to the slave", err)
	}
	// two segments (ITER_IOVEC): the first is reported
	if _, err := unix.Writev(slave, [][]byte{[]byte("first segment "), []byte("second segment\n")}); err != nil {
		return fail("writev to the slave", err)
	}
	if _, err := unix.Write(slave, ttyLongData()); err != nil {
		return fail("long write to the slave", err)
	}
	fmt.Println("survived", n)
	return 0, true
}

// tty.yaml (Tetragon's example) with a selector on the file written.
const ttyPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "tty"
spec:
  kprobes:
  - call: "tty_write"
    syscall: false
    args:
    - index: 0
      type: "kiocb"
    - index: 1
      type: "iov_iter"
      maxData: true
    selectors:
    - matchArgs:
      - index: 0
        operator: "Prefix"
        values:
        - "/dev/pts/"
`

// tty_write's iov_iter is reported as the bytes written: a write(2)'s
// buffer (ITER_UBUF), a writev(2)'s first segment (ITER_IOVEC), the first
// MaxIovIterData bytes of a longer write. The write to the pseudo
// terminal's master, which the selector does not match, gives no event.
func TestIovIterTTYWrite(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "kprobe")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	h.load(t, ttyPolicy)
	out, err := h.helperOutput(t, ttyHelperEnv, "1")
	if err != nil {
		t.Fatalf("helper: %v: %s", err, out)
	}
	var pts int
	if _, err := fmt.Sscanf(out, "survived %d", &pts); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	events := h.events(t)
	slave := fmt.Sprintf("file:/dev/pts/%d", pts)
	long := ttyLongData()[:sensor.MaxIovIterData]
	wantEvents(t, events,
		fmt.Sprintf("helper tty_write POST %s bytes:%q", slave, "slave write\n"),
		fmt.Sprintf("helper tty_write POST %s bytes:%q", slave, "first segment "),
		fmt.Sprintf("helper tty_write POST %s bytes:%q", slave, long))
	if got := events[2].kprobe.GetArgs()[1].GetBytesArg(); !bytes.Equal(got, long) {
		t.Fatalf("long write: %d bytes reported, want the first %d", len(got), len(long))
	}
}
