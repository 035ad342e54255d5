package kube

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// SyncTimeout bounds the wait for the first list of pods and of policies
// at start: an agent that cannot read them does not report ready.
const SyncTimeout = time.Minute

// Agent is the Kubernetes mode of one agent: the pods of its node and the
// cluster's policies.
type Agent struct {
	log      zerolog.Logger
	node     string
	pods     *Pods
	policies *Policies
	// cgroups finds the cgroups of the pods' containers, for scoped
	// policies (Cgroups)
	cgroups *cgroupTree
}

// New returns the Kubernetes mode, or nil (and no error) when there is no
// Kubernetes: no kubeconfig and not in a pod.
func New(log zerolog.Logger, kubeconfig, node string, reg Registry) (*Agent, error) {
	cfg, ok, err := RestConfig(kubeconfig)
	if err != nil || !ok {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	log.Info().Str("api", cfg.Host).Str("node", node).Msg("Kubernetes mode: watching TracingPolicy objects and the pods of this node")
	return &Agent{
		log:      log,
		node:     node,
		pods:     NewPods(log, cs, node),
		policies: NewPolicies(log, dc, reg, newStatusEvents(cs, node)),
		cgroups:  &cgroupTree{},
	}, nil
}

// OnPodsChange makes f be called whenever the containers of the node's
// pods change: what Cgroups answers may then differ.
func (a *Agent) OnPodsChange(f func()) { a.pods.OnChange(f) }

// Start runs the watches under g and waits until the node's pods are
// listed, for at most SyncTimeout.
func (a *Agent) Start(ctx context.Context, g *errgroup.Group) error {
	g.Go(func() error { return a.pods.Run(ctx) })
	wctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	if !a.pods.WaitSynced(wctx) {
		return fmt.Errorf("listing the pods of node %q did not finish within %s (is --node-name the node's name, and may the agent list pods?)", a.node, SyncTimeout)
	}
	a.log.Info().Int("containers", a.pods.Len()).Msg("Pods of this node listed")
	// the policies after the pods: a policy limited to pods that loaded
	// before they were listed would replace the previous run's pinned
	// version with one that reaches none of them
	if err := a.policies.Start(ctx); err != nil {
		return err
	}
	g.Go(func() error { return a.policies.Run(ctx) })
	return nil
}

// WaitPolicies waits until the cluster's TracingPolicy objects are in the
// registry, for at most SyncTimeout.
func (a *Agent) WaitPolicies(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, SyncTimeout)
	defer cancel()
	if !a.policies.WaitSynced(wctx) {
		return fmt.Errorf("listing %s and %s did not finish within %s: are the CRDs installed (install/kubernetes) and may the agent list them?",
			TracingPolicies.GroupResource(), TracingPoliciesNamespaced.GroupResource(), SyncTimeout)
	}
	return nil
}

// Lookup names a container id: its container and pod, or a nil pod when no
// pod of the node has it.
func (a *Agent) Lookup(ctx context.Context, id string) (*api.Container, *api.Pod) {
	c, ok := a.pods.Lookup(ctx, id)
	if !ok {
		return nil, nil
	}
	ctr := &api.Container{Id: c.ID, Name: c.Name, Image: &api.Image{Id: c.ImageID, Name: c.Image}}
	if !c.Started.IsZero() {
		ctr.StartTime = timestamppb.New(c.Started)
	}
	return ctr, &api.Pod{
		Namespace: c.Namespace, Name: c.Pod, Uid: c.PodUID, Container: ctr,
		PodLabels: c.Labels, Workload: c.Workload, WorkloadKind: c.WorkloadKind,
	}
}
