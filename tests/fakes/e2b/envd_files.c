/*
 * envd_files.c: envd's REST surface (spec/envd/envd.yaml): GET /health and
 * GET/POST /files (raw octet-stream or multipart uploads, optional gzip,
 * X-Metadata-* as user.e2b.* xattrs), authorised by token or URL signature.
 */
#include <sys/stat.h>
#include <sys/xattr.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>

#include "emulator.h"

#define FILES_MAX_PARTS 1000

struct files_upload {
	char *path; /* cleaned sandbox path */
	const uint8_t *data;
	size_t len;
};

void envd_files_health(struct evhttp_request *req, struct sandbox *sbx)
{
	(void)sbx;
	emu_reply_empty(req, 204);
}

/* v1_ + base64(sha256("<path>:<op>:<user>:<token>[:<exp>]")) without padding. */
static int files_signature_ok(struct sandbox *sbx, struct evkeyvalq *q, const char *path, const char *op)
{
	const char *sig = evhttp_find_header(q, "signature"), *exp = evhttp_find_header(q, "signature_expiration");
	const char *user = evhttp_find_header(q, "username");
	unsigned char digest[SHA256_DIGEST_LENGTH];
	char raw[8192], b64[64];
	size_t n;

	if (sig == NULL)
		return 0;
	if (exp != NULL && strtoll(exp, NULL, 10) < (long long)time(NULL))
		return 0;
	snprintf(raw, sizeof(raw), "%s:%s:%s:%s%s%s", path, op, user ? user : "", sbx->access_token, exp ? ":" : "",
	         exp ? exp : "");
	SHA256((const unsigned char *)raw, strlen(raw), digest);
	EVP_EncodeBlock((unsigned char *)b64, digest, sizeof(digest));
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == '=')
		b64[--n] = '\0';
	return strncmp(sig, "v1_", 3) == 0 && strcmp(sig + 3, b64) == 0;
}

/* 0 when allowed; otherwise a 401 was sent. */
static int files_authorize(struct evhttp_request *req, struct sandbox *sbx, struct evkeyvalq *q, const char *op)
{
	const char *token = emu_header(req, "X-Access-Token"), *user = evhttp_find_header(q, "username");
	const char *path = evhttp_find_header(q, "path");

	if (sbx->access_token != NULL && !(token != NULL && strcmp(token, sbx->access_token) == 0) &&
	    !files_signature_ok(sbx, q, path ? path : "", op)) {
		emu_reply_api_error(req, 401,
		                    "unauthorized access, please provide a valid access token or method "
		                    "signing if supported");
		return -1;
	}
	if (user != NULL && *user && strcmp(user, "user") != 0 && strcmp(user, "root") != 0) {
		emu_reply_api_error(req, 401, "error looking up user '%s': user: unknown user %s", user, user);
		return -1;
	}
	return 0;
}

static const char *files_content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".txt", "text/plain; charset=utf-8"},
	    {".json", "application/json"},
	    {".html", "text/html; charset=utf-8"},
	    {".csv", "text/csv; charset=utf-8"},
	    {".py", "text/x-python; charset=utf-8"},
	    {".png", "image/png"},
	    {".js", "text/javascript; charset=utf-8"},
	    {".gz", "application/gzip"},
	    {".tar", "application/x-tar"},
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

static void files_download(struct evhttp_request *req, struct sandbox *sbx, const char *clean)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
	const char *base = strrchr(clean, '/') + 1;
	struct evbuffer *out;
	struct stat st;
	char disp[1024];
	int fd;

	if ((fd = sandbox_open(sbx, clean, O_RDONLY, 0)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			emu_reply_api_error(req, 404, "path '%s' does not exist", clean);
		else
			emu_reply_api_error(req, 500, "error opening file '%s': %s", clean, strerror(errno));
		return;
	}
	if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
		close(fd);
		emu_reply_api_error(req, 400, "path '%s' is a directory", clean);
		return;
	}
	snprintf(disp, sizeof(disp), "inline; filename=\"%s\"", base);
	evhttp_add_header(oh, "Content-Type", files_content_type(base));
	evhttp_add_header(oh, "Content-Disposition", disp);
	out = evbuffer_new();
	if (st.st_size > 0)
		evbuffer_add_file(out, fd, 0, st.st_size); /* takes fd */
	else
		close(fd);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

