/*
 * manifest.c: parse and check a compiled Osiris manifest.yaml (libyaml
 * document API) and its cfg/<step>.json files (jansson). Every rejection is
 * one line naming the file and, for YAML, the line: "manifest.yaml:12: ...".
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common.h"

#define MANIFEST_NAME "manifest.yaml"
#define MANIFEST_MAX_STEPS 4096
#define MANIFEST_MAX_NEEDS 4096
#define MANIFEST_MAX_CFG_DEPTH 64

struct manifest_parser {
	yaml_document_t doc;
	struct manifest *m;
	size_t *lines; /* line of each step's mapping */
	char *err;
	size_t errlen;
};

static int manifest_error(struct manifest_parser *p, size_t line, const char *fmt, ...) PRINTFLIKE(3, 4);

static int manifest_error(struct manifest_parser *p, size_t line, const char *fmt, ...)
{
	char msg[512], one[512 * 4];
	size_t i, o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Ids and paths come from the manifest: a quoted YAML scalar can hold
	 * newlines, and the error must stay one line. */
	for (i = 0; msg[i] != '\0' && o + 5 < sizeof(one); i++) {
		unsigned char c = (unsigned char)msg[i];
		if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(one + o, sizeof(one) - o, "\\x%02x", c);
		else
			one[o++] = (char)c;
	}
	one[o] = '\0';
	snprintf(p->err, p->errlen, "%s:%zu: %s", MANIFEST_NAME, line, one);
	return -1;
}

static size_t manifest_node_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

/* Value of key `key` in mapping `map`, or NULL. */
static yaml_node_t *manifest_map_get(struct manifest_parser *p, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(&p->doc, pair->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE && strlen(key) == k->data.scalar.length &&
		    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
			return yaml_document_get_node(&p->doc, pair->value);
	}
	return NULL;
}

static int manifest_is_null(const yaml_node_t *n)
{
	const char *v;

	if (n == NULL)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)n->data.scalar.value;
	return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	       strcmp(v, "NULL") == 0;
}

/* A non-empty scalar string without NUL, copied; NULL after an error. */
static char *manifest_scalar(struct manifest_parser *p, yaml_node_t *n, const char *what, const char *step_id,
                             size_t line)
{
	const char *sid = step_id ? step_id : "?";

	if (n == NULL || manifest_is_null(n)) {
		manifest_error(p, line, "step '%s': missing '%s'", sid, what);
		return NULL;
	}
	if (n->type != YAML_SCALAR_NODE) {
		manifest_error(p, manifest_node_line(n), "step '%s': '%s' must be a string", sid, what);
		return NULL;
	}
	if (n->data.scalar.length == 0 || strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
		manifest_error(p, manifest_node_line(n), "step '%s': '%s' must be a non-empty string", sid, what);
		return NULL;
	}
	return xstrndup((const char *)n->data.scalar.value, n->data.scalar.length);
}

static int manifest_step_needs(struct manifest_parser *p, struct manifest_step *s, yaml_node_t *needs)
{
	yaml_node_item_t *it;
	size_t n, i;

	if (manifest_is_null(needs))
		return 0;
	if (needs->type != YAML_SEQUENCE_NODE)
		return manifest_error(p, manifest_node_line(needs), "step '%s': 'needs' must be a list", s->id);
	n = (size_t)(needs->data.sequence.items.top - needs->data.sequence.items.start);
	if (n > MANIFEST_MAX_NEEDS)
		return manifest_error(p, manifest_node_line(needs), "step '%s': too many needs", s->id);
	s->needs = xcalloc(n ? n : 1, sizeof(*s->needs));
	for (it = needs->data.sequence.items.start; it < needs->data.sequence.items.top; it++) {
		yaml_node_t *v = yaml_document_get_node(&p->doc, *it);
		char *id = manifest_scalar(p, v, "needs", s->id, manifest_node_line(needs));
		if (id == NULL)
			return -1;
		for (i = 0; i < s->nneeds; i++) {
			if (strcmp(s->needs[i], id) == 0) {
				manifest_error(p, manifest_node_line(v), "step '%s' lists need '%s' twice", s->id, id);
				free(id);
				return -1;
			}
		}
		s->needs[s->nneeds++] = id;
	}
	return 0;
}

