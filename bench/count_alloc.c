/*
 * count_alloc.c: an LD_PRELOAD counter for `make bench`. Every malloc,
 * calloc, realloc and aligned allocation of the process is counted in a
 * shared mapping of $OSIRIS_COUNT_DIR/<program>.<pid>, so the count is readable while
 * the process lives and stays after it exits (however it exits).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t a, size_t b);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

static uint64_t count_early; /* before the mapping exists */
static uint64_t *count_word = &count_early;

static inline void count_one(void)
{
	__atomic_add_fetch(count_word, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
	count_one();
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	count_one();
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	count_one();
	return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
	count_one();
	return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	count_one();
	return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	count_one();
	if ((p = __libc_memalign(align, n)) == NULL)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

__attribute__((constructor)) static void count_init(void)
{
	const char *dir = getenv("OSIRIS_COUNT_DIR");
	char path[4096];
	void *m;
	int fd;

	if (dir == NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s.%ld", dir, program_invocation_short_name, (long)getpid());
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1)
		return;
	if (ftruncate(fd, sizeof(uint64_t)) == 0 &&
	    (m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) != MAP_FAILED) {
		*(uint64_t *)m = count_early;
		count_word = m;
	}
	close(fd);
}
