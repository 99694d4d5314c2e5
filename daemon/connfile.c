/*
 * connfile.c: the daemon's own connections (daemon.connections_file, the
 * osiris_connections.yaml layout), read at start, never shipped as a file:
 * for each run the aliases its cfgs name are resolved here (${VAR} from the
 * run's secrets, its env, then $CREDENTIALS_DIRECTORY) and travel to the
 * worker as one secret of `prepare`. Credentials that the context's own
 * osiris_connections.yaml names go the same way, so the worker can resolve
 * that file with the same precedence.
 *
 * Who may use what: an alias's `allow:` list (uids, user names,
 * "group:NAME", "*"), and a credential's under the top-level
 * `credentials: {NAME: {allow: [...]}}`, compiled to uids at start; without
 * one, only root and the daemon's own uid. A run's submitter (its uid from
 * SO_PEERCRED) outside the list gets an error for that alias instead of its
 * fields, and no credential it is not allowed.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osirisd.h"

#define CONNFILE_MAX (1024 * 1024)
#define CONNFILE_CRED_MAX (64 * 1024)

#define CONNFILE_ALLOW_MAX 4096 /* uids in one compiled allow list */

static struct {
	json_t *conns; /* NULL: no daemon.connections_file */
	json_t *creds; /* {NAME: compiled allow} (see connfile_allow_compile) */
} cf;

/* Every uid whose primary or supplementary group is gid (at start: the
 * passwd and group databases may block, which is fine before the loop). */
static void connfile_group_uids(const struct group *gr, json_t *uids)
{
	struct passwd *pw;
	char **m;

	for (m = gr->gr_mem; m != NULL && *m != NULL; m++)
		if ((pw = getpwnam(*m)) != NULL)
			json_array_append_new(uids, json_integer(pw->pw_uid));
	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_gid == gr->gr_gid)
			json_array_append_new(uids, json_integer(pw->pw_uid));
	endpwent();
}

/* One allow entry into uids (or *all): -1 with err when it names nobody. */
static int connfile_allow_entry(const json_t *e, json_t *uids, int *all, char *err, size_t errlen)
{
	const char *s = json_string_value(e);
	struct passwd *pw;
	struct group *gr;

	if (json_is_integer(e) && json_integer_value(e) >= 0 && json_integer_value(e) <= UINT32_MAX) {
		json_array_append(uids, (json_t *)e);
		return 0;
	}
	if (s == NULL || s[0] == '\0') {
		snprintf(err, errlen, "an entry is not a uid, a user name, group:NAME or \"*\"");
		return -1;
	}
	if (strcmp(s, "*") == 0) {
		*all = 1;
		return 0;
	}
	if (strncmp(s, "group:", 6) == 0) {
		if ((gr = getgrnam(s + 6)) == NULL) {
			snprintf(err, errlen, "no group '%s'", log_esc(s + 6, 64));
			return -1;
		}
		connfile_group_uids(gr, uids);
		return 0;
	}
	if ((pw = getpwnam(s)) == NULL) {
		snprintf(err, errlen, "no user '%s'", log_esc(s, 64));
		return -1;
	}
	json_array_append_new(uids, json_integer(pw->pw_uid));
	return 0;
}

/* An `allow:` value (a list, or one entry) -> the JSON array of uids, or
 * true for anyone ("*"). Absent: root and the daemon's own uid. */
static json_t *connfile_allow_compile(const json_t *allow, char *err, size_t errlen)
{
	json_t *uids = json_array(), *one = NULL;
	const json_t *e;
	size_t i;
	int all = 0;

	if (allow == NULL) {
		json_array_append_new(uids, json_integer(0));
		json_array_append_new(uids, json_integer(geteuid()));
		return uids;
	}
	if (!json_is_array(allow))
		allow = one = json_pack("[O]", allow);
	json_array_foreach(allow, i, e)
	{
		if (connfile_allow_entry(e, uids, &all, err, errlen) == -1 ||
		    json_array_size(uids) > CONNFILE_ALLOW_MAX) {
			if (json_array_size(uids) > CONNFILE_ALLOW_MAX)
				snprintf(err, errlen, "more than %d uids", CONNFILE_ALLOW_MAX);
			json_decref(uids);
			json_decref(one);
			return NULL;
		}
	}
	json_decref(one);
	if (all) {
		json_decref(uids);
		return json_true();
	}
	return uids;
}