static int manifest_step_parse(struct manifest_parser *p, struct manifest_step *s, yaml_node_t *n,
                               const struct manifest_drivers *drivers)
{
	size_t line = manifest_node_line(n);
	yaml_node_t *drv;

	if (n->type != YAML_MAPPING_NODE)
		return manifest_error(p, line, "each step must be a mapping");
	if ((s->id = manifest_scalar(p, manifest_map_get(p, n, "id"), "id", NULL, line)) == NULL)
		return -1;
	drv = manifest_map_get(p, n, "driver");
	if (manifest_is_null(drv))
		drv = manifest_map_get(p, n, "component");
	if ((s->driver = manifest_scalar(p, drv, "driver", s->id, line)) == NULL)
		return -1;
	if (drivers != NULL && !drivers->known(s->driver, drivers->arg))
		return manifest_error(p, manifest_node_line(drv), "step '%s': unknown driver '%s'", s->id,
		                      log_esc(s->driver, 128));
	s->cfg_path = manifest_scalar(p, manifest_map_get(p, n, "cfg_path"), "cfg_path", s->id, line);
	if (s->cfg_path == NULL)
		return -1;
	if (!path_is_safe(s->cfg_path))
		return manifest_error(p, line, "step '%s': cfg_path \"%s\" is absolute or escapes the run context",
		                      s->id, log_esc(s->cfg_path, 256));
	return manifest_step_needs(p, s, manifest_map_get(p, n, "needs"));
}

static int manifest_steps_parse(struct manifest_parser *p, yaml_node_t *root, const struct manifest_drivers *drivers)
{
	yaml_node_t *steps = manifest_map_get(p, root, "steps");
	struct manifest *m = p->m;
	yaml_node_item_t *it;
	size_t n, i;

	if (manifest_is_null(steps))
		return manifest_error(p, manifest_node_line(root), "missing 'steps'");
	if (steps->type != YAML_SEQUENCE_NODE)
		return manifest_error(p, manifest_node_line(steps), "'steps' must be a list");
	n = (size_t)(steps->data.sequence.items.top - steps->data.sequence.items.start);
	if (n == 0)
		return manifest_error(p, manifest_node_line(steps), "'steps' is empty");
	if (n > MANIFEST_MAX_STEPS)
		return manifest_error(p, manifest_node_line(steps), "more than %d steps", MANIFEST_MAX_STEPS);
	m->steps = xcalloc(n, sizeof(*m->steps));
	p->lines = xcalloc(n, sizeof(*p->lines));
	for (it = steps->data.sequence.items.start; it < steps->data.sequence.items.top; it++) {
		yaml_node_t *sn = yaml_document_get_node(&p->doc, *it);
		struct manifest_step *s = &m->steps[m->nsteps++];
		p->lines[m->nsteps - 1] = manifest_node_line(sn);
		if (manifest_step_parse(p, s, sn, drivers) < 0)
			return -1;
		for (i = 0; i + 1 < m->nsteps; i++)
			if (strcmp(m->steps[i].id, s->id) == 0)
				return manifest_error(p, manifest_node_line(sn),
				                      "duplicate step id '%s' (first at line %zu)", log_esc(s->id, 128),
				                      p->lines[i]);
	}
	return 0;
}

