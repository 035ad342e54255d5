// Package server serves the agent's gRPC API.
package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

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

// Register builds a gRPC server with the service and reflection (so grpcurl works).
func (s *Service) Register() *grpc.Server {
	g := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(g, s)
	reflection.Register(g)
	return g
}

// GetEvents streams events matching the request's filters until the client
// goes away or the agent stops.
func (s *Service) GetEvents(req *api.GetEventsRequest, stream api.FineGuidanceSensors_GetEventsServer) error {
	m, err := filters.New(req.GetAllowList(), req.GetDenyList())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	// Filters run here, in this client's goroutine, not in the bus: a
	// client's regexes must never slow the agent or other clients.
	sub := s.bus.Subscribe(s.queueSize, nil)
	defer s.bus.Unsubscribe(sub)
	s.log.Debug().Msg("GetEvents client connected")
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C():
			if !ok {
				return nil
			}
			if !m.Match(ev) {
				continue
			}
			if err := stream.Send(ev); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("sending event: %w", err)
			}
		}
	}
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
