# coserve build. `make run` and `make test` are all a user needs; both
# install missing Debian packages first (scripts/deps.sh).
#
# Everything lands in build/: build/plain (gcc -O2) and build/asan (clang,
# AddressSanitizer + UndefinedBehaviorSanitizer with fiber annotations).

BUILD   := build
LLHTTP_INC := -I/usr/share/include/llhttp
ARCH    := $(shell uname -m)
# The context switch: hand-written assembly where we have it, ucontext
# elsewhere. `make SWITCH=ucontext` forces the portable one.
SWITCH  ?= $(if $(filter x86_64 aarch64,$(ARCH)),$(ARCH),ucontext)
SWITCH_SRC := $(wildcard server/core/arch/switch_$(SWITCH).*)

WARN    := -Wall -Wextra -Werror
COMMON  := -std=gnu11 -g -fno-omit-frame-pointer -fvisibility=hidden \
           -D_GNU_SOURCE -Iinclude -Iserver $(LLHTTP_INC) $(WARN)
ifeq ($(SWITCH),ucontext)
COMMON  += -DCOSERVE_SWITCH_UCONTEXT
endif
# The runtime needs only these; the server adds zlib (WebSocket deflate).
CORE_LIBS := -lev -lpthread -lm
LIBS    := $(CORE_LIBS) -lz

PLAIN_CC     := gcc
PLAIN_CFLAGS := $(COMMON) -O2
ASAN_CC      := clang
ASAN_CFLAGS  := $(COMMON) -O1 -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -DCOSERVE_ASAN
ASAN_ENV     := ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