/* Content-Encoding: gzip uploads, inflated up to EMU_MAX_BODY. */
static int files_gunzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	z_stream zs = {0};
	size_t cap = inlen * 4 + 4096;
	int rc;

	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -1;
	*out = emu_xmalloc(cap);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	do {
		if (zs.total_out == cap) {
			if (cap >= EMU_MAX_BODY) {
				rc = Z_MEM_ERROR;
				break;
			}
			cap *= 2;
			*out = realloc(*out, cap);
			if (*out == NULL)
				emu_fatal("out of memory");
		}
		zs.next_out = *out + zs.total_out;
		zs.avail_out = (uInt)(cap - zs.total_out);
		rc = inflate(&zs, Z_NO_FLUSH);
	} while (rc == Z_OK);
	*outlen = zs.total_out;
	inflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int files_write_one(struct sandbox *sbx, struct files_upload *u, struct evkeyvalq *hdrs, char *err,
                           size_t errlen, int *status)
{
	char *parent = emu_xstrdup(u->path), *slash = strrchr(parent, '/');
	struct evkeyval *h;
	const char *name;
	int fd, dirfd, created;
	size_t off = 0;
	ssize_t n;

	*status = 400;
	slash[slash == parent ? 1 : 0] = '\0';
	if (strcmp(u->path, "/") == 0 || sandbox_mkdir_p(sbx, parent, &created) != 0) {
		snprintf(err, errlen, "error creating directories for '%s': %s", u->path, strerror(errno));
		free(parent);
		return -1;
	}
	free(parent);
	if ((dirfd = sandbox_open_parent(sbx, u->path, &name)) >= 0) {
		struct stat st;
		if (fstatat(dirfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
			close(dirfd);
			snprintf(err, errlen, "path '%s' is a directory", u->path);
			return -1;
		}
		close(dirfd);
	}
	if ((fd = sandbox_open(sbx, u->path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) {
		*status = errno == ENOSPC ? 507 : 500;
		snprintf(err, errlen, "error opening file '%s': %s", u->path, strerror(errno));
		return -1;
	}
	while (off < u->len) {
		if ((n = write(fd, u->data + off, u->len - off)) < 0) {
			*status = errno == ENOSPC ? 507 : 500;
			snprintf(err, errlen, "error writing file '%s': %s", u->path, strerror(errno));
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	TAILQ_FOREACH(h, hdrs, next)
	{
		char attr[300];
		if (strncasecmp(h->key, "X-Metadata-", 11) != 0 || strlen(h->key + 11) > 200)
			continue;
		snprintf(attr, sizeof(attr), "user.e2b.%s", h->key + 11);
		for (char *c = attr + 9; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		fsetxattr(fd, attr, h->value, strlen(h->value), 0);
	}
	close(fd);
	return 0;
}

/* Find "name=" in a header value; copies the (possibly quoted) value. */
static int files_header_param(const char *hv, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), i = 0;
	const char *p = hv;

	while ((p = strcasestr(p, name)) != NULL) {
		if ((p == hv || p[-1] == ' ' || p[-1] == ';' || p[-1] == '\t') && p[nl] == '=')
			break;
		p += nl;
	}
	if (p == NULL)
		return -1;
	p += nl + 1;
	if (*p == '"') {
		for (p++; *p && *p != '"' && i + 1 < outlen; p++) {
			if (*p == '\\' && p[1])
				p++;
			out[i++] = *p;
		}
	} else
		for (; *p && *p != ';' && *p != ' ' && i + 1 < outlen; p++)
			out[i++] = *p;
	out[i] = '\0';
	return 0;
}

/* undici escapes '"', CR and LF in multipart filenames as %22, %0D, %0A. */
static void files_unescape_filename(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '%' &&
		    (strncmp(r, "%22", 3) == 0 || strncasecmp(r, "%0A", 3) == 0 || strncasecmp(r, "%0D", 3) == 0)) {
			*w++ = r[2] == '2' ? '"' : (r[2] == 'A' || r[2] == 'a') ? '\n' : '\r';
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
}

/* Split a multipart/form-data body into its "file" parts. */
static int files_multipart(const uint8_t *body, size_t len, const char *boundary, const char *qpath,
                           struct files_upload *ups, size_t *nups, char *err, size_t errlen)
{
	char delim[256];
	size_t dl = (size_t)snprintf(delim, sizeof(delim), "--%s", boundary);
	const uint8_t *p = memmem(body, len, delim, dl), *end = body + len;

	*nups = 0;
	if (p == NULL) {
		snprintf(err, errlen, "error parsing multipart form: no boundary");
		return -1;
	}
	for (;;) {
		const uint8_t *hdr, *hend, *next;
		char hbuf[4096], disp[1024], name[64], fname[2048];
		size_t hl;

		p += dl;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			return 0; /* closing delimiter */
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
			break;
		hdr = p + 2;
		if ((hend = memmem(hdr, (size_t)(end - hdr), "\r\n\r\n", 4)) == NULL)
			break;
		if ((next = memmem(hend + 4, (size_t)(end - hend - 4), delim, dl)) == NULL || next - hend - 4 < 2)
			break;
		hl = (size_t)(hend - hdr) < sizeof(hbuf) - 1 ? (size_t)(hend - hdr) : sizeof(hbuf) - 1;
		memcpy(hbuf, hdr, hl);
		hbuf[hl] = '\0';
		disp[0] = name[0] = fname[0] = '\0';
		for (char *ls, *line = strtok_r(hbuf, "\r\n", &ls); line != NULL; line = strtok_r(NULL, "\r\n", &ls))
			if (strncasecmp(line, "Content-Disposition:", 20) == 0)
				snprintf(disp, sizeof(disp), "%s", line + 20);
		files_header_param(disp, "name", name, sizeof(name));
		files_header_param(disp, "filename", fname, sizeof(fname));
		files_unescape_filename(fname);
		if (strcmp(name, "file") == 0) {
			if (*nups >= FILES_MAX_PARTS) {
				snprintf(err, errlen, "too many files in one upload (max %d)", FILES_MAX_PARTS);
				return -1;
			}
			ups[*nups].path = sandbox_clean_path(qpath != NULL && *qpath ? qpath : fname);
			ups[*nups].data = hend + 4;
			ups[*nups].len = (size_t)(next - hend - 4 - 2); /* minus the CRLF before the delimiter */
			for (size_t i = 0; i < *nups; i++)
				if (strcmp(ups[i].path, ups[*nups].path) == 0) {
					snprintf(err, errlen, "cannot upload multiple files to the same path '%s'",
					         ups[i].path);
					free(ups[*nups].path);
					return -1;
				}
			(*nups)++;
		}
		p = next;
	}
	snprintf(err, errlen, "error parsing multipart form: malformed body");
	return -1;
}

static void files_upload(struct evhttp_request *req, struct sandbox *sbx, const char *qpath)
{
	const char *ct = emu_header(req, "Content-Type"), *ce = emu_header(req, "Content-Encoding");
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), nups = 0, i;
	const uint8_t *body = evbuffer_pullup(in, -1);
	uint8_t *inflated = NULL;
	struct files_upload *ups = emu_xcalloc(FILES_MAX_PARTS, sizeof(*ups));
	char boundary[200], err[1024];
	int status = 400, rc = -1;
	json_t *arr;

	if (ce != NULL && strcasecmp(ce, "gzip") == 0) {
		if (files_gunzip(body, len, &inflated, &len) != 0) {
			emu_reply_api_error(req, 400, "failed to decompress gzip body");
			free(ups);
			return;
		}
		body = inflated;
	} else if (ce != NULL && strcasecmp(ce, "identity") != 0) {
		emu_reply_api_error(req, 400, "unsupported Content-Encoding: %s", ce);
		free(ups);
		return;
	}
	if (ct != NULL && strncasecmp(ct, "application/octet-stream", 24) == 0) {
		if (qpath == NULL || *qpath == '\0')
			snprintf(err, sizeof(err), "path query parameter is required for octet-stream uploads");
		else {
			ups[0].path = sandbox_clean_path(qpath);
			ups[0].data = body;
			ups[0].len = len;
			nups = 1;
			rc = 0;
		}
	} else if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0 &&
	           files_header_param(ct, "boundary", boundary, sizeof(boundary)) == 0 && boundary[0])
		rc = files_multipart(body, len, boundary, qpath, ups, &nups, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "unsupported content type: %s", ct ? ct : "(none)");
	if (rc == 0 && nups == 0) {
		snprintf(err, sizeof(err), "no file part in the upload");
		rc = -1;
	}
	for (i = 0; rc == 0 && i < nups; i++)
		rc = files_write_one(sbx, &ups[i], evhttp_request_get_input_headers(req), err, sizeof(err), &status);
	if (rc != 0)
		emu_reply_api_error(req, status, "%s", err);
	else {
		arr = json_array();
		for (i = 0; i < nups; i++)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "path", ups[i].path, "name",
			                                     strrchr(ups[i].path, '/') + 1, "type", "file"));
		emu_reply_json(req, 200, arr);
	}
	for (i = 0; i < nups; i++)
		free(ups[i].path);
	free(ups);
	free(inflated);
}

void envd_files_handle(struct evhttp_request *req, struct sandbox *sbx, const char *query)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evkeyvalq q;
	const char *path;
	char *clean;

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) != 0) {
		emu_reply_api_error(req, 400, "malformed query string");
		return;
	}
	path = evhttp_find_header(&q, "path");
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_POST)
		emu_reply_api_error(req, 405, "method not allowed");
	else if (files_authorize(req, sbx, &q, cmd == EVHTTP_REQ_GET ? "read" : "write") == 0) {
		if (cmd == EVHTTP_REQ_POST)
			files_upload(req, sbx, path);
		else if ((clean = sandbox_clean_path(path)) == NULL)
			emu_reply_api_error(req, 400, "invalid path");
		else {
			files_download(req, sbx, clean);
			free(clean);
		}
	}
	evhttp_clear_headers(&q);
}
