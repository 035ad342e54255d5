package agent

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHealthz(t *testing.T) {
	var why []string
	h := healthHandler(func() []string { return why })
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code, rec.Body.String()
	}
	why = []string{"not enforcing: /etc/tetragon/a.yaml: a.yaml:3:1: bad", "not enforcing: /etc/tetragon/b.yaml: b.yaml:1: bad"}
	if code, body := get(); code != http.StatusServiceUnavailable || body != "not ready\n"+why[0]+"\n"+why[1]+"\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
	why = nil
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
}
