/* Function names from ELF .symtab sections (see symtab.h). */
#include "core/symtab.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A symbol or string table bigger than this is not read: no app or server
 * has one, and the watchdog must not spend seconds on a report. */
#define SYMTAB_MAX_BYTES (64u << 20)
/* Objects remembered; past this, lookups fall back to dladdr's names. */
#define SYMTAB_MAX_OBJECTS 128

struct symtab_sym {
    uintptr_t start, size; /* file addresses */
    uint32_t name;         /* offset in strs */
};

/* One loaded object. An object without a readable .symtab keeps n = 0,
 * so it is not read again. */
struct symtab_obj {
    char *path;     /* as the dynamic loader names it */
    uintptr_t bias; /* run-time address = file address + bias */
    struct symtab_sym *syms;
    size_t n;
    char *strs;
};

static struct symtab_obj symtab_objs[SYMTAB_MAX_OBJECTS];
static size_t symtab_nobjs;

static int symtab_pread(int fd, void *buf, size_t len, off_t off)
{
    char *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, off);
        if (r <= 0)
            return -1;
        p += r;
        off += r;
        len -= (size_t)r;
    }
    return 0;
}

/* malloc'd copy of len bytes of the file at off, or NULL. */
static void *symtab_read(int fd, uint64_t off, uint64_t len)
{
    if (len == 0 || len > SYMTAB_MAX_BYTES)
        return NULL;
    void *buf = malloc((size_t)len + 1);
    if (buf && symtab_pread(fd, buf, (size_t)len, (off_t)off) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int symtab_cmp(const void *a, const void *b)
{
    const struct symtab_sym *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Keeps the named functions of a symbol table, sorted by address. */
static void symtab_keep_funcs(struct symtab_obj *o, const ElfW(Sym) * syms,
                              size_t nsyms, size_t strs_len)
{
    size_t n = 0;
    o->syms = malloc((nsyms ? nsyms : 1) * sizeof *o->syms);
    if (!o->syms)
        return;
    for (size_t i = 0; i < nsyms; i++) {
        const ElfW(Sym) *s = &syms[i];
        int type = ELF64_ST_TYPE(s->st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
            s->st_shndx == SHN_UNDEF || s->st_value == 0 || s->st_name == 0 ||
            s->st_name >= strs_len)
            continue;
        o->syms[n++] = (struct symtab_sym){
            .start = s->st_value, .size = s->st_size, .name = s->st_name};
    }
    qsort(o->syms, n, sizeof *o->syms, symtab_cmp);
    o->n = n;
}

/* Reads file's .symtab into o; leaves o empty when there is none or the
 * file cannot be read (the vdso has no file, libc is stripped). */
static void symtab_load(struct symtab_obj *o, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    ElfW(Sym) *syms = NULL;
    if (symtab_pread(fd, &eh, sizeof eh, 0) < 0 ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] !=
            (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
        eh.e_shentsize != sizeof *sh || eh.e_shnum == 0)
        goto out;
    sh = symtab_read(fd, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof *sh);
    if (!sh)
        goto out;
    for (unsigned i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_entsize != sizeof *syms ||
            sh[i].sh_link >= eh.e_shnum)
            continue;
        const ElfW(Shdr) *str = &sh[sh[i].sh_link];
        if (str->sh_type != SHT_STRTAB)
            break;
        syms = symtab_read(fd, sh[i].sh_offset, sh[i].sh_size);
        o->strs = symtab_read(fd, str->sh_offset, str->sh_size);
        if (!syms || !o->strs)
            break;
        o->strs[str->sh_size] = '\0';
        symtab_keep_funcs(o, syms, sh[i].sh_size / sizeof *syms, str->sh_size);
        break;
    }
out:
    free(syms);
    free(sh);
    /* Not close(): the hook would forget the hooks' entry for this
     * number, and the watchdog thread that reads symbols has an fd table
     * of its own (watchdog.c), where the number names another file than
     * in the hubs'. */
    syscall(SYS_close, fd);
}

/* The cached object for a loaded one, read on first use; NULL when the
 * cache is full. */
static struct symtab_obj *symtab_object(const struct link_map *lm)
{
    for (size_t i = 0; i < symtab_nobjs; i++)
        if (symtab_objs[i].bias == lm->l_addr &&
            strcmp(symtab_objs[i].path, lm->l_name) == 0)
            return &symtab_objs[i];
    if (symtab_nobjs == SYMTAB_MAX_OBJECTS)
        return NULL;
    struct symtab_obj *o = &symtab_objs[symtab_nobjs];
    memset(o, 0, sizeof *o);
    if (!(o->path = strdup(lm->l_name)))
        return NULL;
    o->bias = lm->l_addr;
    /* the executable's link map has an empty name */
    symtab_load(o, lm->l_name[0] ? lm->l_name : "/proc/self/exe");
    symtab_nobjs++;
    return o;
}

/* The function of o that contains the file address rel, or NULL. */
static const struct symtab_sym *symtab_find(const struct symtab_obj *o,
                                            uintptr_t rel)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) { /* first symbol starting after rel */
        size_t mid = lo + (hi - lo) / 2;
        if (o->syms[mid].start <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* aliases and nested symbols share starts: look at a few before */
    for (size_t i = lo, tries = 0; i > 0 && tries < 8; i--, tries++) {
        const struct symtab_sym *s = &o->syms[i - 1];
        if (rel < s->start + (s->size ? s->size : 1))
            return s;
    }
    return NULL;
}

int symtab__lookup(const void *addr, struct symtab_hit *hit)
{
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1(addr, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return -1;
    hit->object =
        info.dli_fname && *info.dli_fname ? info.dli_fname : lm->l_name;
    hit->func = NULL;
    hit->offset = (uintptr_t)addr - (uintptr_t)info.dli_fbase;
    const struct symtab_obj *o = symtab_object(lm);
    uintptr_t rel = (uintptr_t)addr - lm->l_addr;
    const struct symtab_sym *s = o ? symtab_find(o, rel) : NULL;
    if (s) {
        hit->func = o->strs + s->name;
        hit->offset = rel - s->start;
    } else if (info.dli_sname && info.dli_saddr) {
        hit->func = info.dli_sname;
        hit->offset = (uintptr_t)addr - (uintptr_t)info.dli_saddr;
    }
    return 0;
}

size_t symtab__format(const void *addr, int is_return, char *buf, size_t len)
{
    if (!len)
        return 0;
    struct symtab_hit hit;
    const char *look = (const char *)addr - (is_return ? 1 : 0);
    int n;
    if (symtab__lookup(look, &hit) < 0) {
        n = snprintf(buf, len, "%p (no object)", addr);
    } else {
        const char *slash = strrchr(hit.object, '/');
        const char *obj = slash ? slash + 1 : hit.object;
        uintptr_t off = hit.offset + (is_return ? 1 : 0);
        if (hit.func)
            n = snprintf(buf, len, "%s+0x%lx (%s)", hit.func,
                         (unsigned long)off, obj);
        else
            n = snprintf(buf, len, "%p (%s+0x%lx)", addr, obj,
                         (unsigned long)off);
    }
    if (n < 0)
        n = 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

void symtab__reset(void)
{
    for (size_t i = 0; i < symtab_nobjs; i++) {
        free(symtab_objs[i].path);
        free(symtab_objs[i].syms);
        free(symtab_objs[i].strs);
    }
    symtab_nobjs = 0;
}
