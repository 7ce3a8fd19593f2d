/* Growable arrays: the one way callvault appends to a malloc()ed array of
 * unknown final length. */
#ifndef CALLVAULT_VEC_H
#define CALLVAULT_VEC_H

#include <stddef.h>
#include <stdlib.h>

/* Makes room for element n of array `v` (capacity *cap elements of `size`
 * bytes): returns `v` as it is if n < *cap, else the array reallocated to
 * twice the capacity (16 at first), updating *cap. NULL if out of memory,
 * with `v` and *cap untouched (still the caller's to free). */
static inline void *vec_reserve(void *v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : 16;
	nv = reallocarray(v, ncap, size);
	if (nv)
		*cap = ncap;
	return nv;
}

#endif
