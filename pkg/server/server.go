// Package server serves the agent's gRPC API.
package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/filters"
	"github.com/tetragon-lite/tetragon/pkg/version"
)

// StatusFunc reports the agent's state for GetHealth.
type StatusFunc func() *api.AgentStatus

// Service implements the FineGuidanceSensors API.
type Service struct {
	api.UnimplementedFineGuidanceSensorsServer
	bus       *eventbus.Bus
	status    StatusFunc
	queueSize int
	log       zerolog.Logger
	policies  Policies
}

// NewService returns the API over bus.
func NewService(bus *eventbus.Bus, status StatusFunc, queueSize int, log zerolog.Logger) *Service {
	return &Service{bus: bus, status: status, queueSize: queueSize, log: log}
}

// handshakeTimeout bounds a new connection's HTTP/2 handshake: a client
// that connects and sends nothing holds one of MaxConnections for this
// long, not for the default 120 s.
const handshakeTimeout = 10 * time.Second

// Register builds a gRPC server with the service and reflection (so grpcurl works).
func (s *Service) Register() *grpc.Server {
	// WriteBufferSize: gRPC's writer writes what it has queued when its
	// buffer fills or nothing more is queued; a batch of events (a few KB
	// each) then goes out in a write or two, not one per 32 KiB (the
	// default). SharedWriteBuffer: a connection holds the buffer only
	// while it writes, not for its lifetime (up to MaxConnections of them).
	g := grpc.NewServer(grpc.ConnectionTimeout(handshakeTimeout), grpc.ForceServerCodecV2(newWireCodec()),
		grpc.WriteBufferSize(256<<10), grpc.SharedWriteBuffer(true))
	api.RegisterFineGuidanceSensorsServer(g, s)
	reflection.Register(g)
	return g
}

// GetEvents streams events matching the request's filters until the client
// goes away or the agent stops.
func (s *Service) GetEvents(req *api.GetEventsRequest, stream api.FineGuidanceSensors_GetEventsServer) error {
	if err := unservedFields(req); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	m, err := filters.New(req.GetAllowList(), req.GetDenyList())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	// Filters run here, in this client's goroutine, not in the bus: a
	// client's regexes must never slow the agent or other clients.
	name := "getevents"
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil && p.Addr.String() != "" {
		name += " " + p.Addr.String()
	}
	sub := s.bus.SubscribeBatches(name, s.queueSize, nil)
	defer s.bus.Unsubscribe(sub)
	s.log.Debug().Msg("GetEvents client connected")
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case batch, ok := <-sub.Batches():
			if !ok {
				return nil
			}
			err := s.send(stream, m, batch)
			sub.Done(len(batch))
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// send sends the events of batch that m matches. gRPC's writer goroutine
// writes whatever was queued since it last woke in one write, so a batch
// sent back to back costs about one socket write, not one per event.
func (s *Service) send(stream api.FineGuidanceSensors_GetEventsServer, m *filters.Matcher, batch []*eventbus.Event) error {
	for _, ev := range batch {
		if !m.Match(ev.GetEventsResponse) {
			continue
		}
		// the event's bytes, built once for every client and the
		// exporter, not once per client
		b, err := ev.Wire()
		if err != nil {
			return fmt.Errorf("encoding event: %w", err)
		}
		if err := stream.SendMsg(encoded(b)); err != nil {
			return fmt.Errorf("sending event: %w", err)
		}
	}
	return nil
}

// GetHealth reports whether the agent runs and is ready, with its counters.
func (s *Service) GetHealth(_ context.Context, _ *api.GetHealthStatusRequest) (*api.GetHealthStatusResponse, error) {
	st := s.status()
	res := api.HealthStatusResult_HEALTH_STATUS_RUNNING
	details := "running"
	if !st.GetReady() {
		res, details = api.HealthStatusResult_HEALTH_STATUS_STOPPED, "not ready"
		if why := st.GetNotReady(); len(why) > 0 {
			details = strings.Join(why, "; ")
		}
	}
	return &api.GetHealthStatusResponse{
		HealthStatus: []*api.HealthStatus{{Event: api.HealthStatusType_HEALTH_STATUS_TYPE_STATUS, Status: res, Details: details}},
		Agent:        st,
	}, nil
}

// GetVersion reports the agent's version.
func (s *Service) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	return &api.GetVersionResponse{Version: version.Version}, nil
}

// unservedFields refuses a request that sets fields this agent does not
// know: a Tetragon client may ask for what Tetragon's schema has and this
// agent does not serve (field filters, aggregation, label or namespace
// filters), and streaming everything instead would be a filter silently
// ignored.
func unservedFields(req *api.GetEventsRequest) error {
	if u := req.ProtoReflect().GetUnknown(); len(u) > 0 {
		return fmt.Errorf("GetEventsRequest sets fields this agent does not serve (field %s)", fieldNumbers(u))
	}
	for _, list := range [][]*api.Filter{req.GetAllowList(), req.GetDenyList()} {
		for _, f := range list {
			if u := f.ProtoReflect().GetUnknown(); len(u) > 0 {
				return fmt.Errorf("a filter sets fields this agent does not serve (Filter field %s)", fieldNumbers(u))
			}
		}
	}
	return nil
}

// fieldNumbers lists the field numbers in raw wire-format bytes.
func fieldNumbers(b []byte) string {
	var nums []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			break
		}
		b = b[m:]
		nums = append(nums, strconv.Itoa(int(num)))
	}
	return strings.Join(nums, ", ")
}
