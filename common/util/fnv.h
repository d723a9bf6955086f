/*
 * fnv: the FNV-1a 32-bit hash, which picks a message's shard
 * (DESIGN section 2: shard = fnv1a32(key) & 0xff).
 */
#ifndef FNV_H
#define FNV_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t fnv1a32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261u;

	while (len--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

#endif
