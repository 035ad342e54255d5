/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* USDT arguments, and the uprobe actions that write the probed thread's
 * registers (Set, Regs, Override), for bpf/hook.c's uprobe programs.
 *
 * A USDT probe's arguments are not in the calling convention's registers:
 * its ELF note says where each one is when the probe's nop runs (user space
 * parses it, pkg/usdt): a constant, a register, or memory at a register
 * plus an offset. They are load-time settings of the hook, per parameter
 * slot (the probe's argument index).
 *
 * Writing the registers (struct pt_regs, the uprobe's context) needs a
 * kernel that lets uprobe programs write their context (Linux 6.18 has
 * it); user space loads the writing code only for hooks whose selectors
 * ask for it (ctx_writes), so the verifier of an older kernel never sees
 * it otherwise: a constant false branch is dead code it does not check. */
#ifndef __LIB_USDT_H
#define __LIB_USDT_H

#define USDT_CONST 1 /* $5: the value is val */
#define USDT_REG 2   /* %eax: in the register at pt_regs offset reg */
#define USDT_MEM 3   /* -16(%rbp): in user memory at the register + val */
#define USDT_PARAMS 6

/* Register writes a selector asks for: Set (argIndex's register, on a
 * USDT), Regs (argRegs). Registers are named by their pt_regs offset. */
#define MAX_REG_WRITES 4
/* per selector, 8 rows so that an index masked with 7 stays in bounds */
#define WRITE_SELS 8

/* The USDT and register-write part of a hook's load-time configuration
 * (struct hook_cfg in hook.c): per parameter slot, where the argument is
 * (loc: USDT_*), in which register (reg), the constant or offset (val),
 * its width and signedness; per selector, the registers it writes. */
struct usdt_cfg {
	bool on;         /* the hook is a USDT probe */
	bool ctx_writes; /* a selector writes registers */
	__u8 loc[USDT_PARAMS];
	__u8 reg[USDT_PARAMS];
	__u8 size[USDT_PARAMS];
	__u8 sign[USDT_PARAMS];
	__s64 val[USDT_PARAMS];
	__u8 sel_nwrites[WRITE_SELS];
	__u8 sel_wreg[WRITE_SELS][MAX_REG_WRITES];
	__u64 sel_wval[WRITE_SELS][MAX_REG_WRITES];
};

/* usdt_narrow gives v the width and signedness of parameter i's spec (-4:
 * a signed 32-bit value); the register's upper bits are undefined. */
static __always_inline __u64 usdt_narrow(const volatile struct usdt_cfg *u, __u64 v, int i)
{
	bool sign = u->sign[i];

	switch (u->size[i]) {
	case 1:
		return sign ? (__u64)(__s64)(__s8)v : (__u8)v;
	case 2:
		return sign ? (__u64)(__s64)(__s16)v : (__u16)v;
	case 4:
		return sign ? (__u64)(__s64)(__s32)v : (__u32)v;
	}
	return v;
}

/* usdt_read reads USDT parameter i where the probe's note puts it. */
static __always_inline __u64 usdt_read(const volatile struct usdt_cfg *u, struct pt_regs *ctx, int i)
{
	__u64 reg = 0, v = 0;
	void *p;

	if (u->loc[i] == USDT_CONST)
		return u->val[i];
	/* the register, by its offset in the context: a helper read, since
	 * the verifier allows only constant offsets into the context */
	if (bpf_probe_read_kernel(&reg, sizeof(reg), (void *)ctx + (u->reg[i] & 0xf8)))
		return 0;
	if (u->loc[i] == USDT_REG)
		return usdt_narrow(u, reg, i);
	if (u->loc[i] != USDT_MEM)
		return 0;
	/* exactly the value's bytes: more could cross into an unmapped page */
	p = (void *)(reg + u->val[i]);
	switch (u->size[i]) {
	case 1:
		bpf_probe_read_user(&v, 1, p);
		break;
	case 2:
		bpf_probe_read_user(&v, 2, p);
		break;
	case 4:
		bpf_probe_read_user(&v, 4, p);
		break;
	default:
		bpf_probe_read_user(&v, 8, p);
	}
	return usdt_narrow(u, v, i);
}

/* WRITE_REG stores v in context field reg. The store is written in
 * assembly so that it stays one store at a constant offset from the
 * context: compiled from C, the cases of a switch on the offset can merge
 * into one store at a computed offset, which the verifier refuses. */
#define WRITE_REG(reg)                                                              \
	asm volatile("*(u64 *)(%[ctx] + %[off]) = %[val]"                           \
		     :                                                              \
		     : [ctx] "r"(ctx), [off] "i"(offsetof(struct pt_regs, reg)), \
		       [val] "r"(v)                                                 \
		     : "memory")

static __always_inline void write_reg(struct pt_regs *ctx, __u8 off, __u64 v)
{
	switch (off) {
	case offsetof(struct pt_regs, r15):
		WRITE_REG(r15);
		break;
	case offsetof(struct pt_regs, r14):
		WRITE_REG(r14);
		break;
	case offsetof(struct pt_regs, r13):
		WRITE_REG(r13);
		break;
	case offsetof(struct pt_regs, r12):
		WRITE_REG(r12);
		break;
	case offsetof(struct pt_regs, bp):
		WRITE_REG(bp);
		break;
	case offsetof(struct pt_regs, bx):
		WRITE_REG(bx);
		break;
	case offsetof(struct pt_regs, r11):
		WRITE_REG(r11);
		break;
	case offsetof(struct pt_regs, r10):
		WRITE_REG(r10);
		break;
	case offsetof(struct pt_regs, r9):
		WRITE_REG(r9);
		break;
	case offsetof(struct pt_regs, r8):
		WRITE_REG(r8);
		break;
	case offsetof(struct pt_regs, ax):
		WRITE_REG(ax);
		break;
	case offsetof(struct pt_regs, cx):
		WRITE_REG(cx);
		break;
	case offsetof(struct pt_regs, dx):
		WRITE_REG(dx);
		break;
	case offsetof(struct pt_regs, si):
		WRITE_REG(si);
		break;
	case offsetof(struct pt_regs, di):
		WRITE_REG(di);
		break;
	case offsetof(struct pt_regs, ip):
		WRITE_REG(ip);
		break;
	case offsetof(struct pt_regs, sp):
		WRITE_REG(sp);
		break;
	}
}

/* write_regs carries out selector s's register writes, then, for an
 * Override selector (err not zero), its return: the function returns err
 * to its caller without running, as if it had executed ret (the uprobe is
 * at its first instruction, where the return address is on top of the
 * stack). */
static __always_inline void write_regs(const volatile struct usdt_cfg *u, struct pt_regs *ctx, int s, long err)
{
	__u64 sp, ret;

	if (s < 0 || s >= MAX_SELECTORS)
		return;
	s &= WRITE_SELS - 1;
	for (int j = 0; j < MAX_REG_WRITES; j++) {
		if (j >= u->sel_nwrites[s])
			break;
		write_reg(ctx, u->sel_wreg[s][j], u->sel_wval[s][j]);
	}
	if (!err)
		return;
	sp = ctx->sp;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp))
		return;
	ctx->ax = err;
	ctx->ip = ret;
	ctx->sp = sp + 8;
}

#endif
