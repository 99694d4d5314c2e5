/*
 * tls.c: --tls-cert/--tls-key: HTTPS like E2B's edge, so the daemon's client
 * is tested with certificate verification on. evhttp gets an OpenSSL
 * bufferevent per connection; everything above it is unchanged.
 */
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "emulator.h"

static SSL_CTX *tls_ctx;

static struct bufferevent *tls_bev_cb(struct event_base *base, void *arg)
{
	SSL *ssl = SSL_new(tls_ctx);

	(void)arg;
	if (ssl == NULL)
		emu_fatal("SSL_new failed");
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

static const char *tls_error(void)
{
	unsigned long e = ERR_get_error();

	return e != 0 ? ERR_reason_error_string(e) : "unknown error";
}

void tls_init(struct evhttp *http, const char *cert, const char *key)
{
	if ((tls_ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		emu_fatal("SSL_CTX_new: %s", tls_error());
	SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1)
		emu_fatal("--tls-cert %s: %s", cert, tls_error());
	if (SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1)
		emu_fatal("--tls-key %s: %s", key, tls_error());
	if (SSL_CTX_check_private_key(tls_ctx) != 1)
		emu_fatal("--tls-key %s does not match --tls-cert %s", key, cert);
	evhttp_set_bevcb(http, tls_bev_cb, NULL);
}

void tls_shutdown(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}
