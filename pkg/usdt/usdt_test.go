package usdt

import (
	"debug/elf"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseArg(t *testing.T) {
	for _, c := range []struct {
		spec string
		want Arg
		err  string
	}{
		{spec: "-4@%eax", want: Arg{Loc: LocReg, Reg: regAX, RegName: "eax", Size: 4, Signed: true}},
		{spec: "8@%r10", want: Arg{Loc: LocReg, Reg: regR10, RegName: "r10", Size: 8}},
		{spec: "-1@%sil", want: Arg{Loc: LocReg, Reg: regSI, RegName: "sil", Size: 1, Signed: true}},
		{spec: "2@%r9w", want: Arg{Loc: LocReg, Reg: regR9, RegName: "r9w", Size: 2}},
		{spec: "-8@-16(%rbp)", want: Arg{Loc: LocMem, Reg: regBP, RegName: "rbp", Value: -16, Size: 8, Signed: true}},
		{spec: "4@12(%rsp)", want: Arg{Loc: LocMem, Reg: regSP, RegName: "rsp", Value: 12, Size: 4}},
		{spec: "4@(%rdi)", want: Arg{Loc: LocMem, Reg: regDI, RegName: "rdi", Size: 4}},
		{spec: "4@0x10(%rdi)", want: Arg{Loc: LocMem, Reg: regDI, RegName: "rdi", Value: 16, Size: 4}},
		{spec: "-4@$-9", want: Arg{Loc: LocConst, Value: -9, Size: 4, Signed: true}},
		{spec: "4@$5", want: Arg{Loc: LocConst, Value: 5, Size: 4}},
		{spec: "%eax", err: "no size"},
		{spec: "3@%eax", err: "size 3"},
		{spec: "x@%eax", err: "not a number"},
		{spec: "4@%ah", err: "unknown register"},
		{spec: "4@%xmm0", err: "unknown register"},
		{spec: "8@-96(%rbp,%rax,8)", err: "scaled index"},
		{spec: "8@foo(%rbx)", err: "offset"},
		{spec: "8@foo(%rip)", err: "rip-relative"},
		{spec: "8@8(%rip)", err: "rip-relative"},
		{spec: "4@$x", err: "not an integer"},
		{spec: "4@eax", err: "is not %REG"},
	} {
		got, err := ParseArg(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want one containing %q", c.spec, err, c.err)
			}
			continue
		}
		c.want.Spec = c.spec
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.spec, got, err, c.want)
		}
	}
	if _, err := ParseArgs(strings.Repeat("4@%eax ", MaxArgs+1)); err == nil {
		t.Errorf("%d arguments accepted", MaxArgs+1)
	}
}

// The probes of pkg/hooks' USDT target program, compiled here, as
// readelf -n shows them.
func TestRead(t *testing.T) {
	bin := testutil.CProgram(t, "../hooks/testdata/usdt/target.c", filepath.Join(t.TempDir(), "target"))
	probes, err := Read(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(probes) != 4 {
		t.Fatalf("%d probes, want 4: %+v", len(probes), probes)
	}
	args, set := probes[0], probes[3]
	if args.Provider != "tetragon_test" || args.Name != "args" || len(args.Args) != 4 || args.Semaphore == 0 {
		t.Fatalf("first probe %+v, want tetragon_test:args with 4 arguments and a semaphore", args)
	}
	if set.Name != "set" || len(set.Args) != 1 || set.Args[0].Loc != LocReg || set.Semaphore != 0 {
		t.Fatalf("second probe %+v, want set with an argument in a register and no semaphore", set)
	}
	if a := args.Args[2]; a.Loc != LocConst || a.Value != 7 {
		t.Fatalf("third argument %+v, want the constant 7", a)
	}
	// the offsets are where the nop and the semaphore are in the file
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text := f.Section(".text")
	code, _ := text.Data()
	if off := args.Offset - text.Offset; off >= uint64(len(code)) || code[off] != 0x90 {
		t.Fatalf("offset %#x is no nop in .text", args.Offset)
	}
	if s := f.Section(".probes"); s == nil || args.Semaphore != s.Offset {
		t.Fatalf("semaphore at file offset %#x, want .probes' offset", args.Semaphore)
	}
	if _, err := Find(bin, "tetragon_test", "nope"); err == nil || !strings.Contains(err.Error(), "tetragon_test:args, tetragon_test:twice, tetragon_test:set") {
		t.Fatalf("Find of a missing probe: %v", err)
	}
	sites, err := Find(bin, "tetragon_test", "set")
	if err != nil || len(sites) != 1 || sites[0].Offset != set.Offset {
		t.Fatalf("Find: %+v, %v", sites, err)
	}
	if sites, err = Find(bin, "tetragon_test", "twice"); err != nil || len(sites) != 2 || sites[0].Args[0].Loc != LocReg || sites[1].Args[0].Loc != LocMem {
		t.Fatalf("Find of the probe with two sites: %+v, %v", sites, err)
	}
	if _, err := Read("/nonexistent/usdt-target"); err == nil {
		t.Fatal("a missing file was read")
	}
}

// FuzzParseArgs: argument specs come from the notes of any binary a policy
// names.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-4@%eax 8@-16(%rbp) 4@$5", "-1@%sil -2@%dx", "8@-96(%rbp,%rax,8)", "4@0x10(%rdi)", "-4@$-9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := ParseArgs(s)
		if err != nil {
			return
		}
		for _, a := range args {
			if a.Size != 1 && a.Size != 2 && a.Size != 4 && a.Size != 8 || a.Loc < LocConst || a.Loc > LocMem || a.Reg%8 != 0 || a.Reg > regSP {
				t.Fatalf("%q: bad %+v", s, a)
			}
		}
	})
}

// FuzzNotes: a .note.stapsdt section's bytes, as any binary can hold.
func FuzzNotes(f *testing.F) {
	f.Add([]byte("\x08\x00\x00\x00\x28\x00\x00\x00\x03\x00\x00\x00stapsdt\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00p\x00n\x00-4@%eax\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, notes []byte) {
		// an ELF file whose only content is the note section
		probes, err := FromELF(noteFile(t, notes))
		if err != nil {
			return
		}
		for _, p := range probes {
			if len(p.Args) > MaxArgs {
				t.Fatalf("%d arguments", len(p.Args))
			}
		}
	})
}
