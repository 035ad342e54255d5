package compiler

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// The kprobe compiler reads an iov_iter parameter as its data, and
// refuses the type where the parameter is something else; maxData is
// accepted on it.
func TestCompileIovIter(t *testing.T) {
	cKiocb := tp.CType{Kind: tp.CPointer, Pointee: "struct kiocb", C: "struct kiocb *"}
	cIter := tp.CType{Kind: tp.CPointer, Pointee: "struct iov_iter", C: "struct iov_iter *"}
	funcs := fakeKernel{
		"tty_write":  {Name: "tty_write", Params: []tp.Param{{Name: "iocb", Type: cKiocb}, {Name: "from", Type: cIter}}, Return: tp.CType{Kind: tp.CInt, Size: 8, C: "ssize_t"}},
		"fd_install": testFuncs["fd_install"],
	}
	d := Decl{Call: "tty_write", Args: []tp.ArgSpec{{Index: 0, Type: tp.TypeKiocb}, {Index: 1, Type: tp.TypeIovIter, MaxData: true}}}
	spec, _, err := compileKprobe(d, 1, funcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Args) != 2 || spec.Args[1].Source != sensor.SrcRegIovIter || spec.Args[1].Reg != 1 {
		t.Fatalf("args %+v", spec.Args)
	}
	bad := Decl{Call: "fd_install", Args: []tp.ArgSpec{{Index: 1, Type: tp.TypeIovIter}}}
	if _, _, err := compileKprobe(bad, 1, funcs, nil); err == nil || !strings.Contains(err.Error(), "struct iov_iter *") {
		t.Fatalf("iov_iter on fd_install's struct file *: %v", err)
	}
	// what the parser says maxData reads is what the kernel reads
	if sensor.MaxIovIterData != tp.MaxData {
		t.Fatalf("the kernel reads %d bytes, the parser says %d", sensor.MaxIovIterData, tp.MaxData)
	}
}
