/*
 * fdio.h - settings of the cooperative fd I/O calls (fdio.c) that the
 * process model may change before the hubs start.
 */
#ifndef COSERVE_CORE_FDIO_H
#define COSERVE_CORE_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* The default cap on one sendfile() call: nginx's sendfile_max_chunk. */
#define FDIO_SENDFILE_CHUNK (2 * 1024 * 1024)
#define FDIO_SENDFILE_CHUNK_MIN 4096
#define FDIO_SENDFILE_CHUNK_MAX (1024 * 1024 * 1024)

/* Sets the most bytes one sendfile() call is asked for (co_sendfile and the
 * HTTP responses); after a full chunk the sender lets its hub poll before
 * the next. Call before any hub runs (--sendfile-max-chunk). Returns 0, or
 * -1 with EINVAL outside FDIO_SENDFILE_CHUNK_MIN..MAX. */
int fdio__set_sendfile_chunk(uint64_t bytes);

/* The cap set above (FDIO_SENDFILE_CHUNK unless changed). */
size_t fdio__sendfile_chunk(void);

#endif
