package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// RawEvents is a GetEvents stream whose events are left in protobuf's wire
// format: a client that only re-encodes them (tetra getevents -o json)
// decodes what it needs, not every event in full. The request and the
// bytes on the wire are GetEvents' own.
type RawEvents struct {
	stream grpc.ClientStream
}

// GetEventsRaw opens a GetEvents stream of raw events.
func GetEventsRaw(ctx context.Context, conn grpc.ClientConnInterface, req *api.GetEventsRequest) (*RawEvents, error) {
	codec := rawCodec{proto: encoding.GetCodecV2(protocodec.Name)}
	stream, err := conn.NewStream(ctx, &api.FineGuidanceSensors_ServiceDesc.Streams[0],
		api.FineGuidanceSensors_GetEvents_FullMethodName, grpc.StaticMethod(), grpc.ForceCodecV2(codec))
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	return &RawEvents{stream: stream}, nil
}

// Recv returns the next event's wire bytes (a GetEventsResponse), which the
// caller owns; the error is the stream's, io.EOF at its end.
func (r *RawEvents) Recv() ([]byte, error) {
	var m rawMessage
	if err := r.stream.RecvMsg(&m); err != nil {
		return nil, err
	}
	return m.b, nil
}

// rawMessage receives a message's bytes undecoded.
type rawMessage struct{ b []byte }

// rawCodec is gRPC's proto codec, except that a rawMessage gets the bytes.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*rawMessage); ok {
		m.b = data.Materialize()
		return nil
	}
	if err := c.proto.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

func (c rawCodec) Name() string { return c.proto.Name() }
