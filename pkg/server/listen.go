package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// ErrInUse means another process serves on the socket.
var ErrInUse = errors.New("address in use")

// MaxConnections bounds the API's open connections. Past it, new ones wait
// in the kernel's backlog, costing the agent nothing: 20,200 half-open
// connections once took every file descriptor the agent had, and with
// them its policy directory reads and policy loads.
const MaxConnections = 256

// Listen opens the API listener, which accepts at most MaxConnections
// connections at a time. address is a unix socket path ("/path" or
// "unix:///path"), created with mode 0600, or host:port, which must be a
// loopback address: the API can kill processes through policies, so it is
// never exposed beyond the host by accident.
func Listen(address string) (net.Listener, error) {
	l, err := listen(address)
	if err != nil {
		return nil, err
	}
	return netutil.LimitListener(l, MaxConnections), nil
}

func listen(address string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(address, "unix://")
	if isUnix || strings.HasPrefix(address, "/") {
		return listenUnix(path)
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("server address %q: want a socket path or host:port: %w", address, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("server address %q: only loopback addresses are allowed", address)
		}
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", address, err)
	}
	return l, nil
}

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: %w: another tetragon is running (stop it, or pass --server-address)", path, ErrInUse)
		}
		// a stale socket from an agent that died
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restricting socket %s: %w", path, err)
	}
	return l, nil
}
