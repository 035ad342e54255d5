package kube

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Container is a container of a pod on the agent's node.
type Container struct {
	ID      string // without the runtime's scheme ("containerd://")
	Name    string
	Image   string
	ImageID string
	Started time.Time

	Namespace    string
	Pod          string
	PodUID       string
	Labels       map[string]string
	Workload     string
	WorkloadKind string
}

// Pods keeps the containers of the pods on one node, by container id.
type Pods struct {
	log      zerolog.Logger
	node     string
	informer cache.SharedIndexInformer
	factory  informers.SharedInformerFactory
	// missWait bounds how long a Lookup of an unknown id waits for the
	// watch to name it: a container's first process can run before the
	// kubelet reports the container's id in the pod's status.
	missWait    time.Duration
	forgetAfter time.Duration

	mu sync.RWMutex
	// byID: container id -> container; byPod: pod uid -> its ids
	byID  map[string]*Container
	byPod map[string][]string
	// gone: ids of deleted pods' containers, forgotten after forgetAfter
	// (events of their last processes are still in flight)
	gone map[string]time.Time
	// negative: ids no pod has, answered "unknown" until then
	negative map[string]time.Time
	// changed is closed and replaced at every change of byID
	changed chan struct{}
	// handler is Run's registration with the informer: synced once the
	// first list went through set
	handler cache.ResourceEventHandlerRegistration
	// onChange, when set, is called after every change of the pods'
	// containers (outside mu)
	onChange func()
}

// NewPods returns a watcher of the pods whose spec.nodeName is node.
func NewPods(log zerolog.Logger, cs kubernetes.Interface, node string) *Pods {
	f := informers.NewSharedInformerFactoryWithOptions(cs, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + node
		}))
	p := &Pods{
		log:         log.With().Str("component", "kube-pods").Logger(),
		node:        node,
		factory:     f,
		informer:    f.Core().V1().Pods().Informer(),
		missWait:    500 * time.Millisecond,
		forgetAfter: time.Minute,
		byID:        map[string]*Container{},
		byPod:       map[string][]string{},
		gone:        map[string]time.Time{},
		negative:    map[string]time.Time{},
		changed:     make(chan struct{}),
	}
	return p
}

// Run watches until ctx is done.
func (p *Pods) Run(ctx context.Context) error {
	reg, err := p.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.set(obj) },
		UpdateFunc: func(_, obj any) { p.set(obj) },
		DeleteFunc: func(obj any) { p.delete(obj) },
	})
	if err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	p.mu.Lock()
	p.handler = reg
	p.mu.Unlock()
	p.factory.Start(ctx.Done())
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.factory.Shutdown()
			return nil
		case now := <-tick.C:
			p.sweep(now)
		}
	}
}

// WaitSynced waits until the pods of the node are listed and handed to
// set: Lookup and Current know them.
func (p *Pods) WaitSynced(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), p.informer.HasSynced, func() bool {
		p.mu.RLock()
		defer p.mu.RUnlock()
		return p.handler != nil && p.handler.HasSynced()
	})
}

// Lookup returns the container with this id; an id no pod names yet is
// waited for at most missWait.
func (p *Pods) Lookup(ctx context.Context, id string) (Container, bool) {
	if id == "" {
		return Container{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, p.missWait)
	defer cancel()
	for {
		c, known, negative, changed := p.fromMap(id, time.Now())
		if known {
			return c, true
		}
		if negative {
			return Container{}, false
		}
		select {
		case <-changed:
		case <-ctx.Done():
			p.mu.Lock()
			p.negative[id] = time.Now().Add(5 * time.Second)
			p.mu.Unlock()
			return Container{}, false
		}
	}
}

func (p *Pods) fromMap(id string, now time.Time) (c Container, known, negative bool, changed <-chan struct{}) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e, ok := p.byID[id]; ok {
		return *e, true, false, nil
	}
	until, neg := p.negative[id]
	return Container{}, false, neg && now.Before(until), p.changed
}

