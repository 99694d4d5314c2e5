# e2b.mk: the E2B emulator (tests/fakes/e2b) and its checks (tests/e2b):
# C raw-protocol tests, then the official E2B JS SDK's conformance suite.

E2B_EMU_SRC	= $(wildcard tests/fakes/e2b/*.c)
E2B_EMU_OBJ	= $(call objs,$(E2B_EMU_SRC))
E2B_EMU		= $(BIN)/e2b-emulator
E2B_RAW_TEST	= $(BUILD)/tests/check_e2b_raw

EXTRA_PROGRAMS += $(E2B_EMU)
# `all` reads EXTRA_PROGRAMS before this file is included: name it here too.
all: $(E2B_EMU)

$(E2B_EMU): $(E2B_EMU_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lz $(shell pkg-config --libs libevent_openssl libssl 2>/dev/null)

$(E2B_RAW_TEST): $(OBJ)/tests/e2b/check_e2b_raw.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(CHECK_LIBS) $(LIBS)

check-e2b: $(E2B_EMU) $(E2B_RAW_TEST)
	@echo "== $(E2B_RAW_TEST)"
	@E2B_EMULATOR=$(abspath $(E2B_EMU)) CK_DEFAULT_TIMEOUT=120 $(E2B_RAW_TEST)
	@E2B_EMULATOR=$(abspath $(E2B_EMU)) sh tests/e2b/run.sh

# tests/unit/check_e2b_client (run by `make unit`) drives the daemon's E2B
# client against this emulator; it finds it at ../bin/ beside itself unless
# E2B_EMULATOR names another.
$(BUILD)/tests/check_e2b_client: $(E2B_EMU)
