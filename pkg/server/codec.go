package server

import (
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// encoded is a message already in protobuf's wire format: an event's
// bytes, built once however many clients receive it (eventbus.Event.Wire).
type encoded []byte

// wireCodec is gRPC's proto codec, except that it sends encoded messages
// as they are. Clients see the bytes proto.Marshal writes (the event's
// wire bytes are proto.Marshal's, eventwire's test holds them to it), so
// nothing on the wire changes.
type wireCodec struct{ proto encoding.CodecV2 }

func newWireCodec() wireCodec { return wireCodec{proto: encoding.GetCodecV2(protocodec.Name)} }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(encoded); ok {
		// shared bytes: a SliceBuffer is never recycled into a pool
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c wireCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c wireCodec) Name() string { return c.proto.Name() }
