package testutil

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// DrainRing returns the records rd holds now, in order, waiting quiet for
// each: it returns once none came for that long.
func DrainRing(t testing.TB, rd *ringbuf.Reader, quiet time.Duration) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		rd.SetDeadline(time.Now().Add(quiet))
		// Read gives each record memory of its own
		r, err := rd.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.RawSample)
	}
}
