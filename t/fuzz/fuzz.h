/*
 * fuzz.h: what the tree fuzzer (fuzz-tree.c) and its seed writer
 * (mkseeds.c) agree on.
 *
 * An input is a list of chunks separated by FUZZ_SEP.  A chunk is one
 * object: its first byte says the type ('B' blob, anything else tree),
 * the rest is the object's bytes.  Chunk 0 is the tree checked.  Inside a
 * chunk, FUZZ_REF_LEN bytes of FUZZ_REF followed by one byte n stand for
 * an object id: of chunk n when n is a later chunk (chunks are written
 * last first, so references go forward only and cannot loop), or of one
 * of the fixed objects below.
 */
#ifndef FUZZ_H
#define FUZZ_H

#define FUZZ_SEP "\n@@\n"
#define FUZZ_SEP_LEN 4
#define FUZZ_REF 0xee
#define FUZZ_REF_LEN 19		/* then the index byte: 20 bytes, an id */

enum fuzz_fixed {
	FUZZ_FORMAT = 0xf0,	/* blob "maildag 1\n" */
	FUZZ_EMPTY,		/* the empty blob */
	FUZZ_MSG,		/* a message blob */
	FUZZ_FORMAT2,		/* blob "maildag 2\n" */
	FUZZ_BASE,		/* the trusted base mailbox's root tree */
	FUZZ_BASE_CUR,		/* its cur/ */
	FUZZ_BASE_SENT,		/* its .Sent/ */
	FUZZ_BASE_SHARD,	/* its cur/<shard of K1>/ */
	FUZZ_BASE_MTIMES,	/* its mtimes/ */
};

/* The base mailbox: K1 in cur/, K2 in .Sent/cur/, an mtimes record of K1. */
#define FUZZ_K1 "1700000000.M1P1Q1.host"
#define FUZZ_N1 FUZZ_K1 ",S=6:2,S"
#define FUZZ_K2 "1700000001.M2P2Q2.host"
#define FUZZ_N2 FUZZ_K2 ",S=6:2,RS"
#define FUZZ_K3 "1700000002.M3P3Q3.host"
#define FUZZ_MTIMES_K1 FUZZ_K1 " 1600000000\n"
#define FUZZ_MSG_TEXT "hello\n"

#endif
