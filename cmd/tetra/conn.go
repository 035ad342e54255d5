package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/tetragon-lite/tetragon/pkg/client"
)

// defaultServerAddress is where the agent serves its API in the appliance.
const defaultServerAddress = "/var/run/tetragon/tetragon.sock"

// defaultTimeout bounds connecting, and unary calls, when no timeout is set.
const defaultTimeout = 5 * time.Second

// callTimeout is opts.timeout parsed (a Go duration such as "10s").
func (o *rootOptions) callTimeout() (time.Duration, error) {
	if o.timeout == "" {
		return defaultTimeout, nil
	}
	d, err := time.ParseDuration(o.timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid timeout %q: want a positive duration such as 10s", o.timeout)
	}
	return d, nil
}

// dial connects to the agent, giving up after the timeout. The returned
// connection is not bound to that timeout.
func (o *rootOptions) dial(ctx context.Context) (*grpc.ClientConn, error) {
	d, err := o.callTimeout()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return client.Dial(ctx, o.serverAddress)
}

// rpcError words a gRPC error for people: the server's message and the code
// name instead of "rpc error: code = ... desc = ...".
func rpcError(action string, err error) error {
	if st, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s (%s)", action, st.Message(), st.Code())
	}
	return fmt.Errorf("%s: %w", action, err)
}
