package container

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

func TestInfoFromInspect(t *testing.T) {
	const id = "80f1210b154b346a270d72b2cace23f167c598fc036a11993e93b33c1e8cef91"
	resp := container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/web", Image: "sha256:abc",
			State: &container.State{Status: container.StateRunning, Running: true, StartedAt: "2026-11-23T12:29:01.123456789Z"},
		},
		Config: &container.Config{Image: "nginx:1.27", Labels: map[string]string{
			LabelComposeProject: "shop", LabelComposeService: "frontend", "other": "x",
		}},
	}
	info, running, ok := infoFromInspect(resp)
	want := Info{
		ID: id, Name: "web", Image: "nginx:1.27", ImageID: "sha256:abc",
		Started:        time.Date(2026, 11, 23, 12, 29, 1, 123456789, time.UTC),
		ComposeProject: "shop", ComposeService: "frontend",
	}
	if !ok || !running || info != want {
		t.Errorf("infoFromInspect = %+v, %v, %v; want %+v, true, true", info, running, ok, want)
	}

	resp.State = &container.State{Status: container.StateExited, StartedAt: "0001-01-01T00:00:00Z"}
	resp.Config = nil
	info, running, ok = infoFromInspect(resp)
	if !ok || running || !info.Started.IsZero() || info.Image != "" || info.ComposeProject != "" {
		t.Errorf("exited container without config: %+v, running %v, ok %v", info, running, ok)
	}

	if _, _, ok := infoFromInspect(container.InspectResponse{}); ok {
		t.Error("an answer without ContainerJSONBase was accepted")
	}
}

func TestPrimaryName(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"/web"}, "web"},
		{[]string{"/app/db", "/db"}, "db"},
		{nil, ""},
		{[]string{"/"}, ""},
	}
	for _, tt := range tests {
		if got := primaryName(tt.names); got != tt.want {
			t.Errorf("primaryName(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

func TestInfoFromStartEvent(t *testing.T) {
	m := events.Message{
		Type: events.ContainerEventType, Action: events.ActionStart, TimeNano: 1_700_000_000_123_000_000,
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{
			"name": "web", "image": "nginx", LabelComposeProject: "p", LabelComposeService: "s",
		}},
	}
	got := infoFromEvent(m)
	want := Info{ID: "abc", Name: "web", Image: "nginx", Started: time.Unix(0, 1_700_000_000_123_000_000), ComposeProject: "p", ComposeService: "s"}
	if got != want {
		t.Errorf("infoFromEvent = %+v, want %+v", got, want)
	}
}
