/*
 * date.h - the date strings of the response head and the access log, cached per
 * second (date.c).
 */
#ifndef COSERVE_HTTP_DATE_H
#define COSERVE_HTTP_DATE_H

/* "Sun, 06 Nov 1994 08:49:37 GMT", recomputed at most once a second. */
const char *date__http(void);
/* "23/Nov/2026:09:00:00 +0000" for the access log. */
const char *date__log(void);

#endif
