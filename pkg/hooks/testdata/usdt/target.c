/* USDT probes for pkg/hooks' tests, written as <sys/sdt.h> writes them
 * (the header is not installed here): a nop at the probe's site, and a
 * .note.stapsdt note with its address, its semaphore's and its arguments
 * as the compiler placed them (%0...: a register, memory or a constant).
 *
 * target A B: probe tetragon_test:args sees A (a register), B (memory),
 * 7 (a constant) and 2*A (a register); probe tetragon_test:twice, at two
 * sites, sees B; probe tetragon_test:set sees B in a
 * register, and the program prints what is there afterwards, so a hook
 * that sets the argument shows in the output. It prints the args probe's
 * semaphore, which is not zero while a hook is attached to the probe, and
 * what checked(B) returns (B + 1, unless a uprobe overrides it). */
#include <stdio.h>
#include <stdlib.h>

#define PROBE(provider, name, sem, args)                                       \
	"990: nop\n"                                                           \
	".pushsection .note.stapsdt,\"\",\"note\"\n"                            \
	".balign 4\n"                                                          \
	".4byte 992f-991f, 994f-993f, 3\n"                                     \
	"991: .asciz \"stapsdt\"\n"                                            \
	"992: .balign 4\n"                                                     \
	"993: .8byte 990b\n"                                                   \
	".8byte _.stapsdt.base\n"                                              \
	".8byte " sem "\n"                                                     \
	".asciz \"" provider "\"\n"                                            \
	".asciz \"" name "\"\n"                                                \
	".asciz \"" args "\"\n"                                                \
	"994: .balign 4\n"                                                     \
	".popsection\n"                                                        \
	".ifndef _.stapsdt.base\n"                                             \
	".pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n" \
	".weak _.stapsdt.base\n"                                               \
	".hidden _.stapsdt.base\n"                                             \
	"_.stapsdt.base: .space 1\n"                                           \
	".size _.stapsdt.base, 1\n"                                            \
	".popsection\n"                                                        \
	".endif\n"

/* checked is what the uprobe tests probe (Override, Regs) */
__attribute__((noinline)) int checked(int x)
{
	__asm__ __volatile__("" : "+r"(x));
	return x + 1;
}

/* the semaphore: the kernel counts attached uprobes here */
unsigned short args_semaphore __attribute__((section(".probes"), used));

int main(int argc, char **argv)
{
	long a, c;
	int b, v;

	if (argc != 3) {
		fprintf(stderr, "usage: target A B\n");
		return 2;
	}
	a = strtol(argv[1], NULL, 0);
	b = (int)strtol(argv[2], NULL, 0);
	c = 2 * a;
	v = b;
	__asm__ __volatile__(PROBE("tetragon_test", "args", "args_semaphore", "-8@%0 -4@%1 -4@$7 8@%2")
			     :
			     : "r"(a), "m"(b), "r"(c));
	/* one probe, two sites, its argument in a register at the first and
	 * in memory at the second */
	__asm__ __volatile__(PROBE("tetragon_test", "twice", "0", "-4@%0") : : "r"(b));
	__asm__ __volatile__(PROBE("tetragon_test", "twice", "0", "-4@%0") : : "m"(b));
	/* "+r": the probe may change v, so it is read again afterwards */
	__asm__ __volatile__(PROBE("tetragon_test", "set", "0", "-4@%0") : "+r"(v));
	printf("semaphore %d set %d checked %d\n", args_semaphore, v, checked(b));
	return 0;
}
