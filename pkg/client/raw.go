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

// Recv returns the next event. Its bytes stay in gRPC's receive buffer
// rather than being copied out (a copy and an allocation of a few KB an
// event were a tenth of tetra's CPU at 100,000 events/s): the caller
// calls Free once it is done with them. The error is the stream's, io.EOF
// at its end.
func (r *RawEvents) Recv() (RawEvent, error) {
	var m RawEvent
	if err := r.stream.RecvMsg(&m); err != nil {
		return RawEvent{}, err
	}
	return m, nil
}

// RawEvent is one event's wire bytes (a GetEventsResponse), undecoded.
type RawEvent struct {
	data mem.BufferSlice
	b    []byte
}

// Bytes returns the event's wire bytes, valid until Free. They are gRPC's
// buffer: read them, never write to them.
func (e RawEvent) Bytes() []byte { return e.b }

// Free gives the bytes back to gRPC's buffer pool; Bytes must not be used
// after. An event that is never freed is left to the garbage collector.
func (e RawEvent) Free() { e.data.Free() }

// rawCodec is gRPC's proto codec, except that a RawEvent gets the bytes.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*RawEvent); ok {
		// gRPC frees data once Unmarshal returns: MaterializeToBuffer
		// keeps a reference of our own. A message within one HTTP/2 frame
		// (an event is a few KB, a frame up to 16 KB) is one buffer, kept
		// as it is; one that spans frames is gathered into a pooled one.
		m.data = mem.BufferSlice{data.MaterializeToBuffer(mem.DefaultBufferPool())}
		m.b = m.data[0].ReadOnlyData()
		return nil
	}
	if err := c.proto.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %T: %w", v, err)
	}
	return nil
}

func (c rawCodec) Name() string { return c.proto.Name() }
