package tracingpolicy

import (
	"errors"
	"strings"
	"testing"
)

// header is the start of every policy in the table below; the body starts
// on line 6.
const header = "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: p\nspec:\n"

// fdInstall declares fd_install's arguments (lines 6-12); selectors follow
// from line 13.
const fdInstall = `  kprobes:
  - call: fd_install
    syscall: false
    args:
    - {index: 0, type: int}
    - {index: 1, type: file}
    selectors:
`

func TestErrorMessages(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown type", header + `  kprobes:
  - call: fd_install
    syscall: false
    args:
    - index: 1
      type: "fil"
`, []string{`x.yaml:11:13: spec.kprobes[0].args[0].type: unknown type "fil" (supported: int, int8, uint8, int16, uint16, int32, uint32, int64, uint64, long, ulong, size_t, string, char_buf, filename, fd, file, path, dentry, sock, skb, sockaddr, socket, linux_binprm, cred, net_device, kiocb, user_namespace, bpf_attr, bpf_map, perf_event, int32_arr, module, iov_iter, syscall64, kernel_cap_t, cap_inheritable, cap_permitted, cap_effective, dns, nop)`}},
		{"unsupported type", header + fdInstall[:len(fdInstall)-len("    selectors:\n")] + "    - {index: 2, type: char_iovec}\n",
			[]string{`x.yaml:12:24: spec.kprobes[0].args[2].type: type "char_iovec" is not supported by this agent (supported: int, int8, uint8, int16, uint16, int32, uint32, int64, uint64, long, ulong, size_t, string, char_buf, filename, fd, file, path, dentry, sock, skb, sockaddr, socket, linux_binprm, cred, net_device, kiocb, user_namespace, bpf_attr, bpf_map, perf_event, int32_arr, module, iov_iter, syscall64, kernel_cap_t, cap_inheritable, cap_permitted, cap_effective, dns, nop)`}},
		{"unknown field with suggestion", header + `  kprobes:
  - calll: fd_install
`, []string{
			`x.yaml:7:5: spec.kprobes[0].calll: unknown field "calll" (did you mean "call"?)`,
			`x.yaml:7:5: spec.kprobes[0]: missing required field "call"`,
		}},
		{"unknown field listing valid ones", header + `  kprobes:
  - call: sys_openat
    frobnicate: 1
`, []string{`x.yaml:8:5: spec.kprobes[0].frobnicate: unknown field "frobnicate" (valid fields: args, selectors, message, tags, call, syscall, return, returnArg, returnArgAction, ignore, data)`}},
		{"wrong scalar type", header + `  kprobes:
  - call: sys_openat
    syscall: "yes"
    args:
    - index: "0"
      type: int
`, []string{
			`x.yaml:8:14: spec.kprobes[0].syscall: must be true or false, got string "yes"`,
			`x.yaml:10:14: spec.kprobes[0].args[0].index: must be an integer, got string "0"`,
		}},
		{"list expected", header + `  kprobes:
    call: sys_openat
`, []string{`x.yaml:7:5: spec.kprobes: must be a list, got a mapping`}},
		{"mapping expected", header + `  kprobes:
  - sys_openat
`, []string{`x.yaml:7:5: spec.kprobes[0]: must be a mapping, got string "sys_openat"`}},
		{"duplicate field", header + `  kprobes:
  - call: sys_openat
    call: sys_write
`, []string{`x.yaml:8:5: spec.kprobes[0].call: duplicate field (first set at line 7)`}},
		{"arg index out of range", header + `  kprobes:
  - call: sys_openat
    args:
    - {index: 6, type: int}
`, []string{`x.yaml:9:15: spec.kprobes[0].args[0].index: must be an integer between 0 and 5, got 6`}},
		{"duplicate arg index", header + `  kprobes:
  - call: sys_openat
    args:
    - {index: 1, type: int}
    - {index: 1, type: string}
`, []string{`x.yaml:10:7: spec.kprobes[0].args[1]: argument index 1 is already declared by args[0]`}},
		{"too many args", header + `  kprobes:
  - call: sys_openat
    args: [{index: 0, type: int}, {index: 1, type: int}, {index: 2, type: int}, {index: 3, type: int}, {index: 4, type: int}, {index: 5, type: int}]
`, []string{`x.yaml:8:11: spec.kprobes[0].args: has 6 entries, at most 5 are allowed`}},
		{"syscall default on a kernel function", header + `  kprobes:
  - call: fd_install
`, []string{`x.yaml:7:11: spec.kprobes[0].call: "fd_install" is not a system call: syscall defaults to true, set "syscall: false" to probe a kernel function`}},
		{"explicit syscall on a kernel function", header + `  kprobes:
  - call: fd_install
    syscall: true
`, []string{`x.yaml:8:14: spec.kprobes[0].syscall: "fd_install" is not a system call: set "syscall: false" to probe a kernel function`}},
		{"kernel object on a syscall", header + `  kprobes:
  - call: sys_openat
    syscall: true
    args:
    - {index: 1, type: file}
`, []string{`x.yaml:10:24: spec.kprobes[0].args[0].type: type file reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)`}},
		{"matchArgs index not declared", header + fdInstall + `    - matchArgs:
      - index: 2
        operator: Equal
        values: ["1"]
