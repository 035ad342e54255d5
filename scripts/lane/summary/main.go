// Command summary reads the log of a lane run -- `go test -v` output on the
// host lane, or the serial console of a qemu lane -- counts test results
// and prints the lane's one-line verdict. Its exit status is the lane's.
//
// Counted are `--- PASS`, `--- FAIL` and `--- SKIP` lines of top-level tests
// and subtests alike. A package that fails with no failing test (it did not
// build, panicked outside a test, timed out, or never finished) counts as
// one failure, as does a broken lane: a qemu console without its end
// marker, with a kernel panic, or a guest that timed out.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	lane := flag.String("lane", "", "lane name for the verdict line")
	console := flag.Bool("console", false, "the log is a qemu console with @@lane markers")
	var infra stringList
	flag.Var(&infra, "infra-error", "a lane failure found by the runner (repeatable)")
	flag.Parse()
	if *lane == "" || flag.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: summary -lane NAME [-console] [-infra-error MSG]... [LOG]")
		os.Exit(2)
	}
	in := io.Reader(os.Stdin)
	if flag.NArg() == 1 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "summary:", err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	res, err := parse(in, *console)
	if err != nil {
		fmt.Fprintln(os.Stderr, "summary: reading log:", err)
		os.Exit(2)
	}
	res.Broken = append(res.Broken, infra...)
	w := bufio.NewWriter(os.Stdout)
	res.write(w, *lane)
	if err := w.Flush(); err != nil {
		os.Exit(2)
	}
	if !res.ok() {
		os.Exit(1)
	}
}

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }
