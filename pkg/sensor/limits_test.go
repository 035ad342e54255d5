package sensor

import (
	"testing"

	"github.com/tetragon-lite/tetragon/bpf"
)

// The hook object's limits that Go keeps as untyped constants (the
// compiler compares them with argument indexes of several types) must be
// the C arrays' lengths, which bpf2go generates.
func TestLimitsMatchC(t *testing.T) {
	var cfg bpf.HookHookCfg
	for _, c := range []struct {
		name   string
		goVal  int
		cArray int
	}{
		{"MaxParams (TP_FIELDS)", MaxParams, len(cfg.TpOff)},
		{"MaxResolveSteps (MAX_RESOLVE)", MaxResolveSteps, len(cfg.ResOff[0])},
		{"MaxRegWrites (MAX_REG_WRITES)", MaxRegWrites, len(cfg.Usdt.SelWreg[0])},
		{"MaxArgs (MAX_ARGS)", MaxArgs, len(cfg.ArgSize)},
		{"MaxSelectors (MAX_SELECTORS)", MaxSelectors, len(cfg.SelSockSlot)},
	} {
		if c.goVal != c.cArray {
			t.Errorf("%s is %d in Go, %d in bpf/hook.c", c.name, c.goVal, c.cArray)
		}
	}
}
