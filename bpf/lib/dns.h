/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The "dns" argument: a struct msghdr * of a UDP send (udp_sendmsg,
 * udpv6_sendmsg), read as the first question of the DNS message its
 * payload holds. The name is written in dotted text into the argument's
 * string slot, so the string operators (Equal, Prefix, Postfix, ...) match
 * it like any string; the question's type and class and the header's id
 * and QR bit go in the argument's integer (DNS_* below), which user space
 * decodes. A payload that is not a well-formed question (too short, no
 * question, a label running past the payload or the 255-byte name limit,
 * a compression pointer, a NUL inside a label) leaves the name empty and
 * DNS_PARSED clear: it matches no name and reports none. */
#pragma once

#include "common.h"
#include "path.h"
#include "ioviter.h"

#define DNS_HDR 12
/* RFC 1035: a name is at most 255 bytes in wire format, so at most 253
 * characters of text */
#define DNS_WIRE_MAX 255
#define DNS_TEXT_MAX 253
/* the bytes read: header, name, type and class */
#define DNS_READ (DNS_HDR + DNS_WIRE_MAX + 4)
/* where the text is built in the path scratch buffer, after the payload */
#define DNS_OUT 1024

/* the argument's integer */
#define DNS_TYPE_MASK 0xffffULL       /* bits 0-15: QTYPE */
#define DNS_CLASS_SHIFT 16            /* bits 16-31: QCLASS */
#define DNS_ID_SHIFT 32               /* bits 32-47: the header's id */
#define DNS_RESPONSE (1ULL << 48)     /* the header's QR bit */
#define DNS_PARSED (1ULL << 49)       /* a question was read */

/* struct iov_iter___iov: ioviter.h */
/* where the walk's state (struct dns_walk) is kept in the scratch buffer.
 * Not on the stack: 6.1's verifier checks a bpf_loop callback once, with
 * the state the caller left, and hard-wires branches on the constants it
 * sees there (left == 0 at the first step): with the state on the stack,
 * every label byte was taken for a length on the 6.1 lane (6.12 checks
 * callbacks as called any number of times). Map memory is never a known
 * constant. */
#define DNS_STATE 2048

struct dns_walk {
	__u32 n;    /* payload bytes in the scratch buffer */
	__u32 pos;  /* next name byte, from the end of the header */
	__u32 out;  /* text bytes written */
	__u32 left; /* bytes left of the current label */
	__u32 end;  /* 1: the root label ended the name; 2: malformed */
};

/* dns_step handles one byte of the wire-format name: a label length
 * (writing the dot between labels) or a label byte (lowercased: names are
 * compared without case, RFC 4343). Under bpf_loop, so the verifier
 * checks one step, not 255. */
static long dns_step(__u32 i, void *data)
{
	struct path_scratch *s;
	struct dns_walk *w;
	__u32 zero = 0, at;
	__u8 c;

	s = bpf_map_lookup_elem(&path_heap, &zero);
	if (!s)
		return 1;
	w = (struct dns_walk *)&s->buf[DNS_STATE];
	at = DNS_HDR + w->pos;
	if (at >= w->n) {
		w->end = 2;
		return 1;
	}
	c = s->buf[at & 511];
	if (w->left == 0) {
		if (c == 0) {
			w->end = 1;
			return 1;
		}
		/* 0xc0: a compression pointer, which a question's first name
		 * cannot hold; 0x40, 0x80: reserved */
		if (c > 63 || (w->out > 0 && w->out >= DNS_TEXT_MAX)) {
			w->end = 2;
			return 1;
		}
		if (w->out > 0)
			s->buf[DNS_OUT + (w->out++ & 255)] = '.';
		w->left = c;
	} else {
		/* the text's limit is checked before each byte written, not
		 * before the root label: a 253-character name fits */
		if (c == 0 || w->out >= DNS_TEXT_MAX) {
			w->end = 2;
			return 1;
		}
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		s->buf[DNS_OUT + (w->out++ & 255)] = c;
		w->left--;
	}
	w->pos++;
	return 0;
}

