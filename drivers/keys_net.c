/*
 * keys_net.c: the cfg keys of the network drivers, in every build: the real
 * drivers (registry_net.c) and their stand-ins (registry_nonet.c) accept the
 * same keys, so a step warns about the same unknown keys on either worker.
 */
#include "drivers.h"

const char *const pg_extractor_keys[] = {
    "query",    "table",   "schema",   "batch_size", "timeout", "resolved_connection",
    "host",     "port",    "database", "dbname",     "user",    "username",
    "password", "sslmode", "pg_dsn",   "dsn",        "url",     NULL};

const char *const pg_writer_keys[] = {"table",
                                      "schema",
                                      "write_mode",
                                      "primary_key",
                                      "create_if_missing",
                                      "batch_size",
                                      "retries",
                                      "timeout",
                                      "resolved_connection",
                                      "host",
                                      "port",
                                      "database",
                                      "dbname",
                                      "user",
                                      "username",
                                      "password",
                                      "sslmode",
                                      "pg_dsn",
                                      "dsn",
                                      "url",
                                      "returning",
                                      "prefer",
                                      "ddl_channel",
                                      NULL};

const char *const mysql_extractor_keys[] = {
    "query",    "table",  "batch_size", "timeout", "connect_timeout", "read_timeout", "resolved_connection",
    "host",     "port",   "database",   "user",    "username",        "password",     "ssl",
    "ssl_mode", "ssl_ca", "schema",     "echo",    "offset",          "pool_recycle", "pool_size",
    NULL};

const char *const mysql_writer_keys[] = {"table",        "write_mode",
                                         "primary_key",  "create_if_missing",
                                         "batch_size",   "retries",
                                         "timeout",      "connect_timeout",
                                         "read_timeout", "resolved_connection",
                                         "host",         "port",
                                         "database",     "user",
                                         "username",     "password",
                                         "ssl",          "ssl_mode",
                                         "ssl_ca",       NULL};

const char *const graphql_extractor_keys[] = {"endpoint",
                                              "query",
                                              "variables",
                                              "headers",
                                              "auth_type",
                                              "auth_token",
                                              "auth_username",
                                              "auth_header_name",
                                              "timeout",
                                              "max_retries",
                                              "retry_delay",
                                              "pagination_enabled",
                                              "pagination_path",
                                              "pagination_cursor_field",
                                              "pagination_has_next_field",
                                              "pagination_variable_name",
                                              "max_pages",
                                              "data_path",
                                              "flatten_result",
                                              "validate_ssl",
                                              "resolved_connection",
                                              NULL};