// set records the containers of a pod as its status names them.
func (p *Pods) set(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	workload, kind := workloadOf(pod)
	var cs []*Container
	statuses := append(append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...),
		pod.Status.ContainerStatuses...), pod.Status.EphemeralContainerStatuses...)
	for _, st := range statuses {
		id := stripScheme(st.ContainerID)
		if id == "" {
			continue
		}
		c := &Container{
			ID: id, Name: st.Name, Image: st.Image, ImageID: st.ImageID,
			Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID),
			Labels: maps.Clone(pod.Labels), Workload: workload, WorkloadKind: kind,
		}
		if r := st.State.Running; r != nil {
			c.Started = r.StartedAt.Time
		} else if t := st.State.Terminated; t != nil {
			c.Started = t.StartedAt.Time
		}
		cs = append(cs, c)
	}
	uid := string(pod.UID)
	p.mu.Lock()
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		p.byID[c.ID] = c
		delete(p.negative, c.ID)
		delete(p.gone, c.ID)
		ids = append(ids, c.ID)
	}
	// ids the pod no longer lists (a restarted container's old one): kept
	// a while for its last events
	for _, old := range p.byPod[uid] {
		if !contains(ids, old) {
			p.gone[old] = time.Now()
		}
	}
	p.byPod[uid] = ids
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	p.notify()
}

// notify tells onChange that the pods' containers changed.
func (p *Pods) notify() {
	p.mu.RLock()
	f := p.onChange
	p.mu.RUnlock()
	if f != nil {
		f()
	}
}

// OnChange makes f be called after every change of the pods' containers.
func (p *Pods) OnChange(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onChange = f
}

// Current returns the containers of the node's pods as they are now (not
// those of deleted pods, whose events may still be in flight).
func (p *Pods) Current() []Container {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []Container
	for _, ids := range p.byPod {
		for _, id := range ids {
			if c, ok := p.byID[id]; ok {
				out = append(out, *c)
			}
		}
	}
	return out
}

func (p *Pods) delete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	p.mu.Lock()
	now := time.Now()
	for _, id := range p.byPod[string(pod.UID)] {
		p.gone[id] = now
	}
	delete(p.byPod, string(pod.UID))
	p.mu.Unlock()
	p.notify()
}

func (p *Pods) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, at := range p.gone {
		if now.Sub(at) >= p.forgetAfter {
			delete(p.byID, id)
			delete(p.gone, id)
		}
	}
	for id, until := range p.negative {
		if !now.Before(until) {
			delete(p.negative, id)
		}
	}
}

// Len is how many containers are known.
func (p *Pods) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.byID)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// stripScheme turns "containerd://<id>" into "<id>", the id cgroup paths
// carry.
func stripScheme(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		return after
	}
	return id
}

// workloadOf names the pod's workload: its controller, with a ReplicaSet
// of a Deployment ("web-5d8f7c9b4") named for the Deployment ("web") and a
// Job of a CronJob ("backup-28912345") for the CronJob; a pod without a controller is its own.
func workloadOf(pod *corev1.Pod) (name, kind string) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return pod.Name, "Pod"
	}
	switch ref.Kind {
	case "ReplicaSet":
		// a Deployment's ReplicaSet is "<deployment>-<pod-template-hash>",
		// and its pods carry the hash as a label
		if h := pod.Labels["pod-template-hash"]; h != "" {
			if d, ok := strings.CutSuffix(ref.Name, "-"+h); ok && d != "" {
				return d, "Deployment"
			}
		}
	case "Job":
		// CronJob jobs are "<cronjob>-<scheduled minute>"
		if i := strings.LastIndexByte(ref.Name, '-'); i > 0 && isDigits(ref.Name[i+1:]) {
			return ref.Name[:i], "CronJob"
		}
	}
	return ref.Name, ref.Kind
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
