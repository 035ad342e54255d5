package client

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in   string
		want Endpoint
	}{
		{"/var/run/tetragon/tetragon.sock", Endpoint{"unix", "/var/run/tetragon/tetragon.sock"}},
		{"./t.sock", Endpoint{"unix", "./t.sock"}},
		{"unix:///var/run/t.sock", Endpoint{"unix", "/var/run/t.sock"}},
		{"unix:rel/t.sock", Endpoint{"unix", "rel/t.sock"}},
		{"localhost:54321", Endpoint{"tcp", "localhost:54321"}},
		{"127.0.0.1:54321", Endpoint{"tcp", "127.0.0.1:54321"}},
		{"[::1]:54321", Endpoint{"tcp", "[::1]:54321"}},
		{"tcp://localhost:1", Endpoint{"tcp", "localhost:1"}},
	}
	for _, tt := range tests {
		got, err := ParseAddress(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "localhost", "unix://", "unix:", "host:"} {
		if _, err := ParseAddress(bad); err == nil || !strings.Contains(err.Error(), "server address") {
			t.Errorf("ParseAddress(%q) error = %v", bad, err)
		}
	}
}

type versionServer struct {
	api.UnimplementedFineGuidanceSensorsServer
}

func (versionServer) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	return &api.GetVersionResponse{Version: "v1.2.3"}, nil
}

func serve(t *testing.T, l net.Listener) {
	t.Helper()
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, versionServer{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
}

func getVersion(t *testing.T, address string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, address)
	if err != nil {
		t.Fatalf("Dial(%q): %v", address, err)
	}
	defer conn.Close()
	v, err := api.NewFineGuidanceSensorsClient(conn).GetVersion(ctx, &api.GetVersionRequest{})
	if err != nil {
		t.Fatalf("GetVersion over %q: %v", address, err)
	}
	if v.GetVersion() != "v1.2.3" {
		t.Errorf("version %q", v.GetVersion())
	}
}

func TestDialUnixAndTCP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ul)
	getVersion(t, sock)
	getVersion(t, "unix://"+sock)

	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, tl)
	getVersion(t, tl.Addr().String())
}

func TestDialMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, sock)
	want := "cannot reach the agent at " + sock + ": is tetragon running? (dial unix " + sock + ": connect: no such file or directory)"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error does not wrap fs.ErrNotExist: %#v", err)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Address != sock {
		t.Errorf("not an UnreachableError for %s: %#v", sock, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failing took %v: a missing socket must fail at once", d)
	}
}

// A socket file left by a dead agent refuses connections.
func TestDialStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, "unix://"+sock)
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "is tetragon running?") {
		t.Fatalf("error %v, want connection refused", err)
	}
}

// A listener that never answers the HTTP/2 handshake: Dial gives up when
// ctx ends.
func TestDialTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, sock)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the agent") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want a deadline", err)
	}
}
