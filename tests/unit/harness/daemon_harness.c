/*
 * daemon_harness.c: the daemon's context for the unit tests, which link the
 * daemon's modules without osirisd.c. A test that drives them opens a store
 * into osirisd.store, as osirisd.c's start() does.
 */
#include "daemon/osirisd.h"

struct osirisd osirisd;
