package sensor

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// pinAll pins links as dir/link<i> and maps by name. A pinned link keeps
// its program attached, and the program its maps, with no process holding
// them: that is what keeps enforcement in place while the agent is down.
func pinAll(dir string, links []link.Link, maps map[string]*ebpf.Map) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating pin directory: %w", err)
	}
	for i, l := range links {
		p := filepath.Join(dir, fmt.Sprintf("link%d", i))
		if err := l.Pin(p); err != nil {
			return fmt.Errorf("pinning link %s: %w", p, err)
		}
	}
	for name, m := range maps {
		p := filepath.Join(dir, name)
		if err := m.Pin(p); err != nil {
			return fmt.Errorf("pinning map %s: %w", p, err)
		}
	}
	return nil
}
