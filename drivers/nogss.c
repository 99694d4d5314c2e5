/*
 * nogss.c: the GSSAPI and LDAP calls Debian's libpq.a makes, for
 * osiris-worker-static only (Debian ships no static libgssapi_krb5 or
 * libldap). Each one fails: libpq then skips GSSAPI encryption under the
 * default gssencmode=prefer, and a server asking for Kerberos, a
 * gssencmode=require connection or an ldap:// service lookup fails the
 * step with libpq's own error, which names GSSAPI/LDAP. Never linked into
 * the dynamic worker, whose libpq has the real libraries.
 */
#include <stddef.h>

struct nogss_buffer {
	size_t length;
	void *value;
};

/* GSS_S_FAILURE: a routine error, "unspecified failure". */
#define NOGSS_FAILURE (13u << 16)
#define NOGSS_WHY "GSSAPI is not available in osiris-worker-static"

void *GSS_C_NT_HOSTBASED_SERVICE;

static unsigned int nogss_fail(unsigned int *minor)
{
	if (minor != NULL)
		*minor = 0;
	return NOGSS_FAILURE;
}

unsigned int gss_acquire_cred(unsigned int *minor, void *a, unsigned b, void *c, int d, void *e, void *f, void *g);
unsigned int gss_delete_sec_context(unsigned int *minor, void *a, void *b);
unsigned int gss_display_status(unsigned int *minor, unsigned int status, int type, void *mech, unsigned int *more,
                                struct nogss_buffer *out);
unsigned int gss_import_name(unsigned int *minor, void *a, void *b, void *c);
unsigned int gss_init_sec_context(unsigned int *minor, void *a, void *b, void *c, void *d, unsigned int e,
                                  unsigned int f, void *g, void *h, void *i, void *j, void *k, void *l);
unsigned int gss_release_buffer(unsigned int *minor, struct nogss_buffer *buf);
unsigned int gss_release_cred(unsigned int *minor, void *a);
unsigned int gss_release_name(unsigned int *minor, void *a);
unsigned int gss_unwrap(unsigned int *minor, void *a, void *b, void *c, void *d, void *e);
unsigned int gss_wrap(unsigned int *minor, void *a, int b, int c, void *d, void *e, void *f);
unsigned int gss_wrap_size_limit(unsigned int *minor, void *a, int b, int c, unsigned int d, unsigned int *e);