static int manifest_resolve_needs(struct manifest_parser *p)
{
	struct manifest *m = p->m;
	size_t i, j, k;

	for (i = 0; i < m->nsteps; i++) {
		struct manifest_step *s = &m->steps[i];
		s->need_idx = xcalloc(s->nneeds ? s->nneeds : 1, sizeof(*s->need_idx));
		for (j = 0; j < s->nneeds; j++) {
			for (k = 0; k < m->nsteps; k++)
				if (strcmp(m->steps[k].id, s->needs[j]) == 0)
					break;
			if (k == m->nsteps)
				return manifest_error(p, p->lines[i], "step '%s' needs '%s', which is not a step",
				                      log_esc(s->id, 128), log_esc(s->needs[j], 128));
			s->need_idx[j] = k;
		}
	}
	return 0;
}

/* Name one cycle among the steps Kahn's algorithm could not order. */
static int manifest_cycle_error(struct manifest_parser *p, const int *done)
{
	struct manifest *m = p->m;
	size_t *seen = xcalloc(m->nsteps, sizeof(*seen));
	size_t cur, i, first, hops = 0;
	struct buf b;
	int rc;

	for (cur = 0; done[cur]; cur++)
		;
	/* walk needs among unordered steps until a step repeats: it is on a cycle */
	while (seen[cur] == 0) {
		seen[cur] = ++hops;
		for (i = 0; i < m->steps[cur].nneeds; i++)
			if (!done[m->steps[cur].need_idx[i]])
				break;
		cur = m->steps[cur].need_idx[i];
	}
	first = cur;
	buf_init(&b);
	do {
		buf_printf(&b, "%s -> ", log_esc(m->steps[cur].id, 64));
		for (i = 0; i < m->steps[cur].nneeds; i++)
			if (!done[m->steps[cur].need_idx[i]])
				break;
		cur = m->steps[cur].need_idx[i];
	} while (cur != first && b.len < 400);
	buf_printf(&b, "%s", log_esc(m->steps[first].id, 64));
	rc = manifest_error(p, p->lines[first], "needs cycle: %s", buf_cstr(&b));
	buf_free(&b);
	free(seen);
	return rc;
}

/* Kahn's algorithm; among ready steps the earliest in the manifest first. */
static int manifest_toposort(struct manifest_parser *p)
{
	struct manifest *m = p->m;
	size_t *pending = xcalloc(m->nsteps, sizeof(*pending));
	int *done = xcalloc(m->nsteps, sizeof(*done));
	size_t n = 0, i, j, k;
	int rc = 0;

	m->order = xcalloc(m->nsteps, sizeof(*m->order));
	for (i = 0; i < m->nsteps; i++)
		pending[i] = m->steps[i].nneeds;
	while (n < m->nsteps) {
		for (i = 0; i < m->nsteps; i++)
			if (!done[i] && pending[i] == 0)
				break;
		if (i == m->nsteps) {
			rc = manifest_cycle_error(p, done);
			break;
		}
		done[i] = 1;
		m->order[n++] = i;
		for (j = 0; j < m->nsteps; j++)
			for (k = 0; k < m->steps[j].nneeds; k++)
				if (m->steps[j].need_idx[k] == i)
					pending[j]--;
	}
	free(pending);
	free(done);
	return rc;
}

static int manifest_pipeline_parse(struct manifest_parser *p, yaml_node_t *root)
{
	yaml_node_t *pl = manifest_map_get(p, root, "pipeline"), *id;

	if (manifest_is_null(pl))
		return 0;
	if (pl->type != YAML_MAPPING_NODE)
		return manifest_error(p, manifest_node_line(pl), "'pipeline' must be a mapping");
	id = manifest_map_get(p, pl, "id");
	if (manifest_is_null(id))
		return 0;
	if (id->type != YAML_SCALAR_NODE)
		return manifest_error(p, manifest_node_line(id), "'pipeline.id' must be a string");
	p->m->pipeline_id = xstrndup((const char *)id->data.scalar.value, id->data.scalar.length);
	return 0;
}

