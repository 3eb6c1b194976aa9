/*
 * symtab.h - naming a code address: which function, in which object.
 *
 * dladdr() only knows the dynamic symbol table, and apps' handlers are
 * usually static functions, the server's own are hidden: neither is there.
 * Both are in the object file's .symtab (we build with -g and never strip),
 * so this reads it: the file named by dladdr (/proc/self/exe for the
 * executable), its section headers, .symtab and its string table, keeping
 * the FUNC symbols sorted by address. Each object is read once and cached.
 * Where .symtab is missing (Debian's stripped libc), dladdr's dynamic name
 * is the answer.
 *
 * Reads files and allocates: never call it from a signal handler. The
 * cache is not locked: one thread (the watchdog's) uses it.
 */
#ifndef COSERVE_CORE_SYMTAB_H
#define COSERVE_CORE_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

struct symtab_hit {
    const char *func;   /* the function, or NULL (valid until reset) */
    uintptr_t offset;   /* from the function's start, or the object's base */
    const char *object; /* the object's path, or NULL if none maps addr */
};

/* Names the function containing addr. Returns 0 with *hit filled (func
 * may still be NULL: then offset is from the object's base), or -1 when
 * no loaded object contains addr. */
int symtab__lookup(const void *addr, struct symtab_hit *hit);

/* Writes "func+0xOFF (object)" for addr into buf (always NUL-terminated),
 * object as a base name. A return address (is_return) is looked up one
 * byte back, inside the call: a call can be the last instruction of its
 * function. Returns the length written. */
size_t symtab__format(const void *addr, int is_return, char *buf, size_t len);

/* Forgets every cached object. */
void symtab__reset(void);

#endif