CORE_SRC  := $(wildcard server/core/*.c) $(SWITCH_SRC)
HTTP_SRC  := $(wildcard server/http/*.c)
SERVER_SRC := $(wildcard server/*.c server/app/*.c server/stream/*.c) $(HTTP_SRC)
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_SRC := $(notdir $(wildcard $(LLHTTP_DIR)/*.c))
APP_NAMES := $(notdir $(patsubst %/,%,$(wildcard apps/*/)))
TEST_APP_NAMES := $(notdir $(patsubst %/,%,$(wildcard tests/apps/*/)))
TEST_DIRS := core http deploy
TEST_SRC  := $(foreach d,$(TEST_DIRS),$(wildcard tests/$(d)/test_*.c))
TEST_NAMES := $(basename $(notdir $(TEST_SRC)))

Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)


.SECONDEXPANSION:

.PHONY: all apps deps run demo bench fuzz test test-browser test-valgrind test-plain test-asan test-header \
        test-ucontext test-aarch64 test-includes bench-core clean format

all: $(BUILD)/coserve $(BUILD)/asan/coserve $(BUILD)/interleave apps \
     $(foreach v,plain asan,$(addprefix $(BUILD)/$(v)/tests/,$(TEST_NAMES)))

apps: $(addprefix $(BUILD)/apps/,$(addsuffix .so,$(APP_NAMES))) \
      $(addprefix $(BUILD)/test-apps/,$(addsuffix .so,$(TEST_APP_NAMES)))

# Any apps/NAME/*.c becomes build/apps/NAME.so: add a folder, get an app.
# An app that needs libraries lists them in apps/NAME/link.flags.
$(BUILD)/apps/%.so: $$(wildcard apps/%/*.c apps/%/*.h apps/%/link.flags) include/coserve.h
	$(call msg,APP,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) -fPIC -shared $(filter %.c,$^) \
	    $(shell cat apps/$*/link.flags 2>/dev/null) -o $@

$(BUILD)/test-apps/%.so: $$(wildcard tests/apps/%/*.c tests/apps/%/link.flags) include/coserve.h
	$(call msg,APP,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) -fPIC -shared $(filter %.c,$^) \
	    $(shell cat tests/apps/$*/link.flags 2>/dev/null) -o $@

deps:
	$(Q)sh scripts/deps.sh

# One test binary per tests/DIR/test_NAME.c: build/VARIANT/tests/test_NAME.
# The whole runtime goes in, hooks included (off unless a test turns them
# on), as in the server: otherwise which hook objects the linker pulls from
# the archive would depend on which libc calls a suite happens to make.
# The front end (libhttp.a: server/http and llhttp) is there for unit tests
# that call it directly (tests/http/test_*_unit.c); only what a suite uses
# is linked from it.
define test_rule
$(BUILD)/$(1)/tests/%: tests/$(3)/%.c $(BUILD)/$(1)/libcore.a $(BUILD)/$(1)/libhttp.a
	$$(call msg,TEST,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP $$< $(BUILD)/$(1)/libhttp.a \
	    -Wl,--whole-archive $(BUILD)/$(1)/libcore.a -Wl,--no-whole-archive \
	    -lcriterion -ljansson -lsqlite3 $(LIBS) -o $$@
endef

# One object rule per variant: build/VARIANT/obj/path/file.o
define variant
$(1)_OBJ := $$(patsubst %,$(BUILD)/$(1)/obj/%.o,$$(CORE_SRC))

$(BUILD)/$(1)/obj/%.c.o: %.c
	$$(call msg,CC,$$<)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP -c $$< -o $$@

$(BUILD)/$(1)/obj/%.S.o: %.S
	$$(call msg,AS,$$<)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP -c $$< -o $$@

$(BUILD)/$(1)/libcore.a: $$($(1)_OBJ)
	$$(call msg,AR,$$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^

# llhttp from Debian's node-llhttp sources, compiled into the server.
$(BUILD)/$(1)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	$$(call msg,CC,$$<)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) -O2 -g -fvisibility=hidden $(LLHTTP_INC) -c $$< -o $$@

$(1)_SERVER_OBJ := $$(patsubst %,$(BUILD)/$(1)/obj/%.o,$$(SERVER_SRC)) \
                   $$(patsubst %,$(BUILD)/$(1)/llhttp/%.o,$$(basename $(LLHTTP_SRC)))

$(1)_HTTP_OBJ := $$(patsubst %,$(BUILD)/$(1)/obj/%.o,$$(HTTP_SRC)) \
                 $$(patsubst %,$(BUILD)/$(1)/llhttp/%.o,$$(basename $(LLHTTP_SRC)))

$(BUILD)/$(1)/libhttp.a: $$($(1)_HTTP_OBJ)
	$$(call msg,AR,$$@)
	$(Q)rm -f $$@ && ar rcs $$@ $$^

$(BUILD)/$(1)/coserve: $$($(1)_SERVER_OBJ) $(BUILD)/$(1)/libcore.a server/coserve.dynlist
	$$(call msg,LD,$$@)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) $$(filter %.o,$$^) \
	    -Wl,--whole-archive $(BUILD)/$(1)/libcore.a -Wl,--no-whole-archive \
	    -Wl,--dynamic-list=server/coserve.dynlist $(LIBS) -ldl -o $$@

$(foreach d,$(TEST_DIRS),$$(eval $$(call test_rule,$(1),$(2),$(d))))
endef
$(eval $(call variant,plain,PLAIN))
$(eval $(call variant,asan,ASAN))

# The other context switches, so none rots: the core and its suites alone,
# with the ucontext fallback built natively (build/ucontext) and with the
# aarch64 assembly cross-built (build/aarch64, run under qemu-user).
# Criterion:arm64 cannot be installed beside Criterion:amd64 (libnanomsg5
# is not Multi-Arch: same), so scripts/deps.sh unpacks its two libraries
# into AARCH64_LIBDIR; everything else is Debian's arm64 multiarch packages.
CORE_TEST_NAMES := $(basename $(notdir $(wildcard tests/core/test_*.c)))
PORT_CFLAGS     := $(filter-out -DCOSERVE_SWITCH_UCONTEXT,$(COMMON)) -O2
UCONTEXT_CC     := gcc
UCONTEXT_AR     := ar
UCONTEXT_CFLAGS := $(PORT_CFLAGS) -DCOSERVE_SWITCH_UCONTEXT
UCONTEXT_LIBS   := -lcriterion $(CORE_LIBS)
AARCH64_CC      := aarch64-linux-gnu-gcc
AARCH64_AR      := aarch64-linux-gnu-ar
AARCH64_CFLAGS  := $(PORT_CFLAGS)
AARCH64_LIBDIR  := /opt/coserve-arm64/usr/lib/aarch64-linux-gnu
AARCH64_LIBS    := $(AARCH64_LIBDIR)/libcriterion.so.3 \
                   -Wl,--disable-new-dtags,-rpath,$(AARCH64_LIBDIR) $(CORE_LIBS)

# port_variant NAME,PREFIX,SWITCH: build/NAME/libcore.a and tests/test_*
define port_variant
$(BUILD)/$(1)/obj/%.c.o: %.c
	$$(call msg,CC,$$<)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP -c $$< -o $$@

$(BUILD)/$(1)/obj/%.S.o: %.S
	$$(call msg,AS,$$<)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP -c $$< -o $$@

$(BUILD)/$(1)/libcore.a: $$(patsubst %,$(BUILD)/$(1)/obj/%.o,$$(wildcard \
        server/core/*.c server/core/arch/switch_$(3).*))
	$$(call msg,AR,$$@)
	$(Q)rm -f $$@ && $$($(2)_AR) rcs $$@ $$^

$(BUILD)/$(1)/tests/%: tests/core/%.c $(BUILD)/$(1)/libcore.a
	$$(call msg,TEST,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$$($(2)_CC) $$($(2)_CFLAGS) -MMD -MP $$< \
	    -Wl,--whole-archive $(BUILD)/$(1)/libcore.a -Wl,--no-whole-archive \
	    $$($(2)_LIBS) -o $$@
endef
$(eval $(call port_variant,ucontext,UCONTEXT,ucontext))
$(eval $(call port_variant,aarch64,AARCH64,aarch64))

$(BUILD)/aarch64/fork-probe: tests/aarch64/fork_probe.c
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(AARCH64_CC) $(AARCH64_CFLAGS) $< -lpthread -o $@

$(BUILD)/coserve: $(BUILD)/plain/coserve
	$(Q)cp -f $< $@

$(BUILD)/interleave: examples/interleave.c $(BUILD)/plain/libcore.a
	$(call msg,LD,$@)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) $^ $(LIBS) -o $@

$(BUILD)/bench-core: tests/bench/bench_core.c $(BUILD)/plain/libcore.a
	$(call msg,LD,$@)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) $^ $(LIBS) -o $@

# bench_http.sh's floor: raw epoll, no runtime (tests/bench/floor.c says why).
$(BUILD)/bench-floor: tests/bench/floor.c
	$(call msg,LD,$@)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) $^ -o $@

# Serves the demo: http://127.0.0.1:8080/ (Ctrl-C stops it gracefully).
run: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/coserve apps
	$(Q)mkdir -p var
	$(Q)exec $(BUILD)/coserve --listen 127.0.0.1:8080 --apps $(BUILD)/apps --www www

# The runtime alone: coroutines interleaving on one thread.
demo: $(BUILD)/interleave
	$(Q)$(BUILD)/interleave

# Each suite runs twice: plain, then under ASan + UBSan.
test: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/fuzz-request
	@echo "  FUZZ    request front end for 20 s"
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20 > $(BUILD)/fuzz.log 2>&1 \
	    || { tail -60 $(BUILD)/fuzz.log; echo "fuzz: failed (build/fuzz.log)"; exit 1; }
	$(Q)grep -h '^Done' $(BUILD)/fuzz.log | sed 's/^/  fuzz    /'
	$(Q)rm -f $(BUILD)/test-counts
	$(Q)$(MAKE) --no-print-directory test-plain test-asan test-valgrind test-header test-includes \
	    test-examples test-ucontext test-aarch64 test-browser
	$(Q)awk '{p+=$$1; f+=$$2} END {printf "all: %d passed, %d failed\n", p, f}' $(BUILD)/test-counts

# The demo stream apps listen on fixed ports (9000, 9001): servers started
# side by side by the suites would fight for them, so they stay off unless
# a test asks for one (--stream-listen wins over the environment).
test-plain test-asan: test-%:
	$(Q)sh tests/run-suites.sh $* $(BUILD)/$*/tests "COSERVE_BIN=$(BUILD)/$*/coserve COSERVE_APPS=$(BUILD)/apps COSERVE_TEST_APPS=$(BUILD)/test-apps COSERVE_STREAM_LISTEN=echo_upper=off,chat=off $(if $(filter asan,$*),$(ASAN_ENV))"

# valgrind follows the stack switches (stacks are registered with it): the
# runtime demo must run with no error and no definite leak.
test-valgrind: $(BUILD)/interleave
	$(Q)valgrind -q --error-exitcode=3 --leak-check=full \
	    --errors-for-leak-kinds=definite $(BUILD)/interleave > /dev/null \
	    && echo "  valgrind: interleave demo clean" && echo "1 0" >> $(BUILD)/test-counts

# The core suites over the ucontext fallback, and on aarch64 under qemu-user
# (tests/aarch64/run.sh says how, and which tests this qemu cannot run).
test-ucontext: $(addprefix $(BUILD)/ucontext/tests/,$(CORE_TEST_NAMES))
	$(Q)sh tests/run-suites.sh ucontext $(BUILD)/ucontext/tests ""

test-aarch64: $(addprefix $(BUILD)/aarch64/tests/,$(CORE_TEST_NAMES)) \
              $(BUILD)/aarch64/fork-probe
	$(Q)sh tests/aarch64/run.sh $(BUILD)/aarch64

# include/coserve.h compiles warning-free as C11, C++11 and C++20 (co_yield
# is a C++20 keyword), COSERVE_APP's descriptor is an exported, unmangled
# symbol in C and C++20, and the server still exports co_yield for apps
# built before its rename to co_yield_now.
test-header: $(BUILD)/plain/coserve
	$(Q)mkdir -p $(BUILD)/header-check
	$(Q)for std in c11 c++11 c++20; do \
	    case $$std in c++*) cc="g++ -x c++";; *) cc="gcc -x c";; esac; \
	    $$cc -std=$$std -Wall -Wextra -Werror -pedantic -Iinclude \
	        -c tests/cxx/header_check.c -o $(BUILD)/header-check/$$std.o || exit 1; \
	    [ $$std = c++11 ] || nm $(BUILD)/header-check/$$std.o | grep -q ' D coserve_app$$' \
	        || { echo "header: no coserve_app symbol as $$std"; exit 1; }; \
	    echo "  header  coserve.h compiles as $$std ($$cc)"; done
	$(Q)nm -D --defined-only $(BUILD)/plain/coserve | grep -q ' co_yield$$' \
	    || { echo "header: the server no longer exports co_yield"; exit 1; }
	$(Q)echo "1 0" >> $(BUILD)/test-counts

# No two modules of server/ include each other, even through others (a .c
# and its .h are one module; scripts/include_cycles.sh says how to declare
# files that are one module).
test-includes:
	$(Q)sh scripts/include_cycles.sh server
	$(Q)echo "1 0" >> $(BUILD)/test-counts

# The gevent tutorials' programs in C (examples/NAME.c): each prints what
# the same program under gevent (examples/py/NAME.py) prints, recorded in
# examples/NAME.expected, order included. Where python3-gevent is installed
# the Python programs are checked against the same files.
.PHONY: test-examples
EXAMPLES := $(basename $(notdir $(wildcard examples/*.expected)))
GEVENT_PY := /usr/bin/python3
$(BUILD)/examples/%: examples/%.c examples/example_net.h $(BUILD)/plain/libcore.a
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(PLAIN_CC) $(PLAIN_CFLAGS) $< $(BUILD)/plain/libcore.a $(LIBS) -o $@

test-examples: $(addprefix $(BUILD)/examples/,$(EXAMPLES))
	$(Q)for e in $(EXAMPLES); do \
	    timeout 60 $(BUILD)/examples/$$e > $(BUILD)/examples/$$e.out 2>&1 \
	        && diff -u examples/$$e.expected $(BUILD)/examples/$$e.out \
	        || { echo "example $$e: output differs from examples/$$e.expected"; exit 1; }; \
	    echo "  example $$e: prints what gevent prints"; \
	    if $(GEVENT_PY) -c 'import gevent' 2>/dev/null; then \
	        timeout 60 $(GEVENT_PY) examples/py/$$e.py > $(BUILD)/examples/$$e.py.out 2>&1 \
	            && diff -u examples/$$e.expected $(BUILD)/examples/$$e.py.out \
	            || { echo "example $$e: gevent no longer prints examples/$$e.expected"; exit 1; }; \
	    fi; done
	$(Q)echo "1 0" >> $(BUILD)/test-counts

# The notes page in headless Chromium, driven by Playwright.
test-browser: $(BUILD)/coserve apps
	$(Q)sh tests/browser/run.sh > $(BUILD)/browser.log 2>&1; rc=$$?; \
	    tail -5 $(BUILD)/browser.log; \
	    sed -n 's/^browser: \([0-9]*\) passed, \([0-9]*\) failed$$/\1 \2/p' \
	        $(BUILD)/browser.log >> $(BUILD)/test-counts; exit $$rc

bench: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/coserve apps $(BUILD)/bench-core \
	    $(BUILD)/bench-floor
	$(Q)$(BUILD)/bench-core
	$(Q)sh tests/bench/bench_http.sh
	$(Q)sh tests/bench/bench_ws.sh
	$(Q)sh tests/bench/bench_hooks.sh
	$(Q)sh tests/bench/bench_notes.sh
	$(Q)sh tests/bench/bench_notes_pg.sh
	$(Q)sh tests/bench/bench_deploy.sh
	$(Q)sh tests/bench/bench_bigfile.sh
	$(Q)sh tests/bench/bench_endurance.sh
	$(Q)sh scripts/readme_perf.sh

bench-core: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/bench-core
	$(Q)$(BUILD)/bench-core

# libFuzzer on the request front end (clang): `make fuzz FUZZ_SECONDS=N`.
FUZZ_SECONDS ?= 60
# The front end alone: no process model or option parsing (options.c
# reaches into the app layer for stream names).
FUZZ_SRC := $(HTTP_SRC)
$(BUILD)/fuzz-request: tests/fuzz/fuzz_request.c $(FUZZ_SRC) $(CORE_SRC) \
                       $(addprefix $(LLHTTP_DIR)/,$(LLHTTP_SRC))
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)clang $(COMMON) -O1 -fsanitize=fuzzer,address,undefined -DCOSERVE_ASAN \
	    -w $(filter %.c %.S,$^) $(LIBS) -o $@

fuzz: deps $(BUILD)/fuzz-request
	$(Q)mkdir -p $(BUILD)/fuzz-corpus
	$(Q)ASAN_OPTIONS=detect_stack_use_after_return=0:detect_leaks=1 \
	    $(BUILD)/fuzz-request -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -timeout=10 $(BUILD)/fuzz-corpus tests/fuzz/corpus

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	$(Q)rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
