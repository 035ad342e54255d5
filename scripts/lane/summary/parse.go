package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Markers the qemu lane's /init prints on the console.
const (
	markBegin     = "@@lane begin"
	markPackage   = "@@lane pkg "
	markExit      = "@@lane exit "
	markEnd       = "@@lane end"
	markBuildFail = "@@lane buildfail "
)

var (
	resultRe = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+)`)
	// go test's per-package lines: "ok  \tpkg\t0.1s", "FAIL\tpkg [build failed]".
	pkgLineRe = regexp.MustCompile(`^(ok|FAIL)\s+(\S+)(\s|$)`)
	panicRe   = regexp.MustCompile(`Kernel panic - not syncing`)
	// A t.Log/t.Skip line: "    file_test.go:12: message".
	testLogRe = regexp.MustCompile(`^\s+\S+\.go:\d+: `)
)

// Counts splits results between top-level tests and subtests.
type Counts struct{ Passed, Failed, Skipped int }

// Result is what a lane log says.
type Result struct {
	Top, Sub Counts
	// FailedTests are the failing tests, as "package: Test/sub".
	FailedTests []string
	// Skips are the skipped tests with the first line of their reason.
	Skips []string
	// FailedPackages failed without a failing test, with why.
	FailedPackages []string
	// Broken lists failures of the lane itself (no end marker, panic, ...).
	Broken []string
}

// pkgState collects one package's results until its name is certain: go
// test prints a package's output before the line that names it.
type pkgState struct {
	name  string
	fails []string
	skips []string
}

func (p *pkgState) flush(res *Result, name string) {
	for _, f := range p.fails {
		res.FailedTests = append(res.FailedTests, label(name, f))
	}
	for _, s := range p.skips {
		res.Skips = append(res.Skips, label(name, s))
	}
}

func parse(r io.Reader, console bool) (*Result, error) {
	res := &Result{}
	var (
		cur          *pkgState
		begun, ended bool
		// skipReason is where the message following a SKIP line goes.
		skipReason *string
		skipIndent string
		// lastLog is the latest test log line: with -test.v, a top-level
		// test's t.Skip message comes before its SKIP line.
		lastLog string
	)
	if !console {
		cur = &pkgState{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if i := strings.Index(line, "@@lane "); console && i > 0 {
			// The firmware leaves terminal escapes on the console's line.
			line = line[i:]
		}

		if skipReason != nil {
			if msg := strings.TrimSpace(line); msg != "" && strings.HasPrefix(line, skipIndent+"    ") {
				*skipReason += ": " + msg
			}
			skipReason = nil
		}

		if strings.HasPrefix(line, markBuildFail) {
			res.FailedPackages = append(res.FailedPackages, strings.TrimPrefix(line, markBuildFail)+": test binary did not build")
			continue
		}
		if console {
			switch {
			case strings.HasPrefix(line, markBegin):
				begun = true
				continue
			case strings.HasPrefix(line, markEnd):
				ended = true
				continue
			case strings.HasPrefix(line, markPackage):
				if cur != nil {
					cur.flush(res, cur.name)
					res.FailedPackages = append(res.FailedPackages, cur.name+": no exit marker")
				}
				cur = &pkgState{name: strings.TrimSpace(strings.TrimPrefix(line, markPackage))}
				continue
			case strings.HasPrefix(line, markExit):
				var name string
				var code int
				if _, err := fmt.Sscanf(strings.TrimPrefix(line, markExit), "%s %d", &name, &code); err != nil {
					res.Broken = append(res.Broken, "garbled exit marker: "+line)
				} else if cur != nil {
					cur.flush(res, cur.name)
					if code != 0 && len(cur.fails) == 0 {
						res.FailedPackages = append(res.FailedPackages,
							fmt.Sprintf("%s: exit status %d without a failing test (panic or timeout?)", cur.name, code))
					}
				}
				cur = nil
				continue
			case panicRe.MatchString(line):
				res.Broken = append(res.Broken, "kernel panic: "+strings.TrimSpace(line))
				continue
			}
		}

		if strings.HasPrefix(line, "=== ") {
			lastLog = ""
		} else if testLogRe.MatchString(line) {
			lastLog = strings.TrimSpace(line)
		}

		if m := resultRe.FindStringSubmatch(line); m != nil {
			c := &res.Top
			if m[1] != "" {
				c = &res.Sub
			}
			if cur == nil { // a result outside any package: count it anyway
				cur = &pkgState{name: "?"}
			}
			switch m[2] {
			case "PASS":
				c.Passed++
			case "FAIL":
				c.Failed++
				cur.fails = append(cur.fails, m[3])
			case "SKIP":
				c.Skipped++
				if lastLog != "" {
					cur.skips = append(cur.skips, m[3]+": "+lastLog)
				} else {
					cur.skips = append(cur.skips, m[3])
					skipReason, skipIndent = &cur.skips[len(cur.skips)-1], m[1]
				}
			}
			lastLog = ""
			continue
		}

		if !console {
			if m := pkgLineRe.FindStringSubmatch(line); m != nil {
				cur.flush(res, m[2])
				if m[1] == "FAIL" && len(cur.fails) == 0 {
					why := "failed without a failing test (panic or timeout?)"
					if strings.Contains(line, "[build failed]") || strings.Contains(line, "[setup failed]") {
						why = "did not build"
					}
					res.FailedPackages = append(res.FailedPackages, m[2]+": "+why)
				}
				cur = &pkgState{}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		cur.flush(res, cur.name)
		if console {
			res.FailedPackages = append(res.FailedPackages, cur.name+": never finished")
		}
	}
	if console {
		if !begun {
			res.Broken = append(res.Broken, "the guest never reached /init (no begin marker)")
		} else if !ended {
			res.Broken = append(res.Broken, "the console has no end marker")
		}
	}
	return res, nil
}

func label(pkg, test string) string {
	if pkg == "" {
		return test
	}
	return pkg + ": " + test
}

func (r *Result) total() Counts {
	return Counts{
		Passed:  r.Top.Passed + r.Sub.Passed,
		Failed:  r.Top.Failed + r.Sub.Failed + len(r.FailedPackages) + len(r.Broken),
		Skipped: r.Top.Skipped + r.Sub.Skipped,
	}
}

func (r *Result) ok() bool { return r.total().Failed == 0 }

func (r *Result) write(w io.Writer, lane string) {
	section := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", title)
		for _, it := range items {
			fmt.Fprintf(w, "  %s\n", it)
		}
	}
	section("skipped", r.Skips)
	section("failed tests", r.FailedTests)
	section("failed packages", r.FailedPackages)
	section("lane failures", r.Broken)
	fmt.Fprintf(w, "counted: top-level tests %d passed, %d failed, %d skipped; subtests %d passed, %d failed, %d skipped; %d package and %d lane failures\n",
		r.Top.Passed, r.Top.Failed, r.Top.Skipped, r.Sub.Passed, r.Sub.Failed, r.Sub.Skipped, len(r.FailedPackages), len(r.Broken))
	t := r.total()
	fmt.Fprintf(w, "lane %s: %d passed, %d failed, %d skipped\n", lane, t.Passed, t.Failed, t.Skipped)
}