/* Replace every alias's `allow` by its compiled form; compile credentials'. */
static int connfile_compile(const char *path, json_t *conns, json_t *creds, char *err, size_t errlen)
{
	const char *fam, *alias;
	json_t *f, *a, *c;
	char why[256];

	json_object_foreach(conns, fam, f)
	{
		if (!json_is_object(f))
			continue;
		json_object_foreach(f, alias, a)
		{
			if (!json_is_object(a))
				continue;
			if ((c = connfile_allow_compile(json_object_get(a, "allow"), why, sizeof(why))) == NULL) {
				snprintf(err, errlen, "daemon.connections_file %s: connection %s.%s: allow: %s", path,
				         log_esc(fam, 64), log_esc(alias, 64), why);
				return -1;
			}
			json_object_set_new(a, "allow", c);
		}
	}
	json_object_foreach(creds, alias, a)
	{
		if ((c = connfile_allow_compile(json_is_object(a) ? json_object_get(a, "allow") : NULL, why,
		                                sizeof(why))) == NULL) {
			snprintf(err, errlen, "daemon.connections_file %s: credentials %s: allow: %s", path,
			         log_esc(alias, 64), why);
			return -1;
		}
		json_object_set_new(creds, alias, c);
	}
	return 0;
}

/* 1 when uid is in the compiled allow list (an unknown uid, -1, only by "*"). */
static int connfile_allowed(const json_t *allow, int64_t uid)
{
	const json_t *e;
	size_t i;

	if (json_is_true(allow))
		return 1;
	json_array_foreach(allow, i, e)
	{
		if (uid >= 0 && json_integer_value(e) == uid)
			return 1;
	}
	return 0;
}

/* A credential the run's submitter may read: listed under `credentials:`
 * with it in the allow list, else only root and the daemon's uid. */
static int connfile_credential_allowed(const struct run *r, const char *name)
{
	const json_t *allow = cf.creds != NULL ? json_object_get(cf.creds, name) : NULL;

	if (allow == NULL)
		return r->info.uid == 0 || r->info.uid == (int64_t)geteuid();
	return connfile_allowed(allow, r->info.uid);
}

int connfile_init(const char *path, char *err, size_t errlen)
{
	struct buf text;
	struct stat sb;
	int fd, rc;

	if (path == NULL)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		snprintf(err, errlen, "daemon.connections_file %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(sb.st_mode) || (sb.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		snprintf(err, errlen, "daemon.connections_file %s: %s (mode %04o): it holds secrets, chmod o-rw it",
		         path, S_ISREG(sb.st_mode) ? "readable or writable by others" : "not a regular file",
		         (unsigned)(sb.st_mode & 07777));
		return -1;
	}
	buf_init(&text);
	if (file_read_all(path, CONNFILE_MAX, &text) == -1) {
		snprintf(err, errlen, "daemon.connections_file %s: %s", path, strerror(errno));
		buf_free(&text);
		return -1;
	}
	rc = conn_parse_all(path, (const char *)text.data, text.len, &cf.conns, &cf.creds, err, errlen);
	explicit_bzero(text.data, text.len);
	buf_free(&text);
	if (rc == 0)
		rc = connfile_compile(path, cf.conns, cf.creds, err, errlen);
	return rc;
}

void connfile_shutdown(void)
{
	json_decref(cf.conns);
	json_decref(cf.creds);
	cf.conns = cf.creds = NULL;
}

