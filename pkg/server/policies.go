package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/policywatch"
)

// Policies is what the tracing-policy calls act on; *policywatch.Registry
// is one.
type Policies interface {
	ListAPI() *api.ListTracingPoliciesResponse
	Add(yaml []byte) (string, error)
	Delete(name string) error
	Enable(name string) error
	Disable(name string) error
}

// ServePolicies enables the tracing-policy calls; without it they answer
// Unimplemented.
func (s *Service) ServePolicies(p Policies) { s.policies = p }

func (s *Service) policyAPI() (Policies, error) {
	if s.policies == nil {
		return nil, status.Error(codes.Unimplemented, "this agent serves no policy API")
	}
	return s.policies, nil
}

// policyError maps registry errors to gRPC codes, so clients can tell a
// missing policy from a conflict from a bad one.
func policyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, policywatch.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, hooks.ErrConflict):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, policywatch.ErrNotKept):
		// the request was fine; the agent's API policy directory is not
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.InvalidArgument, err.Error())
}

// ListTracingPolicies lists every known policy with its state and hooks.
func (s *Service) ListTracingPolicies(context.Context, *api.ListTracingPoliciesRequest) (*api.ListTracingPoliciesResponse, error) {
	p, err := s.policyAPI()
	if err != nil {
		return nil, err
	}
	return p.ListAPI(), nil
}

// AddTracingPolicy loads a policy and returns once it enforces.
func (s *Service) AddTracingPolicy(_ context.Context, req *api.AddTracingPolicyRequest) (*api.AddTracingPolicyResponse, error) {
	p, err := s.policyAPI()
	if err != nil {
		return nil, err
	}
	name, err := p.Add([]byte(req.GetYaml()))
	if err != nil {
		return nil, policyError(err)
	}
	return &api.AddTracingPolicyResponse{Name: name}, nil
}

// DeleteTracingPolicy unloads a policy added through the API.
func (s *Service) DeleteTracingPolicy(_ context.Context, req *api.TracingPolicyNameRequest) (*api.TracingPolicyNameResponse, error) {
	return s.byName(req, Policies.Delete)
}

// EnableTracingPolicy loads a disabled policy again.
func (s *Service) EnableTracingPolicy(_ context.Context, req *api.TracingPolicyNameRequest) (*api.TracingPolicyNameResponse, error) {
	return s.byName(req, Policies.Enable)
}

// DisableTracingPolicy unloads a policy but keeps it listed.
func (s *Service) DisableTracingPolicy(_ context.Context, req *api.TracingPolicyNameRequest) (*api.TracingPolicyNameResponse, error) {
	return s.byName(req, Policies.Disable)
}

func (s *Service) byName(req *api.TracingPolicyNameRequest, op func(Policies, string) error) (*api.TracingPolicyNameResponse, error) {
	p, err := s.policyAPI()
	if err != nil {
		return nil, err
	}
	if err := op(p, req.GetName()); err != nil {
		return nil, policyError(err)
	}
	return &api.TracingPolicyNameResponse{}, nil
}
