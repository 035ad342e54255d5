package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// eventsServer streams its events to every GetEvents client, then ends the
// stream.
type eventsServer struct {
	api.UnimplementedFineGuidanceSensorsServer
	events []*api.GetEventsResponse
}

func (s eventsServer) GetEvents(_ *api.GetEventsRequest, stream api.FineGuidanceSensors_GetEventsServer) error {
	for _, ev := range s.events {
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	return nil
}

// rawTestEvents are events of sizes on either side of what gRPC pools
// (1 KiB) and of an HTTP/2 frame (16 KiB), so that some arrive in one
// frame's buffer and some are gathered from several.
func rawTestEvents() []*api.GetEventsResponse {
	var evs []*api.GetEventsResponse
	for i, n := range []int{0, 10, 900, 2000, 5000, 15000, 17000, 40000, 100, 3000, 70000, 2500} {
		evs = append(evs, &api.GetEventsResponse{
			NodeName: "node",
			Event: &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{
				Process: &api.Process{Binary: "/bin/" + strings.Repeat(string(rune('a'+i)), n)},
			}},
		})
	}
	return evs
}

// TestGetEventsRaw receives events as bytes kept in gRPC's buffers: each is
// byte for byte the message sent, while the events before it are still
// held, and after they are given back (their buffers reused).
func TestGetEventsRaw(t *testing.T) {
	sent := rawTestEvents()
	// two rounds: the second one's messages land in buffers the first freed
	sent = append(sent, rawTestEvents()...)
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, eventsServer{events: sent})
	go s.Serve(l)
	t.Cleanup(s.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := GetEventsRaw(ctx, conn, &api.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// check compares the events held, all at once, with those sent, then
	// gives their buffers back
	check := func(round string, held []RawEvent, sent []*api.GetEventsResponse) {
		t.Helper()
		for j, ev := range held {
			want, err := proto.Marshal(sent[j])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ev.Bytes(), want) {
				t.Fatalf("event %d of the %s round (%d bytes sent): received %d bytes, not the message", j, round, len(want), len(ev.Bytes()))
			}
			ev.Free()
		}
	}
	var held []RawEvent
	half := len(sent) / 2
	for i := range sent {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		held = append(held, ev)
		if i == half-1 {
			check("first", held, sent[:half])
			held = held[:0]
		}
	}
	check("second", held, sent[half:])
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}