/* dns_payload finds the first buffer of a send's data: ITER_UBUF (write,
 * and sendto since 6.4) or ITER_IOVEC (sendmsg, and sendto before 6.4).
 * Returns its user address and sets *len to the bytes there, or NULL. */
static __always_inline const void *dns_payload(struct msghdr *msg, __u64 *len)
{
	__u8 type = BPF_CORE_READ(msg, msg_iter.iter_type);
	__u64 count = BPF_CORE_READ(msg, msg_iter.count);
	__u64 off = BPF_CORE_READ(msg, msg_iter.iov_offset);
	const struct iovec *iov;
	const char *base;
	__u64 n;

	if (bpf_core_enum_value_exists(enum iter_type, ITER_UBUF) &&
	    type == bpf_core_enum_value(enum iter_type, ITER_UBUF)) {
		base = BPF_CORE_READ(msg, msg_iter.ubuf);
		*len = count;
		return base ? base + off : NULL;
	}
	if (type != bpf_core_enum_value(enum iter_type, ITER_IOVEC))
		return NULL;
	if (bpf_core_field_exists(msg->msg_iter.__iov))
		iov = BPF_CORE_READ(msg, msg_iter.__iov);
	else
		iov = BPF_CORE_READ((struct iov_iter___iov *)&msg->msg_iter, iov);
	if (!iov)
		return NULL;
	base = BPF_CORE_READ(iov, iov_base);
	n = BPF_CORE_READ(iov, iov_len);
	if (!base || off >= n)
		return NULL;
	n -= off;
	*len = n < count ? n : count;
	return base + off;
}

/* put_dns reads the DNS question of msg's payload into string slot s of r
 * and returns the argument's integer (DNS_* bits). */
static __always_inline __u64 put_dns(struct gen_rec *r, __u32 s, struct msghdr *msg)
{
	struct path_scratch *sc;
	struct dns_walk *w;
	const void *p;
	__u32 zero = 0, n, q;
	__u64 len = 0, v;
	__u8 *b;

	r->str_len[s & 1] = 0;
	r->str_flags[s & 1] = 0;
	p = dns_payload(msg, &len);
	sc = bpf_map_lookup_elem(&path_heap, &zero);
	if (!p || !sc || len < DNS_HDR + 5)
		return 0;
	n = len > DNS_READ ? DNS_READ : len;
	barrier_var(n);
	if (n > DNS_READ)
		n = DNS_READ;
	barrier_var(n);
	if (bpf_probe_read_user(sc->buf, n, p))
		return 0;
	b = (__u8 *)sc->buf;
	/* QDCOUNT: a message without a question has no name to report */
	if (((b[4] << 8) | b[5]) == 0)
		return 0;
	v = ((__u64)((b[0] << 8) | b[1]) << DNS_ID_SHIFT) | ((b[2] & 0x80) ? DNS_RESPONSE : 0);
	w = (struct dns_walk *)&sc->buf[DNS_STATE];
	w->n = n;
	w->pos = 0;
	w->out = 0;
	w->left = 0;
	w->end = 0;
	bpf_loop(DNS_WIRE_MAX + 1, dns_step, NULL, 0);
	/* the root label, then QTYPE and QCLASS, inside the payload */
	q = DNS_HDR + w->pos + 1;
	if (w->end != 1 || q + 4 > n)
		return v;
	b = (__u8 *)&sc->buf[q & 511];
	v |= DNS_PARSED | ((b[0] << 8) | b[1]) | ((__u64)((b[2] << 8) | b[3]) << DNS_CLASS_SHIFT);
	sc->buf[DNS_OUT + (w->out & 255)] = 0;
	bpf_probe_read_kernel(&r->data[(s & 1) * STR_LEN], DNS_TEXT_MAX + 1, &sc->buf[DNS_OUT]);
	r->str_len[s & 1] = w->out & 255;
	return v;
}
