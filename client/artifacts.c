/*
 * artifacts.c: `osirisctl artifacts`: list a run's artifacts or fetch one
 * (export.c writes them all as an Osiris run directory). Bytes come over the
 * socket in artifact.read chunks and are checked against the size and
 * sha256 of the listing before they count.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/osirisctl.h"

#define ARTIFACT_CHUNK (4 << 20) /* the protocol's largest artifact.read */

void artifacts_list_free(struct artifact_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		artifact_info_free(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int artifacts_list(struct session *c, const char *run, struct artifact_list *l)
{
	const msgpack_object *arr;
	struct rpc_msg resp;
	msgpack_packer *pk;
	char err[256];
	int rc;

	pk = session_request(c, "artifact.list");
	msgpack_pack_map(pk, 1);
	mp_pack_kstr(pk, "run", run);
	if ((rc = session_call(c, "artifacts", NULL, NULL, &resp)) != 0)
		return rc;
	arr = mp_get(resp.result, "artifacts");
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY) {
		out_error("artifacts", "bad answer from the daemon: no artifacts array");
		rpc_msg_free(&resp);
		return EXIT_PROTOCOL;
	}
	l->v = xcalloc(arr->via.array.size + 1, sizeof *l->v);
	for (uint32_t i = 0; i < arr->via.array.size; i++, l->n++) {
		if (artifact_info_decode(&arr->via.array.ptr[i], &l->v[i], err, sizeof err) == -1) {
			out_error("artifacts", "bad answer from the daemon: %s", err);
			rpc_msg_free(&resp);
			return EXIT_PROTOCOL;
		}
	}
	rpc_msg_free(&resp);
	return 0;
}

static void artifacts_print(struct ctl *ctl, const struct artifact_list *l)
{
	static const char *const header[] = {"PATH", "STEP", "SIZE", "SHA256"};
	struct out_table t;
	struct buf path, step;
	json_t *arr;

	if (ctl->json) {
		arr = json_array();
		for (size_t i = 0; i < l->n; i++) {
			const struct artifact_info *a = &l->v[i];

			json_array_append_new(arr,
			                      json_pack("{s:s, s:s?, s:I, s:s}", "path", a->path, "step_id", a->step_id,
			                                "size", (json_int_t)a->size, "sha256", a->sha256));
		}
		json_out_doc(arr);
		return;
	}
	buf_init(&path);
	buf_init(&step);
	out_table_init(&t, 4, header);
	for (size_t i = 0; i < l->n; i++) {
		const struct artifact_info *a = &l->v[i];
		char size[32];
		const char *cells[4];

		buf_reset(&path);
		buf_reset(&step);
		out_esc(&path, a->path, strlen(a->path));
		if (a->step_id != NULL)
			out_esc(&step, a->step_id, strlen(a->step_id));
		else
			buf_addc(&step, '-');
		snprintf(size, sizeof size, "%" PRId64, a->size);
		cells[0] = buf_cstr(&path);
		cells[1] = buf_cstr(&step);
		cells[2] = size;
		cells[3] = a->sha256;
		out_table_row(&t, cells);
	}
	out_table_print(&t);
	out_table_free(&t);
	buf_free(&path);
	buf_free(&step);
}

/* Write everything or fail; fd -1 means stdout (through stdio). */
static int artifacts_write(int fd, const void *data, size_t len)
{
	if (fd == -1) {
		out_write(data, len);
		return 0;
	}
	return write_all(fd, data, len);
}

/* One artifact.read chunk: appends to fd, returns 0 and *eof, or an exit
 * code. Data past the listed size is a protocol violation. */
static int artifacts_chunk(struct session *c, const char *run, const struct artifact_info *a, int64_t *off,
                           struct sha256_ctx *sha, int fd, const char *dest, int *eof)
{
	const msgpack_object *data;
	struct rpc_msg resp;
	msgpack_packer *pk;
	int rc;

	pk = session_request(c, "artifact.read");
	msgpack_pack_map(pk, 4);
	mp_pack_kstr(pk, "run", run);
	mp_pack_kstr(pk, "path", a->path);
	mp_pack_kint(pk, "offset", *off);
	mp_pack_kint(pk, "length", ARTIFACT_CHUNK);
	if ((rc = session_call(c, "artifacts", NULL, NULL, &resp)) != 0)
		return rc;
	data = mp_get(resp.result, "data");
	if (data == NULL || data->type != MSGPACK_OBJECT_BIN || mp_get_bool(resp.result, "eof", eof) != 0 ||
	    (int64_t)data->via.bin.size > a->size - *off || (!*eof && data->via.bin.size == 0)) {
		out_error("artifacts", "%s: bad artifact.read answer at offset %" PRId64, a->path, *off);
		rpc_msg_free(&resp);
		return EXIT_PROTOCOL;
	}
	sha256_update(sha, data->via.bin.ptr, data->via.bin.size);
	if (artifacts_write(fd, data->via.bin.ptr, data->via.bin.size) == -1) {
		out_error("write", "%s: %s", dest, strerror(errno));
		rpc_msg_free(&resp);
		return EXIT_RUN_FAILED;
	}
	*off += data->via.bin.size;
	rpc_msg_free(&resp);
	return 0;
}

/* Stream one artifact into fd, then check size and sha256. */
static int artifacts_fetch(struct session *c, const char *run, const struct artifact_info *a, int fd, const char *dest)
{
	struct sha256_ctx *sha = sha256_begin();
	char got[65];
	int64_t off = 0;
	int eof = 0, rc;

	while (!eof) {
		if ((rc = artifacts_chunk(c, run, a, &off, sha, fd, dest, &eof)) != 0) {
			sha256_end(sha, got);
			return rc;
		}
	}
	sha256_end(sha, got);
	if (off != a->size) {
		out_error("artifacts", "%s: got %" PRId64 " bytes, the listing says %" PRId64, a->path, off, a->size);
		return EXIT_RUN_FAILED;
	}
	if (strcmp(got, a->sha256) != 0) {
		out_error("artifacts", "%s: sha256 mismatch (expected %s, got %s)", a->path, a->sha256, got);
		return EXIT_RUN_FAILED;
	}
	return 0;
}

/* Into a temporary file next to dest, renamed only once verified, so a
 * failed or corrupt fetch never leaves a file that looks complete. */
int artifacts_fetch_file(struct session *c, const char *run, const struct artifact_info *a, const char *dest)
{
	char *tmp;
	int fd, rc;

	xasprintf(&tmp, "%s.partXXXXXX", dest);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		out_error("open", "%s: %s", dest, strerror(errno));
		free(tmp);
		return EXIT_RUN_FAILED;
	}
	rc = artifacts_fetch(c, run, a, fd, dest);
	if (rc == 0 && (fchmod(fd, 0644) == -1 || fsync(fd) == -1 || rename(tmp, dest) == -1)) {
		out_error("write", "%s: %s", dest, strerror(errno));
		rc = EXIT_RUN_FAILED;
	}
	close(fd);
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

static const struct artifact_info *artifacts_find(const struct artifact_list *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return &l->v[i];
	return NULL;
}

static int artifacts_get(struct session *c, const char *run, const struct artifact_list *l, const char *path,
                         const char *file)
{
	const struct artifact_info *a = artifacts_find(l, path);

	if (a == NULL) {
		out_error("artifacts", "%s: no such artifact in run %s", path, run);
		return EXIT_USAGE;
	}
	if (file == NULL || strcmp(file, "-") == 0)
		return artifacts_fetch(c, run, a, -1, "stdout");
	return artifacts_fetch_file(c, run, a, file);
}

int cmd_artifacts(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"get", required_argument, NULL, 'g'},
	    {"output", required_argument, NULL, 'o'},
	    {"export", required_argument, NULL, 'x'},
	    CTL_OPTS_SHARED,
	};
	const struct ctl_cmd *cmd = ctl_cmd_find("artifacts");
	const char *get = NULL, *file = NULL, *export = NULL, *run;
	struct artifact_list l = {0};
	struct session c;
	int ch, rc, exists = 0;

	while ((ch = ctl_getopt(cmd, ctl, argc, argv, ":o:h", opts, &rc)) != -1) {
		switch (ch) {
		case 'g':
			get = optarg;
			break;
		case 'o':
			file = optarg;
			break;
		case 'x':
			export = optarg;
			break;
		}
	}
	if (rc != 0 || (rc = ctl_operands(cmd, argc, 1, "RUN")) != 0)
		return rc == -1 ? EXIT_OK : rc;
	if (get != NULL && export != NULL)
		return ctl_usage_error(cmd, "--get and --export exclude each other");
	if (file != NULL && get == NULL)
		return ctl_usage_error(cmd, "-o needs --get");
	run = argv[optind];
	if (export != NULL && (rc = export_dir_check(export, &exists)) != 0)
		return rc;
	if ((rc = session_open(&c, ctl->socket)) != 0)
		return rc;
	if (export != NULL)
		rc = export_run(ctl, &c, run, export, exists);
	else if ((rc = artifacts_list(&c, run, &l)) == 0) {
		if (get != NULL)
			rc = artifacts_get(&c, run, &l, get, file);
		else
			artifacts_print(ctl, &l);
	}
	artifacts_list_free(&l);
	session_close(&c);
	return rc;
}
