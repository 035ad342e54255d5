// Package client connects to the agent's gRPC API.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// Endpoint is a parsed server address.
type Endpoint struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path or host:port.
	Address string
}

func (e Endpoint) String() string {
	if e.Network == "unix" {
		return e.Address
	}
	return e.Network + "://" + e.Address
}

// ParseAddress accepts a unix socket path (/path, ./path), unix:///path,
// unix:path, or host:port for TCP.
func ParseAddress(address string) (Endpoint, error) {
	switch {
	case address == "":
		return Endpoint{}, errors.New("empty server address")
	case strings.HasPrefix(address, "unix://"):
		return unixEndpoint(strings.TrimPrefix(address, "unix://"), address)
	case strings.HasPrefix(address, "unix:"):
		return unixEndpoint(strings.TrimPrefix(address, "unix:"), address)
	case strings.HasPrefix(address, "/"), strings.HasPrefix(address, "."):
		return Endpoint{Network: "unix", Address: address}, nil
	}
	hostPort := strings.TrimPrefix(address, "tcp://")
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || port == "" {
		return Endpoint{}, fmt.Errorf("invalid server address %q: want a unix socket path, unix:///path or host:port", address)
	}
	return Endpoint{Network: "tcp", Address: net.JoinHostPort(host, port)}, nil
}

func unixEndpoint(path, address string) (Endpoint, error) {
	if path == "" {
		return Endpoint{}, fmt.Errorf("invalid server address %q: no socket path", address)
	}
	return Endpoint{Network: "unix", Address: path}, nil
}

// Dial connects to the agent at address and waits, within ctx, until the
// connection is ready, so that a missing or dead agent is reported here, in
// plain words, rather than as an RPC error later. The credentials are
// insecure: the API is served on a local socket.
func Dial(ctx context.Context, address string) (*grpc.ClientConn, error) {
	ep, err := ParseAddress(address)
	if err != nil {
		return nil, err
	}
	d := &dialer{ep: ep}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(d.dial),
		// An event stream carries a few KB an event, tens of thousands a
		// second: a large window lets the agent write a whole batch
		// without waiting for a window update, and a large read buffer
		// takes it in a few reads, not one per event.
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(streamWindow),
		grpc.WithReadBufferSize(256 << 10),
	}
	if ep.Network == "unix" {
		opts = append(opts, grpc.WithAuthority("localhost"))
	}
	// passthrough: the dialer above resolves the endpoint itself.
	conn, err := grpc.NewClient("passthrough:///"+ep.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating client for %s: %w", ep, err)
	}
	if err := waitReady(ctx, conn); err != nil {
		conn.Close()
		if derr := d.lastError(); derr != nil {
			err = derr
		}
		return nil, &UnreachableError{Address: address, Err: err}
	}
	return conn, nil
}

// streamWindow is the HTTP/2 flow-control window of the client's streams
// and connection.
const streamWindow = 1 << 20

// UnreachableError says the agent could not be reached.
type UnreachableError struct {
	// Address is as the user gave it.
	Address string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the agent at %s: is tetragon running? (%v)", e.Address, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		switch s := conn.GetState(); s {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("connection %s", s)
		default:
			if !conn.WaitForStateChange(ctx, s) {
				return ctx.Err()
			}
		}
	}
}

// dialer remembers its last error: gRPC reports only "transient failure",
// while the user needs to read "no such file or directory" or "permission
// denied".
type dialer struct {
	ep  Endpoint
	mu  sync.Mutex
	err error
}

func (d *dialer) dial(ctx context.Context, _ string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, d.ep.Network, d.ep.Address)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return c, err
}

func (d *dialer) lastError() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
