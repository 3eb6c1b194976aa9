/*
 * The path rules of server/http/static.c (static__check_path), called
 * directly: no dot segment, backslash, empty segment or over-long path
 * gets near the file system, and dotfiles are not found.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <string.h>

#include "http/static.h"

static char st_rel[PATH_MAX];
static int st_slash;
static const char *st_why;

/* Checks path; returns static__check_path's answer. */
static int st_check(const char *path)
{
    st_why = NULL;
    return static__check_path(path, st_rel, sizeof st_rel, &st_slash, &st_why);
}

Test(static_unit, keeps_a_plain_path_without_its_slashes)
{
    cr_assert_eq(st_check("/css/site.css"), 0);
    cr_assert_str_eq(st_rel, "css/site.css");
    cr_assert_eq(st_slash, 0);
    cr_assert_eq(st_check("/docs/"), 0);
    cr_assert_str_eq(st_rel, "docs");
    cr_assert_eq(st_slash, 1);
    cr_assert_eq(st_check("/"), 0);
    cr_assert_str_eq(st_rel, "");
    cr_assert_eq(st_slash, 1);
}

Test(static_unit, takes_the_mount_itself_as_the_root)
{
    cr_assert_eq(st_check(""), 0);
    cr_assert_str_eq(st_rel, "");
    cr_assert_eq(st_slash, 0);
}

Test(static_unit, refuses_a_path_not_starting_with_a_slash)
{
    cr_assert_eq(st_check("etc/passwd"), 400);
}

Test(static_unit, refuses_dot_segments)
{
    static const char *const bad[] = {
        "/..", "/../etc/passwd", "/a/..", "/a/../b", "/.", "/./a", "/a/./",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(st_check(bad[i]), 400, "accepted %s", bad[i]);
        cr_assert_str_eq(st_why, "bad path: '.' or '..' segment");
    }
}

Test(static_unit, refuses_backslashes)
{
    cr_assert_eq(st_check("/a\\..\\b"), 400);
    cr_assert_eq(st_check("/\\"), 400);
    cr_assert_str_eq(st_why, "bad path: backslash");
}

Test(static_unit, refuses_empty_segments)
{
    cr_assert_eq(st_check("//etc/passwd"), 400);
    cr_assert_eq(st_check("/a//b"), 400);
    cr_assert_eq(st_check("/a//"), 400);
}

Test(static_unit, hides_dotfiles)
{
    cr_assert_eq(st_check("/.git/config"), 404);
    cr_assert_eq(st_check("/a/.env"), 404);
    cr_assert_eq(st_check("/.htpasswd"), 404);
    cr_assert_eq(st_check("/a/..b"), 404);
}

Test(static_unit, answers_400_before_a_dotfiles_404)
{
    cr_assert_eq(st_check("/.git/../x"), 400);
    cr_assert_eq(st_check("/.git//x"), 400);
}

Test(static_unit, takes_dots_inside_a_name)
{
    cr_assert_eq(st_check("/a.b/c..d/e."), 0);
    cr_assert_str_eq(st_rel, "a.b/c..d/e.");
}

Test(static_unit, does_not_decode_again)
{
    /* the path is decoded once, in the head: "%2e%2e" here is a name */
    cr_assert_eq(st_check("/%2e%2e/x%00"), 0);
    cr_assert_str_eq(st_rel, "%2e%2e/x%00");
}

Test(static_unit, stops_at_an_embedded_nul)
{
    /* a decoded NUL never gets here (the head refuses "%00"); a C string
     * ends at one, so what follows it is never part of the path */
    cr_assert_eq(st_check("/a\0/../../etc/passwd"), 0);
    cr_assert_str_eq(st_rel, "a");
}

Test(static_unit, refuses_a_path_with_no_room_for_index_html)
{
    static char path[PATH_MAX + 16];
    path[0] = '/';
    memset(path + 1, 'a', PATH_MAX - 4);
    path[PATH_MAX - 3] = '\0';
    cr_assert_eq(st_check(path), 414);
    char small[16];
    cr_assert_eq(
        static__check_path("/abcd", small, sizeof small, &st_slash, &st_why),
        0);
    cr_assert_eq(
        static__check_path("/abcde", small, sizeof small, &st_slash, &st_why),
        414);
}
