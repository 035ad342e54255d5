// Package health serves the agent's readiness over HTTP
// (--health-server-address), for probes that cannot speak gRPC: GET
// /healthz answers 200 once the agent is ready, 503 before, while it
// stops, and while a policy file does not enforce, with why.
package health

import (
	"net/http"
	"strings"
)

// Handler answers /healthz from notReady, which says why the agent is not
// ready (nothing when it is).
func Handler(notReady func() []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if why := notReady(); len(why) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n" + strings.Join(why, "\n") + "\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}