`, []string{`x.yaml:14:16: spec.kprobes[0].selectors[0].matchArgs[0].index: argument index 2 is not declared in args (declared: 0, 1)`}},
		{"unknown operator", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Prefx
        values: ["/etc"]
`, []string{`x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: unknown operator "Prefx" (supported: Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, Mask, GreaterThan (GT), LessThan (LT), InRange, NotInRange, InMap, NotInMap, CapabilityMask, SubString, SubStringIgnCase, FileType, NotFileType, SAddr, NotSAddr, DAddr, NotDAddr, SPort, NotSPort, DPort, NotDPort, Protocol, Family, State, SPortPriv, NotSPortPriv, DPortPriv, NotDPortPriv)`}},
		{"unsupported operator", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: CelExpr
        values: ["/etc"]
`, []string{`x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator "CelExpr" is not supported by this agent (supported: Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, Mask, GreaterThan (GT), LessThan (LT), InRange, NotInRange, InMap, NotInMap, CapabilityMask, SubString, SubStringIgnCase, FileType, NotFileType, SAddr, NotSAddr, DAddr, NotDAddr, SPort, NotSPort, DPort, NotDPort, Protocol, Family, State, SPortPriv, NotSPortPriv, DPortPriv, NotDPortPriv)`}},
		{"values missing", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Prefix
`, []string{`x.yaml:14:9: spec.kprobes[0].selectors[0].matchArgs[0]: missing required field "values"`}},
		{"matchArgs args beyond the declared", header + fdInstall + `    - matchArgs:
      - args: [2]
        operator: Prefix
        values: ["/etc"]
`, []string{`x.yaml:14:16: spec.kprobes[0].selectors[0].matchArgs[0].args[0]: args position 2 is beyond the hook's 2 declared arguments`}},
		{"matchArgs args with two positions", header + fdInstall + `    - matchArgs:
      - args: [0, 1]
        operator: Prefix
        values: ["/etc"]
`, []string{`x.yaml:14:15: spec.kprobes[0].selectors[0].matchArgs[0].args: args names one argument by its position in the hook's args list, got 2 positions (several are for CelExpr, which this agent does not support)`}},
		{"InMap on a path", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: InMap
        values: ["/etc"]
`, []string{`x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator InMap does not apply to type file (paths take Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, SubString, SubStringIgnCase, FileType, NotFileType)`}},
		{"InMap values", header + fdInstall + `    - matchArgs:
      - index: 0
        operator: InMap
        values: ["3", "x", "9:2", "list:", "list:nope", "list:funcs", "4:7", "0x10"]
  lists:
  - name: funcs
    values: [fd_install]
`, []string{
			`x.yaml:16:23: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: value "x" is not an integer (type int) (InMap takes integers, lo:hi ranges and list:NAME)`,
			`x.yaml:16:28: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: range "9:2" is empty: its lower bound is above its upper bound (InMap takes integers, lo:hi ranges and list:NAME)`,
			`x.yaml:16:35: spec.kprobes[0].selectors[0].matchArgs[0].values[3]: "list:" names no list (write list:NAME, NAME a spec.lists entry)`,
			`x.yaml:16:44: spec.kprobes[0].selectors[0].matchArgs[0].values[4]: list "nope" is not defined in spec.lists`,
			`x.yaml:16:57: spec.kprobes[0].selectors[0].matchArgs[0].values[5]: list "funcs" holds kernel functions: InMap takes a list of type syscalls, whose system call numbers are the values`,
		}},
		{"CapabilityMask", header + `  lsmhooks:
  - hook: capset
    args:
    - {index: 2, type: kernel_cap_t}
    - {index: 3, type: int}
    selectors:
    - matchArgs:
      - {index: 2, operator: CapabilityMask, values: [CAP_SYS_ADMIN, cap_bpf, CAP_NOPE]}
      - {index: 3, operator: CapabilityMask, values: [CAP_SYS_ADMIN]}
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args:
    - {index: 4, type: cap_effective}
`, []string{
			`x.yaml:13:79: spec.lsmhooks[0].selectors[0].matchArgs[0].values[2]: "CAP_NOPE" is not a capability name (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)`,
			`x.yaml:14:30: spec.lsmhooks[0].selectors[0].matchArgs[1].operator: operator CapabilityMask applies to kernel_cap_t, cap_inheritable, cap_permitted and cap_effective arguments (this one is int)`,
			`x.yaml:19:24: spec.tracepoints[0].args[0].type: type cap_effective reads the capability set a kernel_cap_t pointer points to: kprobe and LSM hook arguments only`,
		}},
		{"int32_arr and size", header + `  kprobes:
  - call: sys_pipe
    args:
    - {index: 0, type: int32_arr, size: 2, returnCopy: true}
    - {index: 1, type: int, size: 2}
    - {index: 2, type: int32_arr}
    - {index: 3, type: int32_arr, size: 65}
    selectors:
    - matchArgs:
      - {index: 0, operator: Equal, values: ["3"]}
  tracepoints:
  - subsystem: syscalls
    event: sys_enter_pipe
    args:
    - {index: 5, type: int32_arr, size: 2, returnCopy: true}
`, []string{
			`x.yaml:10:35: spec.kprobes[0].args[1].size: size applies to int32_arr arguments only (this one is int)`,
			`x.yaml:11:24: spec.kprobes[0].args[2].type: an int32_arr needs size, its element count (1 to 64)`,
			`x.yaml:12:41: spec.kprobes[0].args[3].size: must be an integer between 1 and 64, got 65`,
			`x.yaml:15:30: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator Equal does not apply to type int32_arr (no operator is supported on kernel structures such as cred, user_namespace and module, nor on int32_arr)`,
			`x.yaml:20:56: spec.tracepoints[0].args[0].returnCopy: returnCopy reads the argument when the call returns, and tracepoint hooks have no return probe`,
		}},
		{"prefix on an integer", header + fdInstall + `    - matchArgs:
      - index: 0
        operator: Prefix
        values: ["3"]
`, []string{`x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator Prefix does not apply to type int (integers take Equal, NotEqual, Mask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap)`}},
		{"mask on a path", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Mask
        values: ["3"]
`, []string{`x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator Mask does not apply to type file (paths take Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, SubString, SubStringIgnCase, FileType, NotFileType)`}},
		{"range operators", header + fdInstall + `    - matchArgs:
      - index: 0
        operator: InRange
        values: ["3", "5:1", "1:x", "-1:4294967296", "-2:-1"]
`, []string{
			`x.yaml:16:18: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: "3" is not a range: want lo:hi`,
			`x.yaml:16:23: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: range "5:1" is empty: its lower bound is above its upper bound`,
			`x.yaml:16:30: spec.kprobes[0].selectors[0].matchArgs[0].values[2]: range "1:x": value "x" is not an integer (type int)`,
			`x.yaml:16:37: spec.kprobes[0].selectors[0].matchArgs[0].values[3]: range "-1:4294967296": value "4294967296" is out of range for type int`,
		}},
		{"file type and substring", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: NotFileType
        values: ["reg", "file"]
      - index: 1
        operator: SubString
        values: [""]
      - index: 0
        operator: FileType
        values: ["reg"]
`, []string{
			`x.yaml:16:25: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: "file" is not a file type (reg (regular), dir, lnk (link), sock (socket), chr (char), blk (block), fifo (pipe))`,
			`x.yaml:19:18: spec.kprobes[0].selectors[0].matchArgs[1].values[0]: empty string`,
			`x.yaml:21:19: spec.kprobes[0].selectors[0].matchArgs[2].operator: operator FileType does not apply to type int (integers take Equal, NotEqual, Mask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap)`,
		}},
		{"not a number", header + fdInstall + `    - matchArgs:
      - index: 0
        operator: Equal
        values: ["3", "three", "0x10"]
`, []string{`x.yaml:16:23: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: value "three" is not an integer (type int)`}},
		{"number out of range", header + `  kprobes:
  - call: security_mmap_file
    syscall: false
    args:
    - {index: 1, type: uint32}
    selectors:
    - matchArgs:
      - index: 1
        operator: Mask
        values: ["-1", "0x100000000"]
`, []string{
			`x.yaml:15:18: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: value "-1" is not an integer (type uint32)`,
			`x.yaml:15:24: spec.kprobes[0].selectors[0].matchArgs[0].values[1]: value "0x100000000" is out of range for type uint32`,
		}},
		{"GreaterThan takes one value", header + fdInstall + `    - matchArgs:
      - index: 0
        operator: GT
        values: ["1", "2"]
`, []string{`x.yaml:16:17: spec.kprobes[0].selectors[0].matchArgs[0].values: operator GreaterThan takes exactly one value, got 2`}},
		{"empty values", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Equal
        values: []
`, []string{`x.yaml:16:17: spec.kprobes[0].selectors[0].matchArgs[0].values: values must not be empty`}},
		{"empty string value", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Prefix
        values: [""]
`, []string{`x.yaml:16:18: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: empty string`}},
		{"too many selectors", header + fdInstall + strings.Repeat("    - matchActions: [{action: Post}]\n", 6),
			[]string{`x.yaml:13:5: spec.kprobes[0].selectors: has 6 entries, at most 5 are allowed`}},
		{"unsupported action", header + fdInstall + `    - matchActions:
      - action: CleanupEnforcerNotification
`, []string{`x.yaml:14:17: spec.kprobes[0].selectors[0].matchActions[0].action: action CleanupEnforcerNotification is not supported by this agent (supported: Post, NoPost, Sigkill, Signal, Override, TrackSock, UntrackSock, GetUrl, DnsLookup, NotifyEnforcer (NotifyKiller), Set, Regs)`}},
		{"GetUrl without argUrl", header + fdInstall + `    - matchActions:
      - action: GetUrl
`, []string{`x.yaml:14:9: spec.kprobes[0].selectors[0].matchActions[0]: action GetUrl needs argUrl (the http:// or https:// URL to request)`}},
		{"GetUrl with a file URL", header + fdInstall + `    - matchActions:
      - action: GetUrl
        argUrl: file:///etc/passwd
`, []string{`x.yaml:15:17: spec.kprobes[0].selectors[0].matchActions[0].argUrl: URL "file:///etc/passwd" has scheme "file": want http or https`}},
		{"GetUrl with credentials", header + fdInstall + `    - matchActions:
      - action: GetUrl
        argUrl: http://u:secret@127.0.0.1/
`, []string{`x.yaml:15:17: spec.kprobes[0].selectors[0].matchActions[0].argUrl: URL "http://u:xxxxx@127.0.0.1/" carries user information; put no credentials in a policy`}},
		{"DnsLookup with a bad name", header + fdInstall + `    - matchActions:
      - action: DnsLookup
        argFqdn: "bad..name"
`, []string{`x.yaml:15:18: spec.kprobes[0].selectors[0].matchActions[0].argFqdn: domain name "bad..name" has an empty label (label 1)`}},
		{"argUrl on DnsLookup", header + fdInstall + `    - matchActions:
      - action: DnsLookup
        argFqdn: canary.test
        argUrl: http://127.0.0.1/
`, []string{`x.yaml:16:17: spec.kprobes[0].selectors[0].matchActions[0].argUrl: argUrl applies to action GetUrl only`}},
		{"NotifyEnforcer without enforcers", header + fdInstall + `    - matchActions:
      - action: NotifyEnforcer
        argSig: 9
`, []string{`x.yaml:14:9: spec.kprobes[0].selectors[0].matchActions[0]: action NotifyEnforcer (NotifyKiller) needs spec.enforcers (spec.killers): the calls it acts on`}},
		{"NotifyKiller without arguments", header + `  killers:
  - syscalls: [sys_dup]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    selectors:
    - matchActions:
      - action: NotifyKiller
`, []string{`x.yaml:13:9: spec.tracepoints[0].selectors[0].matchActions[0]: action NotifyEnforcer needs argError (the error the call returns), argSig (the signal sent), or both`}},
		{"NotifyKiller argError on a tracepoint", header + `  killers:
  - syscalls: ["list:nope"]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    selectors:
    - matchActions:
      - action: NotifyKiller
        argError: -1
`, []string{`x.yaml:7:16: spec.killers[0].syscalls[0]: list "nope" is not defined in spec.lists`,
			`x.yaml:14:19: spec.tracepoints[0].selectors[0].matchActions[0].argError: argError from a tracepoint makes the enforcer's system calls fail through an enforcer program on each of them, which needs bpf_override_return (CONFIG_BPF_KPROBE_OVERRIDE) or fmod_ret on system calls (CONFIG_FUNCTION_ERROR_INJECTION): not built, as the kernels this agent is tested on (its host, Debian 6.1 and 6.12) enable neither and Tetragon's enforcer fails there too; argSig alone is served`}},
		{"enforcers and killers", header + `  enforcers:
  - calls: [sys_dup]
  killers:
  - syscalls: [sys_dup]
` + fdInstall, []string{`x.yaml:9:3: spec.killers: spec.enforcers and spec.killers (its earlier name) are both set: give one`}},
		{"action removed from Tetragon", header + fdInstall + `    - matchActions:
      - action: followfd
        argFd: 0
        argName: 1
`, []string{`x.yaml:14:17: spec.kprobes[0].selectors[0].matchActions[0].action: action FollowFD was removed from Tetragon (deprecated as unsafe before v1.5, dropped by cilium/tetragon#5090 after v1.7): the fd table it kept went wrong whenever the policy missed a hook that closes, passes or duplicates a descriptor`}},
		{"unknown action", header + fdInstall + `    - matchActions:
      - action: Explode
`, []string{`x.yaml:14:17: spec.kprobes[0].selectors[0].matchActions[0].action: unknown action "Explode" (supported: Post, NoPost, Sigkill, Signal, Override, TrackSock, UntrackSock, GetUrl, DnsLookup, NotifyEnforcer (NotifyKiller), Set, Regs)`}},
		{"override needs argError", header + `  kprobes:
  - call: sys_openat
    selectors:
    - matchActions:
      - action: Override
`, []string{`x.yaml:10:9: spec.kprobes[0].selectors[0].matchActions[0]: action Override needs argError (the error to return, e.g. -1 for EPERM)`}},
		{"override on a plain kernel function", header + fdInstall + `    - matchActions:
      - action: Override
        argError: -1
`, []string{`x.yaml:14:17: spec.kprobes[0].selectors[0].matchActions[0].action: Override works only on system calls (syscall: true) and security_* functions`}},
		{"signal needs argSig", header + fdInstall + `    - matchActions:
      - action: Signal
`, []string{`x.yaml:14:9: spec.kprobes[0].selectors[0].matchActions[0]: action Signal needs argSig (the signal number, 1..64)`}},
		{"argSig out of range", header + fdInstall + `    - matchActions:
      - action: Signal
        argSig: 65
`, []string{`x.yaml:15:17: spec.kprobes[0].selectors[0].matchActions[0].argSig: must be an integer between 1 and 64, got 65`}},
		{"field of another action", header + fdInstall + `    - matchActions:
      - action: Sigkill
        argSig: 9
        argFd: 0
`, []string{
			`x.yaml:15:17: spec.kprobes[0].selectors[0].matchActions[0].argSig: argSig applies to actions Signal and NotifyEnforcer only`,
			`x.yaml:16:16: spec.kprobes[0].selectors[0].matchActions[0].argFd: argFd does not apply to action Sigkill`,
		}},
		{"bad rateLimit", header + fdInstall + `    - matchActions:
      - action: Post
        rateLimit: "5x"
`, []string{`x.yaml:15:20: spec.kprobes[0].selectors[0].matchActions[0].rateLimit: invalid rateLimit "5x": want a positive whole number of seconds, optionally with suffix s, m or h (e.g. 30s, 5m, 1h)`}},
		{"rateLimit on Sigkill", header + fdInstall + `    - matchActions:
      - action: Sigkill
        rateLimit: 5s
`, []string{`x.yaml:15:20: spec.kprobes[0].selectors[0].matchActions[0].rateLimit: rateLimit applies to action Post only`}},
		{"stack traces on Post only", header + fdInstall + `    - matchActions:
      - action: Sigkill
        userStackTrace: true
`, []string{`x.yaml:15:25: spec.kprobes[0].selectors[0].matchActions[0].userStackTrace: userStackTrace applies to action Post only`}},
		{"imaHash", header + fdInstall + `    - matchActions:
      - action: Post
        imaHash: true
      - action: Post
        imaHash: false
`, []string{`x.yaml:15:18: spec.kprobes[0].selectors[0].matchActions[0].imaHash: imaHash is not supported by this agent`}},
		{"stack traces on kprobes only", header + `  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    selectors:
    - matchActions:
      - action: Post
        kernelStackTrace: true
`, []string{`x.yaml:12:27: spec.tracepoints[0].selectors[0].matchActions[0].kernelStackTrace: kernelStackTrace is served on kprobes only (process_kprobe events carry stack traces), not on tracepoints`}},
		{"Post and NoPost", header + fdInstall + `    - matchActions:
      - action: Post
      - action: NoPost
`, []string{`x.yaml:14:7: spec.kprobes[0].selectors[0].matchActions: actions Post and NoPost contradict each other`}},
		{"return selector without return", header + `  kprobes:
  - call: sys_openat
    returnArg: {index: 0, type: int}
    selectors:
    - matchReturnArgs:
      - {operator: LT, values: ["0"]}
`, []string{
			// returnArg alone is ignored without return: true, as in Tetragon
			`x.yaml:11:9: spec.kprobes[0].selectors[0].matchReturnArgs[0]: matchReturnArgs needs "return: true" on the hook`,
		}},
		{"return selector without returnArg", header + `  kprobes:
  - call: sys_openat
    return: true
    selectors:
    - matchReturnArgs:
      - {operator: LT, values: ["0"]}
`, []string{`x.yaml:11:9: spec.kprobes[0].selectors[0].matchReturnArgs[0]: matchReturnArgs needs returnArg to declare the return value's type`}},
		{"not supported filter", header + fdInstall + `    - matchReturnActions:
      - {action: Post}
`, []string{`x.yaml:13:7: spec.kprobes[0].selectors[0].matchReturnActions: matchReturnActions is not supported by this agent`}},
		{"namespace changes", header + fdInstall + `    - matchNamespaceChanges:
      - {operator: In, values: [Mnt, mnt, Net]}
      - {operator: Within, values: [Uts]}
      - {operator: NotIn, values: []}
`, []string{`x.yaml:14:38: spec.kprobes[0].selectors[0].matchNamespaceChanges[0].values[1]: unknown namespace "mnt" (supported: Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User)`,
			`x.yaml:15:20: spec.kprobes[0].selectors[0].matchNamespaceChanges[1].operator: unknown operator "Within" (supported: In, NotIn)`,
			`x.yaml:16:35: spec.kprobes[0].selectors[0].matchNamespaceChanges[2].values: values must not be empty`}},
		{"capability changes", header + fdInstall + `    - matchCapabilityChanges:
      - {type: Ambient, operator: In, values: [CAP_SETUID]}
      - {operator: In, values: [CAP_NOPE]}
`, []string{`x.yaml:14:16: spec.kprobes[0].selectors[0].matchCapabilityChanges[0].type: unknown capability type "Ambient" (supported: Effective, Inheritable, Permitted)`,
			`x.yaml:15:33: spec.kprobes[0].selectors[0].matchCapabilityChanges[1].values[0]: unknown capability "CAP_NOPE" (expected a name such as CAP_SYS_ADMIN)`}},
		{"fentries take the kprobe spec", header + `  fentries:
  - call: tcp_close
    args:
    - {index: 0, type: sock}
`, []string{`x.yaml:7:11: spec.fentries[0].call: "tcp_close" is not a system call: syscall defaults to true, set "syscall: false" to probe a kernel function`,
			`x.yaml:9:24: spec.fentries[0].args[0].type: type sock reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)`}},
		{"fentries selectors", header + `  fentries:
  - call: tcp_close
    syscall: false
    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: ["1"]}
`, []string{`x.yaml:11:17: spec.fentries[0].selectors[0].matchArgs[0].index: argument index 1 is not declared in args (declared: none)`}},
		{"rawtracepoints are raw", header + `  rawtracepoints:
  - subsystem: sched
    event: sched_process_exec
    raw: false
`, []string{`x.yaml:9:10: spec.rawtracepoints[0].raw: rawtracepoints are raw tracepoints; raw: false belongs in tracepoints`}},
		{"resolvePathInContainer is a bool", header + `  uprobes:
  - path: /bin/sh
    symbols: [main]
    resolvePathInContainer: yes please
`, []string{`x.yaml:9:29: spec.uprobes[0].resolvePathInContainer: must be true or false, got string "yes please"`}},
		{"resolve path syntax", header + `  kprobes:
  - call: fd_install
    syscall: false
    args:
    - {index: 1, type: path, resolve: "f_path..dentry"}
    - {index: 0, type: int, resolve: "a.b.c.d.e.f.g.h.i"}
    - {index: 2, type: int, resolve: "f_path.1x"}
`, []string{`x.yaml:10:39: spec.kprobes[0].args[0].resolve: invalid resolve path "f_path..dentry": a member name is empty (write members joined by single dots)`,
			`x.yaml:11:38: spec.kprobes[0].args[1].resolve: invalid resolve path "a.b.c.d.e.f.g.h.i": it names 9 members, at most 8 are followed`,
			`x.yaml:12:38: spec.kprobes[0].args[2].resolve: invalid resolve path "f_path.1x": "1x" is not a C member name`}},
		{"matchBinaries relative path", header + fdInstall + `    - matchBinaries:
      - operator: In
        values: ["cat", "/usr/bin/tail"]
`, []string{`x.yaml:15:18: spec.kprobes[0].selectors[0].matchBinaries[0].values[0]: binary "cat" must be an absolute path (the executable's full path is compared)`}},
		{"matchParentBinaries", header + fdInstall + `    - matchParentBinaries:
      - operator: Prefix
        values: ["/usr/", "bin/"]
        followChildren: sometimes
`, []string{`x.yaml:15:27: spec.kprobes[0].selectors[0].matchParentBinaries[0].values[1]: binary "bin/" must be an absolute path (the executable's full path is compared)`,
			`x.yaml:16:25: spec.kprobes[0].selectors[0].matchParentBinaries[0].followChildren: must be true or false, got string "sometimes"`}},
		{"matchPIDs operator", header + fdInstall + `    - matchPIDs:
      - operator: Equal
        values: [1]
`, []string{`x.yaml:14:19: spec.kprobes[0].selectors[0].matchPIDs[0].operator: unknown operator "Equal" (supported: In, NotIn)`}},
		{"matchNamespaces values", header + fdInstall + `    - matchNamespaces:
      - namespace: Mnt
        operator: In
        values: ["host_ns", "mine"]
`, []string{`x.yaml:16:29: spec.kprobes[0].selectors[0].matchNamespaces[0].values[1]: namespace value "mine" must be a namespace inode number or "host_ns"`}},
		{"unknown capability", header + fdInstall + `    - matchCapabilities:
      - operator: In
        values: ["CAP_SYS_ADMIN", "CAP_WIZARD"]
`, []string{`x.yaml:15:35: spec.kprobes[0].selectors[0].matchCapabilities[0].values[1]: unknown capability "CAP_WIZARD" (expected a name such as CAP_SYS_ADMIN)`}},
		{"message too long", header + `  kprobes:
  - call: sys_openat
    message: "` + strings.Repeat("m", 257) + `"
`, []string{`x.yaml:8:14: spec.kprobes[0].message: message has 257 characters, at most 256 are allowed`}},
		{"value too long", header + fdInstall + `    - matchArgs:
      - index: 1
        operator: Equal
        values: ["/` + strings.Repeat("a", MaxValueLen) + `"]
`, []string{`x.yaml:16:18: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: string of 4097 bytes is longer than 4096 bytes`}},
		{"bad policy name", strings.Replace(header, "name: p", "name: My_Policy", 1) + "  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:4:9: metadata.name: invalid policy name "My_Policy": must consist of lower case letters, digits, '-' and '.'`}},
		{"missing metadata name", "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata: {}\nspec:\n  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:3:11: metadata: missing required field "name"`}},
		{"wrong apiVersion", strings.Replace(header, "v1alpha1", "v2", 1) + "  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:1:13: apiVersion: apiVersion must be cilium.io/v1alpha1, got "cilium.io/v2"`}},
		{"misspelt kind", strings.Replace(header, "TracingPolicy", "tracingpolicy", 1) + "  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:2:7: kind: kind "tracingpolicy" must be spelt TracingPolicy or TracingPolicyNamespaced`}},
		{"namespaced without namespace", strings.Replace(header, "TracingPolicy", "TracingPolicyNamespaced", 1) + "  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:4:3: metadata: missing required field "namespace" (a TracingPolicyNamespaced is namespaced)`}},
		{"cluster policy with namespace", strings.Replace(header, "name: p", "name: p\n  namespace: default", 1) + "  kprobes: [{call: sys_openat}]\n",
			[]string{`x.yaml:5:14: metadata.namespace: a TracingPolicy is cluster-wide and takes no namespace (use kind TracingPolicyNamespaced)`}},
		{"no hooks", header + "  options: []\n",
			[]string{`x.yaml:6:3: spec: the policy declares no hooks (kprobes, fentries, tracepoints, rawtracepoints, lsmhooks, uprobes or usdts) and no loader`}},
		{"unsupported spec field", header + "  kprobes: [{call: sys_openat}]\n  hostSelector: {}\n",
			[]string{`x.yaml:7:3: spec.hostSelector: hostSelector is not supported by this agent`}},
		{"usdt without provider", header + "  usdts:\n  - {path: /bin/x, name: n}\n",
			[]string{`x.yaml:7:5: spec.usdts[0]: missing required field "provider"`}},
		{"usdt relative path", header + "  usdts:\n  - {path: bin/x, provider: p, name: n}\n",
			[]string{`x.yaml:7:12: spec.usdts[0].path: path must be absolute, got "bin/x"`}},
		{"usdt argument beyond the note's limit", header + "  usdts:\n  - path: /bin/x\n    provider: p\n    name: n\n    args: [{index: 12, type: int}]\n",
			[]string{`x.yaml:10:20: spec.usdts[0].args[0].index: must be an integer between 0 and 5, got 12`}},
		{"Set on a kprobe", header + "  kprobes:\n  - call: sys_openat\n    args: [{index: 0, type: int}]\n    selectors:\n    - matchActions: [{action: Set, argIndex: 0, argValue: 1}]\n",
			[]string{`x.yaml:10:31: spec.kprobes[0].selectors[0].matchActions[0].action: action Set changes a USDT probe's argument: usdts only, not kprobes`}},
		{"Set without argValue", header + "  usdts:\n  - path: /bin/x\n    provider: p\n    name: n\n    args: [{index: 0, type: int}]\n    selectors:\n    - matchActions: [{action: Set, argIndex: 0}]\n",
			[]string{`x.yaml:12:22: spec.usdts[0].selectors[0].matchActions[0]: action Set needs argIndex (the argument to change) and argValue (its new value)`}},
		{"Set on an undeclared argument", header + "  usdts:\n  - path: /bin/x\n    provider: p\n    name: n\n    args: [{index: 0, type: int}]\n    selectors:\n    - matchActions: [{action: Set, argIndex: 2, argValue: 1}]\n",
			[]string{`x.yaml:12:46: spec.usdts[0].selectors[0].matchActions[0].argIndex: argIndex 2 is not a declared argument (declared: 0)`}},
		{"Regs on a usdt", header + "  usdts:\n  - path: /bin/x\n    provider: p\n    name: n\n    selectors:\n    - matchActions: [{action: Regs, argReg: [\"rax:1\"]}]\n",
			[]string{`x.yaml:11:31: spec.usdts[0].selectors[0].matchActions[0].action: action Regs writes a function's registers: uprobes only, not usdts`}},
		{"Regs with a bad register", header + "  uprobes:\n  - path: /bin/x\n    symbols: [f]\n    selectors:\n    - matchActions: [{action: Regs, argReg: [\"xmm0:1\", \"rax\", \"rbx:z\"]}]\n",
			[]string{
				`x.yaml:10:46: spec.uprobes[0].selectors[0].matchActions[0].argReg[0]: argReg entry "xmm0:1": unknown x86-64 register "xmm0"`,
				`x.yaml:10:56: spec.uprobes[0].selectors[0].matchActions[0].argReg[1]: argReg entry "rax": want REGISTER:VALUE (e.g. rax:0x123)`,
				`x.yaml:10:63: spec.uprobes[0].selectors[0].matchActions[0].argReg[2]: argReg entry "rbx:z": value "z" is not an integer`,
			}},
		{"argReg on Post", header + "  uprobes:\n  - path: /bin/x\n    symbols: [f]\n    selectors:\n    - matchActions: [{action: Post, argReg: [\"rax:1\"]}]\n",
			[]string{`x.yaml:10:45: spec.uprobes[0].selectors[0].matchActions[0].argReg: argReg applies to action Regs only`}},
		{"unknown option", header + "  kprobes: [{call: sys_openat}]\n  options:\n  - {name: turbo, value: \"on\"}\n",
			[]string{`x.yaml:8:12: spec.options[0].name: unknown option "turbo" (supported: policy-mode, hook-mechanism, disable-kprobe-multi, disable-uprobe-multi)`}},
		{"bad policy-mode", header + "  kprobes: [{call: sys_openat}]\n  options:\n  - {name: policy-mode, value: block}\n",
			[]string{`x.yaml:8:32: spec.options[0].value: policy-mode must be enforce or monitor, got "block"`}},
		{"bad hook-mechanism", header + "  kprobes: [{call: sys_openat}]\n  options:\n  - {name: hook-mechanism, value: fentry}\n",
			[]string{`x.yaml:8:35: spec.options[0].value: hook-mechanism must be auto, kprobe or syscall-tracepoint, got "fentry"`}},
		{"lsm hook with prefix", header + "  lsmhooks:\n  - hook: security_file_open\n",
			[]string{`x.yaml:7:11: spec.lsmhooks[0].hook: LSM hooks are named without the security_ prefix ("file_open", not "security_file_open")`}},
		{"override on a tracepoint", header + `  tracepoints:
  - subsystem: syscalls
    event: sys_enter_openat
    selectors:
    - matchActions: [{action: Override, argError: -1}]
`, []string{`x.yaml:10:31: spec.tracepoints[0].selectors[0].matchActions[0].action: Override is not possible on tracepoints`}},
		{"uprobe needs symbols", header + "  uprobes:\n  - path: /bin/bash\n",
			[]string{`x.yaml:7:5: spec.uprobes[0]: missing required field "symbols" (or "offsets")`}},
		{"uprobe relative path", header + "  uprobes:\n  - path: bash\n    symbols: [readline]\n",
			[]string{`x.yaml:7:11: spec.uprobes[0].path: path must be absolute, got "bash"`}},
		{"char_buf attribute on another type", header + `  kprobes:
  - call: sys_write
    args:
    - {index: 0, type: fd, sizeArgIndex: 3}
`, []string{`x.yaml:9:42: spec.kprobes[0].args[0].sizeArgIndex: sizeArgIndex applies to char_buf arguments only (this one is fd)`}},
		{"maxData on another type", header + `  kprobes:
  - call: sys_write
    args:
    - {index: 0, type: fd, maxData: true}
`, []string{`x.yaml:9:37: spec.kprobes[0].args[0].maxData: maxData applies to char_buf and iov_iter arguments only (this one is fd)`}},
		{"iov_iter return value", header + `  kprobes:
  - call: tty_write
    syscall: false
    return: true
    returnArg: {index: 0, type: iov_iter}
`, []string{`x.yaml:10:33: spec.kprobes[0].returnArg.type: type iov_iter reads the data a struct iov_iter * describes: kprobe and LSM hook arguments only`}},
		{"syntax error", header + "  kprobes:\n  - call: [sys_openat\n",
			[]string{`x.yaml:7: invalid YAML: did not find expected ',' or ']'`}},
		{"bad indentation", header + "  kprobes:\n  - call: sys_openat\n   syscall: true\n",
			[]string{`x.yaml:8: invalid YAML: did not find expected key`}},
		{"tab indentation", header + "  kprobes:\n  - call: sys_openat\n\tsyscall: true\n",
			[]string{`x.yaml:8: invalid YAML: found a tab character that violates indentation`}},
		{"mistake after a multi-line flow list", header + "  kprobes:\n  - call: sys_openat\n    tags: [\n      a,\n      b,\n    ]\n    message: x: y\n",
			[]string{`x.yaml:12: invalid YAML: mapping values are not allowed in this context`}},
		{"unclosed flow list", header + "  kprobes:\n  - call: sys_openat\n    tags: [\n      a,\n      b,\n    message: x\n",
			[]string{`x.yaml:8: invalid YAML: did not find expected ',' or ']'`}},
		{"unclosed quote", header + "  kprobes:\n  - call: \"sys_openat\n  - call: sys_write\n",
			[]string{`x.yaml:7: invalid YAML: found unexpected end of stream`}},
		{"unknown anchor", header + "  kprobes:\n  - call: sys_openat\n    args: *nope\n",
			[]string{`x.yaml:8: invalid YAML: unknown anchor 'nope' referenced`}},
		{"duplicate policy name", header + "  kprobes: [{call: sys_openat}]\n---\n" + header + "  kprobes: [{call: sys_write}]\n",
			[]string{`x.yaml:8:1: policy "p" is defined twice in this file (first at line 1)`}},
		{"errors of several documents", header + "  kprobes: [{call: fd_install}]\n---\n" + strings.Replace(header, "name: p", "name: q", 1) + "  kprobes: [{call: sys_write, args: [{index: 0, type: fdd}]}]\n",
			[]string{
				`x.yaml:6:20: spec.kprobes[0].call: "fd_install" is not a system call: syscall defaults to true, set "syscall: false" to probe a kernel function`,
				`x.yaml:13:55: spec.kprobes[0].args[0].type: unknown type "fdd" (supported: int, int8, uint8, int16, uint16, int32, uint32, int64, uint64, long, ulong, size_t, string, char_buf, filename, fd, file, path, dentry, sock, skb, sockaddr, socket, linux_binprm, cred, net_device, kiocb, user_namespace, bpf_attr, bpf_map, perf_event, int32_arr, module, iov_iter, syscall64, kernel_cap_t, cap_inheritable, cap_permitted, cap_effective, dns, nop)`,
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pols, err := Parse("x.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("parsed %d policies, want errors:\n%s", len(pols), strings.Join(c.want, "\n"))
			}
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v (%T) is not an *ErrorList", err, err)
			}
			var got []string
			for _, e := range list.Errors {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if err.Error() != strings.Join(c.want, "\n") {
				t.Errorf("Error() = %q, want the errors one per line", err.Error())
			}
			if pols != nil {
				t.Errorf("got policies %v alongside errors", pols)
			}
		})
	}
}

func TestErrorListFormatting(t *testing.T) {
	l := &ErrorList{}
	for i := 1; i <= maxReported+3; i++ {
		l.Errors = append(l.Errors, FieldError{File: "f.yaml", Line: i, Column: 2, Path: "spec", Msg: "bad"})
	}
	lines := strings.Split(l.Error(), "\n")
	if len(lines) != maxReported+1 || lines[0] != "f.yaml:1:2: spec: bad" || lines[maxReported] != "... and 3 more errors" {
		t.Fatalf("Error() lines: first %q last %q (%d lines)", lines[0], lines[len(lines)-1], len(lines))
	}
	if got := (FieldError{File: "f.yaml", Msg: "too big"}).Error(); got != "f.yaml: too big" {
		t.Fatalf("file-level error: %q", got)
	}
	if got := (FieldError{File: "f.yaml", Line: 3, Msg: "bad YAML"}).Error(); got != "f.yaml:3: bad YAML" {
		t.Fatalf("line-only error: %q", got)
	}
	var fe FieldError
	if !errors.As(error(l), &fe) || fe.Line != 1 {
		t.Fatalf("errors.As through ErrorList: %+v", fe)
	}
}