/* A systemd credential (LoadCredential=): $CREDENTIALS_DIRECTORY/NAME, one
 * trailing newline dropped. NULL when absent. */
static char *connfile_credential(const char *name)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	struct buf b;
	char *path, *s;

	if (dir == NULL || dir[0] == '\0')
		return NULL;
	xasprintf(&path, "%s/%s", dir, name);
	buf_init(&b);
	if (file_read_all(path, CONNFILE_CRED_MAX, &b) == -1) {
		free(path);
		buf_free(&b);
		return NULL;
	}
	free(path);
	if (b.len > 0 && b.data[b.len - 1] == '\n')
		b.len--;
	s = buf_cstr(&b);
	return s;
}

struct connfile_lookup {
	const struct run *r;
	char *owned[64]; /* credential values read for this resolution */
	size_t nowned;
};

static const char *connfile_lookup_cb(void *arg, const char *name, int *secret)
{
	struct connfile_lookup *l = arg;
	const char *v;
	char *c;

	if ((v = kvlist_get(&l->r->secrets, name)) != NULL) {
		*secret = 1;
		return v;
	}
	if ((v = kvlist_get(&l->r->info.env, name)) != NULL)
		return v;
	if (l->nowned == sizeof(l->owned) / sizeof(l->owned[0]) || (c = connfile_credential(name)) == NULL)
		return NULL;
	*secret = 1;
	l->owned[l->nowned++] = c;
	return c;
}

static void connfile_lookup_free(struct connfile_lookup *l)
{
	size_t i;

	for (i = 0; i < l->nowned; i++) {
		explicit_bzero(l->owned[i], strlen(l->owned[i]));
		free(l->owned[i]);
	}
	l->nowned = 0;
}

/* The bundle file at the manifest's directory + rel, else NULL. */
static const struct bundle_file *connfile_bundle_file(const struct run *r, const char *rel)
{
	const char *mp = r->manifest_path != NULL ? r->manifest_path : "manifest.yaml";
	const char *slash = strrchr(mp, '/');
	const struct bundle_file *f;
	char *path;

	xasprintf(&path, "%.*s%s", slash ? (int)(slash - mp + 1) : 0, mp, rel);
	f = bundle_find(&r->bundle, path);
	free(path);
	return f;
}

/* The daemon masks what it relays too (step errors), like the worker. */
static void connfile_mask(const struct run *r, const json_t *fields, const json_t *secrets)
{
	const json_t *name;
	size_t i;

	if (fields == NULL || r->mask == NULL)
		return;
	json_array_foreach(secrets, i, name)
	{
		const json_t *v = json_object_get(fields, json_string_value(name));
		if (json_is_string(v))
			mask_add(r->mask, json_string_value(v));
	}
}

/* One reference ("@family.alias") into out[ref]: fields and the names of
 * the secret ones, or the one-line error the step will fail with. */
static void connfile_resolve_ref(const struct run *r, const char *ref, json_t *out)
{
	struct connfile_lookup l = {.r = r};
	const json_t *c;
	const char *found;
	json_t *fields, *secrets, *e;
	char *family, *alias, what[256], err[512];

	if (json_object_get(out, ref) != NULL || conn_ref_parse(ref, &family, &alias) == -1)
		return;
	if ((c = conn_find(cf.conns, family, alias, &found)) != NULL) {
		snprintf(what, sizeof(what), "connection %s (daemon.connections_file, alias '%s')", log_esc(ref, 100),
		         found);
		if (!connfile_allowed(json_object_get(c, "allow"), r->info.uid)) {
			snprintf(err, sizeof(err), "%s: uid %lld may not use it (not in its allow list)", what,
			         (long long)r->info.uid);
			log_info("run=%s uid=%lld refused connection %s", r->info.id, (long long)r->info.uid, what);
			json_object_set_new(out, ref, json_pack("{s:s}", "error", err));
			free(family);
			free(alias);
			return;
		}
		fields = conn_resolve(c, what, connfile_lookup_cb, &l, &secrets, err, sizeof(err));
		connfile_mask(r, fields, secrets);
		e = fields != NULL ? json_pack("{s:o,s:o}", "fields", fields, "secret", secrets)
		                   : json_pack("{s:s}", "error", err);
		json_object_set_new(out, ref, e);
		connfile_lookup_free(&l);
	}
	free(family);
	free(alias);
}

