# fuzz.mk: libFuzzer targets (included by the top Makefile).
# Every tests/fuzz/fuzz_<name>.c is built with clang -fsanitize=fuzzer,address,
# undefined against the library sources (common, proto, drivers, worker minus
# its main) and `make fuzz-smoke` runs each for FUZZ_SECONDS on a scratch copy
# of tests/fuzz/corpus/<name>/. A crash, leak or timeout fails the target.

FUZZ_CC		?= clang
FUZZ_SECONDS	?= 10
FUZZ_BUILD	= build/fuzz
FUZZ_OBJ	= $(FUZZ_BUILD)/obj
FUZZ_SANFLAGS	= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# Same warnings (-Werror included) and include/pkg-config flags as the
# normal build; clang complains about unused -D flags at link time otherwise.
FUZZ_CFLAGS	= $(filter-out $(SANFLAGS),$(ALL_CFLAGS)) -Wno-unused-command-line-argument $(FUZZ_SANFLAGS)

FUZZ_SRC	= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES	= $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_BINS	= $(patsubst %,$(FUZZ_BUILD)/fuzz_%,$(FUZZ_NAMES))
FUZZ_LIB_SRC	= $(COMMON_SRC) $(PROTO_SRC) $(DRIVERS_SRC) $(WORKER_SRC)
FUZZ_LIB_OBJ	= $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(FUZZ_LIB_SRC))
FUZZ_LIB	= $(FUZZ_OBJ)/libfuzzdeps.a

.PHONY: fuzz-build fuzz-smoke
fuzz-build: $(FUZZ_BINS)

# Library code gets coverage instrumentation without libFuzzer's main().
$(FUZZ_OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_OBJ)/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LIBS)

-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)

# Each run works on a scratch copy so new inputs never land in git.
fuzz-smoke: $(FUZZ_BINS)
	@set -e; for n in $(FUZZ_NAMES); do \
		work=$(FUZZ_BUILD)/corpus/$$n; art=$(FUZZ_BUILD)/artifacts/$$n; \
		rm -rf $$work; mkdir -p $$work $$art; \
		if [ -d tests/fuzz/corpus/$$n ]; then cp -R tests/fuzz/corpus/$$n/. $$work/; fi; \
		echo "== fuzz_$$n for $(FUZZ_SECONDS)s ($$(ls $$work | wc -l) seeds)"; \
		$(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$$art/ $$work 2>$(FUZZ_BUILD)/fuzz_$$n.log || \
			{ tail -50 $(FUZZ_BUILD)/fuzz_$$n.log; echo "fuzz_$$n: FAILED (reproducer in $$art/)"; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' $(FUZZ_BUILD)/fuzz_$$n.log || true; \
	done
