/*
 * hex: the lower-case hexadecimal digits git writes object ids and their
 * directory names with (and the merge its key suffixes).
 */
#ifndef HEX_H
#define HEX_H

#include <stdbool.h>
#include <stddef.h>

/* Are the n bytes at s all of 0-9 and a-f?  (A NUL among them is not.) */
static inline bool hex_is_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

#endif
