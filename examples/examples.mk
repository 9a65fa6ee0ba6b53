# Example programs, built by `make` next to the library.
#   $(BUILD)/examples/pubsub    publish/subscribe tour
#   $(BUILD)/examples/fanq-sse  HTTP/1.1 Server-Sent Events server
#   $(BUILD)/examples/fanq-uv   fanq in a libuv loop (libuv1-dev, a make deps package)

EX_DIR := $(BUILD)/examples
EX_SSE_OBJS := $(EX_DIR)/fanq-sse.o $(EX_DIR)/sse-worker.o $(EX_DIR)/http.o
EX_BINS := $(EX_DIR)/pubsub $(EX_DIR)/fanq-sse $(EX_DIR)/fanq-uv

.PHONY: examples
all: examples
examples: $(EX_BINS)

$(EX_DIR)/%.o: examples/%.c include/fanq.h $(wildcard examples/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(EX_DIR)/fanq-uv.o: examples/fanq-uv.c include/fanq.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(shell pkg-config --cflags libuv) -c $< -o $@

$(EX_DIR)/pubsub: $(EX_DIR)/pubsub.o $(STATIC_LIB)
	$(CC) -o $@ $< $(LDFLAGS) $(FANQ_LINK)

$(EX_DIR)/fanq-sse: $(EX_SSE_OBJS) $(STATIC_LIB)
	$(CC) -o $@ $(EX_SSE_OBJS) $(LDFLAGS) $(FANQ_LINK)

$(EX_DIR)/fanq-uv: $(EX_DIR)/fanq-uv.o $(STATIC_LIB)
	$(CC) -o $@ $< $(LDFLAGS) $(FANQ_LINK) $(shell pkg-config --libs libuv)

# tests/*-integration.sh run the example programs from $(BUILD).
check: $(EX_BINS)
