// Package health serves the agent's readiness over HTTP
// (--health-server-address), for probes that cannot speak gRPC: GET
// /healthz answers 200 once the agent is ready, 503 before and while it
// stops.
package health

import (
	"net/http"
)

// Handler answers /healthz from ready.
func Handler(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}
