/*
 * static.h - static files from a www root (the router's fallback when no app
 * mount matches).
 *
 * The module answers GET and HEAD with the file named by the request's
 * decoded path below the root: index.html for directories, a MIME type from
 * the extension, Last-Modified/ETag validators (304), one byte range (206,
 * 416). It uses only the public co_req_* / co_res_* calls, as an app would.
 *
 * Security rules (nothing outside the root may ever be read):
 *   - the path must start with '/' and may not contain a backslash, a "." or
 *     ".." segment, or an empty segment ("a//b": 400, so no URL has two
 *     spellings and no redirect can become "//host/"); these are 400s.
 *   - a segment starting with '.' (a dotfile: .git, .env, .htpasswd) is 404.
 *   - files are opened relative to the root's fd with openat2(RESOLVE_BENEATH
 *     | RESOLVE_NO_MAGICLINKS): a symlink may point anywhere inside the root,
 *     one that leaves it fails (403). Kernels without openat2 get a walk
 *     component by component with O_NOFOLLOW, which refuses every symlink.
 *   - only regular files are served; they are first opened O_PATH and checked,
 *     so a FIFO or a device inside the root is never opened for reading.
 */
#ifndef COSERVE_HTTP_STATIC_H
#define COSERVE_HTTP_STATIC_H

#include <stddef.h>

#include "coserve.h"

struct static_root {
    int fd;    /* O_PATH | O_DIRECTORY fd of the root, -1 when closed */
    char *dir; /* the directory as given, for logs (owned) */
};

/* Opens dir as the root (the fd stays open until static__close). Returns 0,
 * or -1 with errno (open's, or ENOMEM). */
int static__open(struct static_root *root, const char *dir);

/* Closes the root's fd and frees dir; closing twice does nothing. */
void static__close(struct static_root *root);

/* Serves req from the root. Returns 0 when it answered (any status, 4xx
 * included), or -1 with errno when the response could not be sent (the
 * client left, a deadline, a cancel). */
int static__serve(const struct static_root *root, co_request_t *req,
                  co_response_t *res);

/* The security rules' path checks (above): checks the decoded path and
 * copies it, without its leading and trailing slash, into rel (size
 * bytes, room left for "/index.html"); *slash says whether it ended in
 * '/'. Returns 0, or the status to answer (400, 404, 414) with *why set. */
int static__check_path(const char *path, char *rel, size_t size, int *slash,
                       const char **why);

#endif
