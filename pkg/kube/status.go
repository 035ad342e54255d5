package kube

import (
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/tetragon-lite/tetragon/pkg/policywatch"
)

// Event reasons: what a TracingPolicy object's events say of it on a node
// (kubectl describe tracingpolicy NAME, kubectl get events).
const (
	ReasonEnforced    = "Enforced"
	ReasonNotEnforced = "NotEnforced"
	// ReasonEditRefused: the last edit does not load; the version before
	// it still enforces
	ReasonEditRefused = "EditRefused"
)

// StateSource is what tells a policy object's state on this node;
// *policywatch.Registry is one.
type StateSource interface {
	Problems(paths ...string) []policywatch.Problem
	List() []policywatch.Entry
}

// statusEvents reports each TracingPolicy object's state on this node as a
// Kubernetes Event on the object, when it changes.
type statusEvents struct {
	node     string
	recorder record.EventRecorder
	stop     func()

	mu   sync.Mutex
	last map[string]string // source -> reason and message last reported
}

func newStatusEvents(cs kubernetes.Interface, node string) *statusEvents {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return &statusEvents{
		node:     node,
		recorder: b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "tetragon", Host: node}),
		stop:     b.Shutdown,
		last:     map[string]string{},
	}
}

// state is an object's state on this node, from the registry.
func state(reg StateSource, src, node string) (eventType, reason, msg string) {
	if probs := reg.Problems(src); len(probs) > 0 {
		var errs []string
		for _, p := range probs {
			errs = append(errs, p.Err)
		}
		return corev1.EventTypeWarning, ReasonNotEnforced, fmt.Sprintf("not enforced on node %s: %s", node, strings.Join(errs, "; "))
	}
	var names, edits []string
	for _, e := range reg.List() {
		if e.Source != src {
			continue
		}
		names = append(names, e.Name)
		if e.Error != "" {
			edits = append(edits, e.Error)
		}
	}
	if len(names) == 0 {
		return "", "", ""
	}
	if len(edits) > 0 {
		return corev1.EventTypeWarning, ReasonEditRefused, fmt.Sprintf("the last edit does not load on node %s, the version before it still enforces: %s", node, strings.Join(edits, "; "))
	}
	return corev1.EventTypeNormal, ReasonEnforced, fmt.Sprintf("enforced on node %s", node)
}

// report records obj's state when it differs from the last one reported.
func (s *statusEvents) report(reg StateSource, obj *unstructured.Unstructured) {
	src := Source(obj)
	typ, reason, msg := state(reg, src, s.node)
	if reason == "" {
		return
	}
	s.mu.Lock()
	if s.last[src] == reason+msg {
		s.mu.Unlock()
		return
	}
	s.last[src] = reason + msg
	s.mu.Unlock()
	s.recorder.Event(obj, typ, reason, msg)
}

// forget drops what was reported of a deleted object.
func (s *statusEvents) forget(src string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.last, src)
}
