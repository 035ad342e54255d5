package hooks

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
)

// stage hands compiled hook c (declared as d) to the sensor that serves
// its mechanism: the syscall dispatcher, or the attach points' objects.
// Staged hooks are put in the kernel's lists when their whole policy
// version is built (Manager.swap). On error nothing stays staged.
func (m *Manager) stage(d compiler.Decl, c compiler.Compiled) (hookObject, error) {
	if c.Syscalls != nil {
		disp, err := m.dispatcher()
		if err != nil {
			return nil, err
		}
		h, err := disp.Stage(*c.Syscalls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Name(), err)
		}
		return h, nil
	}
	ps, err := m.hookObjects()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name(), err)
	}
	var sites usdtSites
	for _, spec := range c.Progs {
		k, err := ps.Stage(spec)
		if err != nil {
			sites.Close()
			return nil, fmt.Errorf("%s: %w", d.Name(), err)
		}
		sites = append(sites, k)
	}
	if len(sites) == 1 {
		return sites[0], nil
	}
	return sites, nil
}
