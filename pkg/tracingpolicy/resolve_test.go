package tracingpolicy

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// ResolvePath against the running kernel's BTF: the steps follow
// pointers, add embedded members' offsets up, and end at what the
// argument's type is checked against.
func TestResolvePath(t *testing.T) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("kernel lacks BTF: %v", err)
	}
	k := NewBTFKernel(spec)
	proto, err := k.Func("security_bprm_check")
	if err != nil {
		t.Fatal(err)
	}
	bprm := proto.Params[0].BTF
	offset := func(typ, name string) uint32 {
		var s *btf.Struct
		if err := spec.TypeByName(typ, &s); err != nil {
			t.Fatal(err)
		}
		off, _, err := member(s, name)
		if err != nil {
			t.Fatal(err)
		}
		return off
	}
	steps, final, err := ResolvePath(bprm, "mm.owner.real_parent.real_parent.comm")
	if err != nil {
		t.Fatal(err)
	}
	rp := offset("task_struct", "real_parent")
	want := []ResolveStep{{offset("linux_binprm", "mm"), 8}, {offset("mm_struct", "owner"), 8}, {rp, 8}, {rp, 8}, {offset("task_struct", "comm"), 0}}
	if len(steps) != len(want) || final.Kind != CPointer || final.Pointee != "char" {
		t.Fatalf("steps %v final %+v, want %v ending at a char array", steps, final, want)
	}
	for i := range want {
		if steps[i] != want[i] {
			t.Fatalf("steps %v, want %v", steps, want)
		}
	}
	if ok, _ := ArgFits(TypeString, final); !ok {
		t.Errorf("a string does not fit %s", final)
	}

	// an embedded struct is its address; the next member adds up
	steps, final, err = ResolvePath(bprm, "file.f_path.dentry")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[1] != (ResolveStep{offset("file", "f_path") + offset("path", "dentry"), 8}) || final.Pointee != "struct dentry" {
		t.Fatalf("file.f_path.dentry: steps %v final %+v", steps, final)
	}
	_, final, err = ResolvePath(bprm, "file.f_path")
	if err != nil || final.Pointee != "struct path" {
		t.Fatalf("file.f_path: %+v %v", final, err)
	}
	_, final, err = ResolvePath(bprm, "cred.euid.val")
	if err != nil || final.Kind != CInt || final.Size != 4 {
		t.Fatalf("cred.euid.val: %+v %v", final, err)
	}

	for path, msg := range map[string]string{
		"mm.nosuch":        "struct mm_struct has no member nosuch",
		"argc.x":           "member argc is int, which has no members",
		"filename.x":       "char has no member x (it is not a struct or union)",
		"mm.owner.comm.x":  "member comm is an array, which has no members",
		"file.f_path.mnt2": "struct path has no member mnt2",
	} {
		if _, _, err := ResolvePath(bprm, path); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want %q", path, err, msg)
		}
	}
	if _, _, err := ResolvePath(&btf.Int{Name: "int", Size: 4}, "x"); err == nil || !strings.Contains(err.Error(), "needs a pointer to a struct") {
		t.Error("resolve from an int parameter: no error")
	}
}
