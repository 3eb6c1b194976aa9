/*
 * abi1 - an app built for ABI version 1, whose descriptor ends before the
 * stream fields version 2 added: it must still load and serve (GET /abi1),
 * and the server must read nothing past its end (the ASan server would
 * report the overflow).
 */
#include "coserve.h"

static int abi1_handler(co_request_t *req, co_response_t *res)
{
    (void)req;
    return co_res_send(res, 200, "text/plain", "abi1\n", 5);
}

/* Version 1's struct co_app, written out by hand. */
struct abi1_app {
    uint32_t abi_version;
    const char *name;
    const char *mount;
    int (*init)(void);
    void (*fini)(void);
    co_handler_fn handler;
};

__attribute__((visibility("default"))) const struct abi1_app coserve_app = {
    .abi_version = 1,
    .name = "abi1",
    .mount = "/abi1",
    .handler = abi1_handler,
};
