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
func (s *Service) DeleteTracingPolicy(_ context.Context, req *api.DeleteTracingPolicyRequest) (*api.DeleteTracingPolicyResponse, error) {
	if err := s.byName(req.GetName(), req.GetNamespace(), Policies.Delete); err != nil {
		return nil, err
	}
	return &api.DeleteTracingPolicyResponse{}, nil
}

// EnableTracingPolicy loads a disabled policy again.
func (s *Service) EnableTracingPolicy(_ context.Context, req *api.EnableTracingPolicyRequest) (*api.EnableTracingPolicyResponse, error) {
	if err := s.byName(req.GetName(), req.GetNamespace(), Policies.Enable); err != nil {
		return nil, err
	}
	return &api.EnableTracingPolicyResponse{}, nil
}

// DisableTracingPolicy unloads a policy but keeps it listed.
func (s *Service) DisableTracingPolicy(_ context.Context, req *api.DisableTracingPolicyRequest) (*api.DisableTracingPolicyResponse, error) {
	if err := s.byName(req.GetName(), req.GetNamespace(), Policies.Disable); err != nil {
		return nil, err
	}
	return &api.DisableTracingPolicyResponse{}, nil
}

// byName applies op to the policy called name. Every policy here is
// cluster-wide in Tetragon's terms: a namespaced name matches none, rather
// than acting on a global policy of the same name.
func (s *Service) byName(name, namespace string, op func(Policies, string) error) error {
	p, err := s.policyAPI()
	if err != nil {
		return err
	}
	if namespace != "" {
		return status.Errorf(codes.NotFound, "policy %q in namespace %q: this agent has no namespaced policies", name, namespace)
	}
	return policyError(op(p, name))
}
