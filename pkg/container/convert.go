package container

import (
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// infoFromInspect converts an inspect answer. running is false for a container that
// exited or is being removed; ok is false for an answer without an id.
func infoFromInspect(resp container.InspectResponse) (info Info, running, ok bool) {
	if resp.ContainerJSONBase == nil || resp.ID == "" {
		return Info{}, false, false
	}
	info = Info{
		ID:      resp.ID,
		Name:    strings.TrimPrefix(resp.Name, "/"),
		ImageID: resp.Image,
	}
	running = true
	if st := resp.State; st != nil {
		info.Started = parseDockerTime(st.StartedAt)
		switch st.Status {
		case container.StateExited, container.StateDead, container.StateRemoving:
			running = false
		}
	}
	if cfg := resp.Config; cfg != nil {
		info.Image = cfg.Image
		setCompose(&info, cfg.Labels)
	}
	return info, running, true
}

// infoFromSummary converts a list entry, used when inspecting it failed. The list
// has no start time.
func infoFromSummary(c container.Summary) Info {
	info := Info{ID: c.ID, Name: primaryName(c.Names), Image: c.Image, ImageID: c.ImageID}
	setCompose(&info, c.Labels)
	return info
}

// infoFromEvent converts a create or start event. Docker puts the container's
// labels, "name" and "image" in the attributes; the image id is not there. A
// start event's time is the container's start time.
func infoFromEvent(m events.Message) Info {
	a := m.Actor.Attributes
	info := Info{ID: m.Actor.ID, Name: a["name"], Image: a["image"]}
	if m.Action == events.ActionStart {
		info.Started = eventTime(m)
	}
	setCompose(&info, a)
	return info
}

func setCompose(info *Info, labels map[string]string) {
	info.ComposeProject = labels[LabelComposeProject]
	info.ComposeService = labels[LabelComposeService]
}

// primaryName picks the container's own name among the list's names, which also
// hold legacy link aliases such as "/web/db".
func primaryName(names []string) string {
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		if n != "" && !strings.Contains(n, "/") {
			return n
		}
	}
	return ""
}

// parseDockerTime parses Docker's RFC 3339 times; Docker writes the zero time
// "0001-01-01T00:00:00Z" for a container that never started.
func parseDockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.IsZero() {
		return time.Time{}
	}
	return t
}

func eventTime(m events.Message) time.Time {
	switch {
	case m.TimeNano != 0:
		return time.Unix(0, m.TimeNano)
	case m.Time != 0:
		return time.Unix(m.Time, 0)
	default:
		return time.Time{}
	}
}
