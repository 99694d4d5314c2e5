/*
 * mysqlc.c: what the mysql.* drivers share: a libmariadb connection from
 * the step's connection fields (user or username, as Osiris accepts).
 */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drivers.h"

/* Connect with the cfg's connection fields; utf8mb4, timeouts, TLS when
 * asked (ssl: true, ssl_mode REQUIRED/VERIFY_*, or an ssl_ca). */
int mysqlc_connect(struct driver_ctx *ctx, const json_t *cfg, struct st_mysql **out)
{
	char n[6][32];
	const char *host = cfg_conn(cfg, "host", n[0], sizeof(n[0])), *port = cfg_conn(cfg, "port", n[1], 32);
	const char *user = cfg_conn(cfg, "user", n[2], 32), *pw = cfg_conn(cfg, "password", n[3], 32);
	const char *db = cfg_conn(cfg, "database", n[4], 32), *v;
	unsigned int ct = 30, rt = 300;
	my_bool on = 1;
	MYSQL *m;

	if (user == NULL)
		user = cfg_conn(cfg, "username", n[2], 32); /* Osiris' docs say username, its driver user */
	if ((v = cfg_conn(cfg, "timeout", n[5], 32)) != NULL || (v = cfg_conn(cfg, "connect_timeout", n[5], 32)))
		ct = (unsigned)strtoul(v, NULL, 10);
	if ((v = cfg_conn(cfg, "read_timeout", n[5], 32)) != NULL)
		rt = (unsigned)strtoul(v, NULL, 10);
	if ((m = mysql_init(NULL)) == NULL)
		return ctx_fail(ctx, "ConnectionError", "mysql: out of memory");
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rt);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rt);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	v = cfg_conn(cfg, "ssl_mode", n[5], 32);
	if ((v != NULL && strcasecmp(v, "DISABLED") != 0 && strcasecmp(v, "PREFERRED") != 0) ||
	    ((v = cfg_conn(cfg, "ssl", n[5], 32)) != NULL && strcmp(v, "true") == 0) ||
	    cfg_conn(cfg, "ssl_ca", n[5], 32) != NULL) {
		mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
		if ((v = cfg_conn(cfg, "ssl_ca", n[5], 32)) != NULL) {
			mysql_options(m, MYSQL_OPT_SSL_CA, v);
			mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
		}
	}
	if (mysql_real_connect(m, host ? host : "localhost", user ? user : "root", pw ? pw : "", db,
	                       port ? (unsigned)strtoul(port, NULL, 10) : 3306, NULL, 0) == NULL) {
		ctx_fail(ctx, "ConnectionError", "mysql: cannot connect to %s:%s: %s", host ? host : "localhost",
		         port ? port : "3306", mysql_error(m));
		mysql_close(m);
		return -1;
	}
	*out = m;
	return 0;
}
