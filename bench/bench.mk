# bench.mk: `make bench` (included by the top Makefile). Builds the bench
# programs against the project's libraries and runs bench/run.sh, which
# starts private daemons and prints each figure with its baseline.

BENCH_BIN = $(BUILD)/bench
BENCH_PROGS = $(BENCH_BIN)/bench_rpc $(BENCH_BIN)/bench_store $(BENCH_BIN)/count_alloc.so

# The per-step allocation counter (LD_PRELOAD; never sanitized: it replaces malloc).
$(BENCH_BIN)/count_alloc.so: bench/count_alloc.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -fPIC -shared -o $@ $<

$(BENCH_BIN)/bench_rpc: $(OBJ)/bench/bench_rpc.o $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BENCH_BIN)/bench_store: $(OBJ)/bench/bench_store.o $(LIBDAEMON) $(LIBPROTO) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

bench: all $(BENCH_PROGS)
	@BIN=$(abspath $(BIN)) BENCH_BIN=$(abspath $(BENCH_BIN)) sh bench/run.sh
	@BIN=$(abspath $(BIN)) BENCH_BIN=$(abspath $(BENCH_BIN)) sh bench/footprint.sh
	@BIN=$(abspath $(BIN)) sh bench/drivers.sh

# `make soak SOAK_RUNS=5000`: retention keeps the state and RSS flat (not in make check).
SOAK_RUNS ?= 100000
.PHONY: soak
soak: all $(BENCH_PROGS)
	@BIN=$(abspath $(BIN)) BENCH_BIN=$(abspath $(BENCH_BIN)) SOAK_RUNS=$(SOAK_RUNS) sh bench/soak.sh
