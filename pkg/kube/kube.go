// Package kube is the agent's Kubernetes mode: it watches the TracingPolicy
// and TracingPolicyNamespaced objects of the cluster and feeds them to the
// policy registry, and watches the pods of the agent's node to name the
// containers of events with their namespace, pod and container.
//
// Nothing here starts unless the agent runs in a pod (in-cluster config) or
// is given a kubeconfig.
package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// inClusterToken is where the kubelet mounts a pod's service-account token;
// with KUBERNETES_SERVICE_HOST it is what rest.InClusterConfig reads.
const inClusterToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// RestConfig returns the client configuration: the kubeconfig file when one
// is named, else the in-cluster configuration when the agent runs in a pod.
// ok is false when neither applies: no Kubernetes, nothing to start.
func RestConfig(kubeconfig string) (cfg *rest.Config, ok bool, err error) {
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, false, fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return nil, false, nil
		}
		if _, err := os.Stat(inClusterToken); errors.Is(err, os.ErrNotExist) {
			// a pod without a service-account token: the agent cannot
			// read the API, and says so rather than run half-blind
			return nil, false, fmt.Errorf("running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set) without a service-account token at %s: mount one (automountServiceAccountToken) or set --kubeconfig", inClusterToken)
		}
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, false, fmt.Errorf("reading the in-cluster Kubernetes configuration: %w", err)
		}
	}
	cfg.UserAgent = "tetragon-lite"
	return cfg, true, nil
}
