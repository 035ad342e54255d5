package kube

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/tetragon-lite/tetragon/pkg/policydir"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// The CRDs' resources (install/kubernetes/crds), Tetragon's group and
// version, so that Tetragon's policies apply unchanged.
var (
	TracingPolicies           = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpolicies"}
	TracingPoliciesNamespaced = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpoliciesnamespaced"}
)

// Registry is what the policies go to, and what tells their state;
// *policywatch.Registry is one.
type Registry interface {
	SyncSource(f policydir.File) (retry bool)
	RemoveSource(path string) (retry bool)
	StateSource
}

// Policies feeds the cluster's TracingPolicy objects to a Registry.
type Policies struct {
	log zerolog.Logger
	reg Registry
	// status reports each object's state on this node as an Event; nil:
	// none (a test without an API server)
	status   *statusEvents
	factory  dynamicinformer.DynamicSharedInformerFactory
	cluster  cache.SharedIndexInformer
	nsScoped cache.SharedIndexInformer

	mu sync.Mutex
	// pending: sources whose last sync or removal asked to be tried
	// again; nil value: a removal
	pending map[string]*unstructured.Unstructured
}

// NewPolicies returns a watcher of both CRDs; status, when not nil,
// reports each object's state on this node.
func NewPolicies(log zerolog.Logger, dc dynamic.Interface, reg Registry, status *statusEvents) *Policies {
	f := dynamicinformer.NewDynamicSharedInformerFactory(dc, 5*time.Minute)
	return &Policies{
		log:      log.With().Str("component", "kube-policies").Logger(),
		reg:      reg,
		status:   status,
		factory:  f,
		cluster:  f.ForResource(TracingPolicies).Informer(),
		nsScoped: f.ForResource(TracingPoliciesNamespaced).Informer(),
		pending:  map[string]*unstructured.Unstructured{},
	}
}

// Start starts the watches; WaitSynced tells when the first lists are in
// the registry.
func (p *Policies) Start(ctx context.Context) error {
	for _, inf := range []cache.SharedIndexInformer{p.cluster, p.nsScoped} {
		_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { p.sync(obj) },
			UpdateFunc: func(_, obj any) { p.sync(obj) },
			DeleteFunc: func(obj any) { p.remove(obj) },
		})
		if err != nil {
			return fmt.Errorf("watching TracingPolicy objects: %w", err)
		}
	}
	p.factory.Start(ctx.Done())
	return nil
}

// WaitSynced waits until both CRDs are listed and their objects handed to
// the registry.
func (p *Policies) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), p.cluster.HasSynced, p.nsScoped.HasSynced)
}

// Run retries what asked to be tried again, until ctx is done.
func (p *Policies) Run(ctx context.Context) error {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.factory.Shutdown()
			if p.status != nil {
				p.status.stop()
			}
			return nil
		case <-tick.C:
			p.mu.Lock()
			pending := p.pending
			p.pending = map[string]*unstructured.Unstructured{}
			p.mu.Unlock()
			for src, obj := range pending {
				if obj == nil {
					p.retryIf(src, nil, p.reg.RemoveSource(src))
				} else {
					p.sync(obj)
				}
			}
		}
	}
}

func (p *Policies) retryIf(src string, obj *unstructured.Unstructured, retry bool) {
	if !retry {
		return
	}
	p.mu.Lock()
	p.pending[src] = obj
	p.mu.Unlock()
}

// Source names an object as the registry and tetra tracingpolicy list show
// it.
func Source(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return "kubernetes:tracingpolicynamespaced/" + ns + "/" + obj.GetName()
	}
	return "kubernetes:tracingpolicy/" + obj.GetName()
}

func (p *Policies) sync(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	f := File(u)
	p.retryIf(f.Path, u, p.reg.SyncSource(f))
	if p.status != nil {
		p.status.report(p.reg, u)
	}
}

func (p *Policies) remove(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	src := Source(u)
	p.mu.Lock()
	delete(p.pending, src)
	p.mu.Unlock()
	p.retryIf(src, nil, p.reg.RemoveSource(src))
	if p.status != nil {
		p.status.forget(src)
	}
}

// File turns an object into what the registry loads: the policy parsed
// from the object's YAML (only apiVersion, kind, metadata name, namespace,
// labels and annotations, and spec: what a policy file has), with errors
// naming the object.
func File(u *unstructured.Unstructured) policydir.File {
	src := Source(u)
	doc := map[string]any{
		"apiVersion": u.GetAPIVersion(),
		"kind":       u.GetKind(),
	}
	meta := map[string]any{"name": u.GetName()}
	if ns := u.GetNamespace(); ns != "" {
		meta["namespace"] = ns
	}
	if l := u.GetLabels(); len(l) > 0 {
		meta["labels"] = l
	}
	if a := u.GetAnnotations(); len(a) > 0 {
		// kubectl's copy of the last applied object is no part of the policy
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
		if len(a) > 0 {
			meta["annotations"] = a
		}
	}
	doc["metadata"] = meta
	if spec, ok := u.Object["spec"]; ok {
		doc["spec"] = spec
	}
	data, err := yaml.Marshal(doc)
	f := policydir.File{Path: src, Hash: sha256.Sum256(data)}
	if err != nil {
		f.Err = fmt.Errorf("%s: %w", src, err)
		return f
	}
	f.Policies, f.Err = tp.Parse(src, data)
	return f
}
