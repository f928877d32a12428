/* The host id registry's choice of a free range (idmap_first_free): the
 * lowest base clear of every taken range, whatever their order, sizes and
 * alignment; none when the pool is full. */
#include "unit.h"
#include "manager/idmap.h"

#define R 65536

int main(void)
{
	/* nothing taken: the pool's start */
	CHECK_INT(idmap_first_free(NULL, 0, 1000000, 4000000000LL, R), 1000000);
	/* one range at the start: right after it */
	struct idmap_range a[] = { { 1000000, R } };
	CHECK_INT(idmap_first_free(a, 1, 1000000, 4000000000LL, R), 1000000 + R);
	/* unordered, unaligned, overlapping each other: past all of them */
	struct idmap_range b[] = { { 1100000, 10 }, { 1000000, R }, { 1065530, 50000 } };
	CHECK_INT(idmap_first_free(b, 3, 1000000, 4000000000LL, R), 1065530 + 50000);
	/* a gap big enough between two ranges is used */
	struct idmap_range c[] = { { 1000000 + 3 * R, R }, { 1000000, R } };
	CHECK_INT(idmap_first_free(c, 2, 1000000, 4000000000LL, R), 1000000 + R);
	/* a gap one id too small is not */
	struct idmap_range d[] = { { 1000000 + 2 * R - 1, R }, { 1000000, R } };
	CHECK_INT(idmap_first_free(d, 2, 1000000, 4000000000LL, R), 1000000 + 3 * R - 1);
	/* ranges below the pool (users' 100000-165535) do not matter */
	struct idmap_range e[] = { { 100000, R }, { 165536, R } };
	CHECK_INT(idmap_first_free(e, 2, 1000000, 4000000000LL, R), 1000000);
	/* a range covering the pool's start from below */
	struct idmap_range f[] = { { 990000, 20000 } };
	CHECK_INT(idmap_first_free(f, 1, 1000000, 4000000000LL, R), 1010000);
	/* full: the only room left is one id short */
	struct idmap_range g[] = { { 1000000, R - 1 } };
	CHECK_INT(idmap_first_free(g, 1, 1000000, 1000000 + 2 * R - 2, R), -1);
	CHECK_INT(idmap_first_free(g, 1, 1000000, 1000000 + 2 * R - 1, R), 1000000 + R - 1);
	/* empty ranges are ignored */
	struct idmap_range h[] = { { 1000000, 0 } };
	CHECK_INT(idmap_first_free(h, 1, 1000000, 4000000000LL, R), 1000000);
	return unit_done("manager-idmap");
}
