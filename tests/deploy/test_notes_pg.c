/*
 * test_notes_pg.c - the notes API suite (tests/http/test_notes.c), every
 * test of it that is not about SQLite itself, against PostgreSQL: same
 * requests, same answers, same errors, search included. Each test runs its
 * own PostgreSQL 15 cluster (pg_util.h).
 */
#define NOTES_PG 1
#include "../http/test_notes.c"
