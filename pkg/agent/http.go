package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// httpServer is one of the agent's HTTP endpoints (metrics, health). It
// listens from Start on, so a taken port fails the start with nothing
// loaded, and serves once what it reports exists.
type httpServer struct {
	what string
	ln   net.Listener
	srv  *http.Server
}

// listenHTTP listens on addr as given: the user chooses loopback
// (127.0.0.1:PORT) or every interface (:PORT).
func listenHTTP(what, addr string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s for %s: %w", addr, what, err)
	}
	return &httpServer{what: what, ln: ln, srv: &http.Server{
		Handler: h,
		// scrapers and probes send small requests; a client that trickles
		// its headers must not hold a connection forever
		ReadHeaderTimeout: 5 * time.Second,
	}}, nil
}

// addr is where it listens; "" for a nil server.
func (s *httpServer) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// serve serves until stop.
func (s *httpServer) serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", s.what, err)
	}
	return nil
}

// stop ends serving, letting requests in flight finish for a moment; it
// also closes a listener that never served.
func (s *httpServer) stop() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	s.ln.Close()
}

// healthHandler serves the agent's readiness over HTTP
// (--health-server-address), for probes that cannot speak gRPC: GET
// /healthz answers 200 once the agent is ready, 503 before, while it
// stops, and while a policy file does not enforce, with why (notReady).
func healthHandler(notReady func() []string) http.Handler {
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
