package kube

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

const (
	idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func newTestPods() *Pods {
	// no client: set and delete are fed the objects an informer would hand over
	return &Pods{log: zerolog.Nop(), missWait: 50 * time.Millisecond, forgetAfter: time.Minute,
		byID: map[string]*Container{}, byPod: map[string][]string{}, gone: map[string]time.Time{},
		negative: map[string]time.Time{}, changed: make(chan struct{})}
}

func pod(name, uid string, ids ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name + uid),
		Labels: map[string]string{"class": "xwing"}}}
	for i, id := range ids {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: "c" + string(rune('0'+i)), ContainerID: "containerd://" + id, Image: "docker.io/x:v1", ImageID: "sha256:1",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Unix(1700000000, 0))}},
		})
	}
	return p
}

func TestPodsLookup(t *testing.T) {
	p := newTestPods()
	p.set(pod("xwing", "", idA))
	c, ok := p.Lookup(context.Background(), idA)
	if !ok || c.Namespace != "default" || c.Pod != "xwing" || c.Name != "c0" || c.Workload != "xwing" || c.WorkloadKind != "Pod" ||
		c.Labels["class"] != "xwing" || !c.Started.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("Lookup(idA) = %+v, %v", c, ok)
	}
	// unknown: waited for, then remembered as unknown
	start := time.Now()
	if _, ok := p.Lookup(context.Background(), idB); ok {
		t.Fatal("idB found before any pod has it")
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("a miss returned after %s, without waiting for the watch", d)
	}
	// a pod naming it while a lookup waits answers that lookup
	p.negative = map[string]time.Time{}
	p.missWait = 5 * time.Second
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.set(pod("tiefighter", "", idB))
	}()
	if c, ok := p.Lookup(context.Background(), idB); !ok || c.Pod != "tiefighter" {
		t.Fatalf("Lookup(idB) while the pod appears = %+v, %v", c, ok)
	}
	// deleted: still named for the events in flight, then forgotten
	p.delete(pod("xwing", "", idA))
	if _, ok := p.Lookup(context.Background(), idA); !ok {
		t.Fatal("a just-deleted pod's container is forgotten at once")
	}
	p.sweep(time.Now().Add(2 * time.Minute))
	if _, ok, _, _ := p.fromMap(idA, time.Now()); ok {
		t.Fatal("a deleted pod's container is never forgotten")
	}
}

func TestWorkload(t *testing.T) {
	ctrl := true
	for _, c := range []struct {
		kind, owner, hash string
		name, wkind       string
	}{
		{"", "", "", "p", "Pod"},
		{"ReplicaSet", "web-5d8f7c9b4", "5d8f7c9b4", "web", "Deployment"},
		{"ReplicaSet", "plain-rs", "", "plain-rs", "ReplicaSet"},
		{"DaemonSet", "tetragon", "", "tetragon", "DaemonSet"},
		{"Job", "backup-28912345", "", "backup", "CronJob"},
		{"Job", "once", "", "once", "Job"},
	} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{}}}
		if c.kind != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: c.kind, Name: c.owner, Controller: &ctrl}}
		}
		if c.hash != "" {
			p.Labels["pod-template-hash"] = c.hash
		}
		if n, k := workloadOf(p); n != c.name || k != c.wkind {
			t.Errorf("%s %s: workload %s %s, want %s %s", c.kind, c.owner, n, k, c.name, c.wkind)
		}
	}
}

func object(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// The quickstart policy as the API server returns it: with server-set
// metadata and kubectl's annotation, which are no part of the policy.
func TestFileFromObject(t *testing.T) {
	u := object(t, "../../test/testdata/tetragon/examples/quickstart/file_monitoring.yaml")
	u.SetResourceVersion("42")
	u.SetUID("u")
	u.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"})
	f := File(u)
	if f.Err != nil {
		t.Fatalf("File: %v", f.Err)
	}
	if f.Path != "kubernetes:tracingpolicy/file-monitoring-filtered" || len(f.Policies) != 1 || f.Policies[0].Metadata.Name != "file-monitoring-filtered" {
		t.Fatalf("File = %s %v", f.Path, f.Policies)
	}
	// the same policy in another resource version is unchanged content
	u.SetResourceVersion("43")
	if File(u).Hash != f.Hash {
		t.Error("a new resourceVersion changed the hash: every resync would reload")
	}
	// a bad edit is an error naming the object and the field
	spec := u.Object["spec"].(map[string]any)
	spec["kprobes"].([]any)[0].(map[string]any)["args"].([]any)[0].(map[string]any)["type"] = "nosuchtype"
	bad := File(u)
	if bad.Err == nil || !strings.Contains(bad.Err.Error(), "kubernetes:tracingpolicy/file-monitoring-filtered") || !strings.Contains(bad.Err.Error(), "nosuchtype") {
		t.Fatalf("bad edit: %v", bad.Err)
	}
	// namespaced: parsed with its namespace (the hooks manager limits it
	// to the namespace's pods)
	u.SetKind("TracingPolicyNamespaced")
	u.SetNamespace("default")
	spec["kprobes"].([]any)[0].(map[string]any)["args"].([]any)[0].(map[string]any)["type"] = "file"
	ns := File(u)
	if ns.Err != nil || ns.Path != "kubernetes:tracingpolicynamespaced/default/file-monitoring-filtered" ||
		len(ns.Policies) != 1 || !ns.Policies[0].Namespaced() || ns.Policies[0].Metadata.Namespace != "default" {
		t.Fatalf("namespaced: %s %v", ns.Path, ns.Err)
	}
}

func TestRestConfigWithoutKubernetes(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if cfg, ok, err := RestConfig(""); cfg != nil || ok || err != nil {
		t.Fatalf("no kubeconfig, not in a pod: %v %v %v; want nothing started", cfg, ok, err)
	}
	if _, _, err := RestConfig("/nonexistent/kubeconfig"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Fatalf("missing kubeconfig: %v", err)
	}
}
