/*
 * fuzz_manifest.c: libFuzzer target for the manifest parser and the cfg
 * checker. Rejections must be one line naming manifest.yaml; accepted
 * manifests must have a topological order that is a permutation in which
 * every step comes after the steps it needs.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_driver_known_cb(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "unknown.driver") != 0;
}
static const struct manifest_drivers fuzz_drivers = {fuzz_driver_known_cb, NULL};

static void fuzz_check_order(const struct manifest *m)
{
	size_t *pos = calloc(m->nsteps ? m->nsteps : 1, sizeof(*pos)), i, j;

	if (pos == NULL)
		abort();
	for (i = 0; i < m->nsteps; i++)
		pos[i] = (size_t)-1;
	for (i = 0; i < m->nsteps; i++) {
		if (m->order[i] >= m->nsteps || pos[m->order[i]] != (size_t)-1)
			abort();
		pos[m->order[i]] = i;
	}
	for (i = 0; i < m->nsteps; i++) {
		if (manifest_step_find(m, m->steps[i].id) != &m->steps[i] || !path_is_safe(m->steps[i].cfg_path))
			abort();
		for (j = 0; j < m->steps[i].nneeds; j++)
			if (pos[m->steps[i].need_idx[j]] >= pos[i])
				abort();
	}
	free(pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m;
	char err[512];

	if (manifest_parse(&m, (const char *)data, size, &fuzz_drivers, err, sizeof(err)) == 0) {
		fuzz_check_order(&m);
		manifest_free(&m);
	} else if (strncmp(err, "manifest.yaml:", 14) != 0 || strchr(err, '\n') != NULL) {
		abort();
	}
	if (manifest_cfg_check("cfg/x.json", (const char *)data, size, err, sizeof(err)) != 0 &&
	    (strncmp(err, "cfg/x.json", 10) != 0 || strchr(err, '\n') != NULL))
		abort();
	return 0;
}