/* The references the run's cfgs make (top-level "connection"). */
static json_t *connfile_run_refs(const struct run *r)
{
	const struct bundle_file *f;
	json_t *refs = json_object(), *cfg, *c;
	size_t i;

	for (i = 0; i < r->man.nsteps; i++) {
		if ((f = connfile_bundle_file(r, r->man.steps[i].cfg_path)) == NULL)
			continue;
		cfg = json_loadb((const char *)f->data, f->len, 0, NULL);
		c = json_object_get(cfg, "connection");
		if (json_is_string(c) && json_string_value(c)[0] == '@')
			json_object_set_new(refs, json_string_value(c), json_true());
		json_decref(cfg);
	}
	return refs;
}

/* ${NAME}s of the context's osiris_connections.yaml that only a credential
 * provides become secrets of the run (secrets and env win, as in Osiris),
 * those the submitter may read; the others go to refused {NAME: error}. */
static void connfile_context_credentials(const struct run *r, struct kvlist *out, json_t *refused)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const struct bundle_file *f = connfile_bundle_file(r, CONN_CONTEXT_FILE);
	const char *p, *end, *q;
	char name[128], *v;
	size_t n;

	if (f == NULL)
		f = bundle_find(&r->bundle, CONN_CONTEXT_FILE);
	if (f == NULL)
		return;
	end = (const char *)f->data + f->len;
	for (p = (const char *)f->data; p + 2 < end; p++) {
		if (p[0] != '$' || p[1] != '{')
			continue;
		for (q = p + 2; q < end && (isalnum((unsigned char)*q) || *q == '_'); q++)
			;
		n = (size_t)(q - p - 2);
		if (q == end || *q != '}' || n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, p + 2, n);
		name[n] = '\0';
		if (kvlist_get(&r->secrets, name) != NULL || kvlist_get(&r->info.env, name) != NULL ||
		    kvlist_get(out, name) != NULL || dir == NULL || dir[0] == '\0' ||
		    json_object_get(refused, name) != NULL)
			continue;
		if (!connfile_credential_allowed(r, name)) {
			json_object_set_new(
			    refused, name,
			    json_sprintf("credential %s: uid %lld may not read it (credentials: %s: allow: in "
			                 "daemon.connections_file)",
			                 name, (long long)r->info.uid, name));
			log_info("run=%s uid=%lld refused credential %s", r->info.id, (long long)r->info.uid, name);
			continue;
		}
		if ((v = connfile_credential(name)) == NULL)
			continue;
		kvlist_add(out, name, v);
		if (r->mask != NULL)
			mask_add(r->mask, v);
		explicit_bzero(v, strlen(v));
		free(v);
	}
}

void connfile_run_secrets(const struct run *r, struct kvlist *out)
{
	json_t *refs, *res, *v, *refused = json_object();
	const char *ref;
	char *text;

	connfile_context_credentials(r, out, refused);
	res = json_object();
	if (json_object_size(refused) > 0)
		json_object_set(res, CONNECTIONS_REFUSED, refused);
	json_decref(refused);
	if (cf.conns != NULL) {
		refs = connfile_run_refs(r);
		json_object_foreach(refs, ref, v) connfile_resolve_ref(r, ref, res);
		json_decref(refs);
	}
	if (json_object_size(res) > 0 && (text = json_dumps(res, JSON_COMPACT)) != NULL) {
		kvlist_add(out, CONNECTIONS_SECRET, text);
		explicit_bzero(text, strlen(text));
		free(text);
	}
	json_decref(res);
}