unsigned int gss_acquire_cred(unsigned int *minor, void *a, unsigned b, void *c, int d, void *e, void *f, void *g)
{
	(void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g;
	return nogss_fail(minor);
}

unsigned int gss_delete_sec_context(unsigned int *minor, void *a, void *b)
{
	(void)a, (void)b;
	return nogss_fail(minor);
}

/* libpq prints out->value as a string and loops while *more is set. */
unsigned int gss_display_status(unsigned int *minor, unsigned int status, int type, void *mech, unsigned int *more,
                                struct nogss_buffer *out)
{
	static char why[] = NOGSS_WHY;

	(void)status, (void)type, (void)mech;
	if (more != NULL)
		*more = 0;
	if (out != NULL) {
		out->value = why;
		out->length = sizeof(why) - 1;
	}
	if (minor != NULL)
		*minor = 0;
	return 0;
}

unsigned int gss_import_name(unsigned int *minor, void *a, void *b, void *c)
{
	(void)a, (void)b, (void)c;
	return nogss_fail(minor);
}

unsigned int gss_init_sec_context(unsigned int *minor, void *a, void *b, void *c, void *d, unsigned int e,
                                  unsigned int f, void *g, void *h, void *i, void *j, void *k, void *l)
{
	(void)a, (void)b, (void)c, (void)d, (void)e, (void)f, (void)g, (void)h, (void)i, (void)j, (void)k, (void)l;
	return nogss_fail(minor);
}

/* Nothing here allocates: the only buffer handed out is static. */
unsigned int gss_release_buffer(unsigned int *minor, struct nogss_buffer *buf)
{
	if (buf != NULL) {
		buf->value = NULL;
		buf->length = 0;
	}
	if (minor != NULL)
		*minor = 0;
	return 0;
}

unsigned int gss_release_cred(unsigned int *minor, void *a)
{
	(void)a;
	if (minor != NULL)
		*minor = 0;
	return 0;
}

unsigned int gss_release_name(unsigned int *minor, void *a)
{
	(void)a;
	if (minor != NULL)
		*minor = 0;
	return 0;
}

unsigned int gss_unwrap(unsigned int *minor, void *a, void *b, void *c, void *d, void *e)
{
	(void)a, (void)b, (void)c, (void)d, (void)e;
	return nogss_fail(minor);
}

unsigned int gss_wrap(unsigned int *minor, void *a, int b, int c, void *d, void *e, void *f)
{
	(void)a, (void)b, (void)c, (void)d, (void)e, (void)f;
	return nogss_fail(minor);
}

unsigned int gss_wrap_size_limit(unsigned int *minor, void *a, int b, int c, unsigned int d, unsigned int *e)
{
	(void)a, (void)b, (void)c, (void)d, (void)e;
	return nogss_fail(minor);
}

/*
 * LDAP: libpq calls ldap_init first for an ldap:// service URL; NULL makes
 * it fail with "could not create LDAP structure", so the rest is never
 * reached.
 */
void *ldap_init(const char *host, int port);
int ldap_count_entries(void *ld, void *msg);
char *ldap_err2string(int err);
void *ldap_first_entry(void *ld, void *msg);
void **ldap_get_values_len(void *ld, void *entry, const char *attr);
int ldap_msgfree(void *msg);
int ldap_result(void *ld, int id, int all, void *tv, void **msg);
int ldap_search_st(void *ld, const char *base, int scope, const char *filter, char **attrs, int attrsonly, void *tv,
                   void **msg);
int ldap_set_option(void *ld, int opt, const void *val);
int ldap_simple_bind(void *ld, const char *who, const char *pw);
int ldap_unbind(void *ld);
void ldap_value_free_len(void **vals);

#define NOLDAP_ERR (-1)

void *ldap_init(const char *host, int port)
{
	(void)host, (void)port;
	return NULL;
}

int ldap_count_entries(void *ld, void *msg)
{
	(void)ld, (void)msg;
	return NOLDAP_ERR;
}

char *ldap_err2string(int err)
{
	static char why[] = "LDAP is not available in osiris-worker-static";

	(void)err;
	return why;
}

void *ldap_first_entry(void *ld, void *msg)
{
	(void)ld, (void)msg;
	return NULL;
}

void **ldap_get_values_len(void *ld, void *entry, const char *attr)
{
	(void)ld, (void)entry, (void)attr;
	return NULL;
}

int ldap_msgfree(void *msg)
{
	(void)msg;
	return 0;
}

int ldap_result(void *ld, int id, int all, void *tv, void **msg)
{
	(void)ld, (void)id, (void)all, (void)tv;
	if (msg != NULL)
		*msg = NULL;
	return NOLDAP_ERR;
}

int ldap_search_st(void *ld, const char *base, int scope, const char *filter, char **attrs, int attrsonly, void *tv,
                   void **msg)
{
	(void)ld, (void)base, (void)scope, (void)filter, (void)attrs, (void)attrsonly, (void)tv;
	if (msg != NULL)
		*msg = NULL;
	return NOLDAP_ERR;
}

int ldap_set_option(void *ld, int opt, const void *val)
{
	(void)ld, (void)opt, (void)val;
	return NOLDAP_ERR;
}

int ldap_simple_bind(void *ld, const char *who, const char *pw)
{
	(void)ld, (void)who, (void)pw;
	return NOLDAP_ERR;
}

int ldap_unbind(void *ld)
{
	(void)ld;
	return 0;
}

void ldap_value_free_len(void **vals)
{
	(void)vals;
}
