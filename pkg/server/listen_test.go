package server

import (
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestListenCapsConnections: 20,200 half-open connections once took every
// file descriptor the agent had. The listener holds at most MaxConnections;
// the rest wait in the kernel's backlog and get in as others close.
func TestListenCapsConnections(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	conns := make(chan net.Conn, MaxConnections+20)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns <- c
		}
	}()
	for range MaxConnections + 10 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for accepted.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// and no more than that, a moment later
		time.Sleep(200 * time.Millisecond)
		if got := accepted.Load(); got != want {
			t.Fatalf("accepted %d connections, want %d", got, want)
		}
	}
	waitFor(MaxConnections)
	(<-conns).Close()
	waitFor(MaxConnections + 1)
}