static int manifest_load(struct manifest_parser *p, const char *text, size_t len)
{
	yaml_parser_t yp;
	int ok;

	if (!yaml_parser_initialize(&yp))
		fatalx("yaml_parser_initialize failed");
	yaml_parser_set_input_string(&yp, (const unsigned char *)text, len);
	ok = yaml_parser_load(&yp, &p->doc);
	if (!ok) {
		size_t line = (yp.problem_mark.line ? yp.problem_mark.line : yp.context_mark.line) + 1;
		manifest_error(p, line, "YAML syntax error: %s%s%s", yp.problem ? yp.problem : "unknown error",
		               yp.context ? " " : "", yp.context ? yp.context : "");
	}
	yaml_parser_delete(&yp);
	return ok ? 0 : -1;
}

int manifest_parse(struct manifest *m, const char *text, size_t len, const struct manifest_drivers *drivers, char *err,
                   size_t errlen)
{
	struct manifest_parser p;
	yaml_node_t *root;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	memset(&p, 0, sizeof(p));
	p.m = m;
	p.err = err;
	p.errlen = errlen;
	if (manifest_load(&p, text, len) < 0)
		return -1;
	root = yaml_document_get_root_node(&p.doc);
	if (root == NULL)
		manifest_error(&p, 1, "empty document");
	else if (root->type != YAML_MAPPING_NODE)
		manifest_error(&p, manifest_node_line(root), "the document must be a mapping");
	else if (manifest_pipeline_parse(&p, root) == 0 && manifest_steps_parse(&p, root, drivers) == 0 &&
	         manifest_resolve_needs(&p) == 0 && manifest_toposort(&p) == 0)
		rc = 0;
	yaml_document_delete(&p.doc);
	free(p.lines);
	if (rc < 0)
		manifest_free(m);
	return rc;
}

void manifest_free(struct manifest *m)
{
	size_t i, j;

	for (i = 0; i < m->nsteps; i++) {
		struct manifest_step *s = &m->steps[i];
		free(s->id);
		free(s->driver);
		free(s->cfg_path);
		for (j = 0; j < s->nneeds; j++)
			free(s->needs[j]);
		free(s->needs);
		free(s->need_idx);
	}
	free(m->steps);
	free(m->order);
	free(m->pipeline_id);
	memset(m, 0, sizeof(*m));
}

const struct manifest_step *manifest_step_find(const struct manifest *m, const char *id)
{
	size_t i;

	for (i = 0; i < m->nsteps; i++)
		if (strcmp(m->steps[i].id, id) == 0)
			return &m->steps[i];
	return NULL;
}

/* Every string under a key "path", at any depth, must stay in the context. */
static int manifest_cfg_paths(const char *name, json_t *v, unsigned depth, char *err, size_t errlen)
{
	const char *key;
	json_t *child;
	size_t i;

	if (depth > MANIFEST_MAX_CFG_DEPTH) {
		snprintf(err, errlen, "%s: nested too deeply", name);
		return -1;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, child)
		{
			if (strcmp(key, "path") == 0 && json_is_string(child) &&
			    !path_is_safe(json_string_value(child))) {
				snprintf(err, errlen, "%s: path \"%s\" is absolute or escapes the run context", name,
				         log_esc(json_string_value(child), 256));
				return -1;
			}
			if (manifest_cfg_paths(name, child, depth + 1, err, errlen) < 0)
				return -1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			if (manifest_cfg_paths(name, child, depth + 1, err, errlen) < 0)
				return -1;
		}
	}
	return 0;
}

int manifest_cfg_check(const char *name, const char *json, size_t len, char *err, size_t errlen)
{
	return manifest_cfg_load(name, json, len, NULL, err, errlen);
}

int manifest_cfg_load(const char *name, const char *json, size_t len, struct json_t **out, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	int rc;

	if (out != NULL)
		*out = NULL;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d: invalid JSON: %s", name, je.line, log_esc(je.text, 160));
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "%s: must be a JSON object", name);
		json_decref(root);
		return -1;
	}
	rc = manifest_cfg_paths(name, root, 0, err, errlen);
	if (rc == 0 && out != NULL)
		*out = root;
	else
		json_decref(root);
	return rc;
}
