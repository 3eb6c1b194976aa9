/*
 * --forwarded-allow-ips (server/http/forwarded.c), called directly: the
 * list's parsing (addresses, CIDR networks, "unix", "*", bad input) and
 * whom X-Forwarded-For / -Proto are then believed from.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>

#include "http/conn.h"
#include "http/forwarded.h"
#include "http/http.h"
#include "http/request.h"

static struct http_server fwd_srv;
static struct conn fwd_conn;
static co_request_t fwd_req;
static struct req_store fwd_store;

/* Parses spec into a fresh configuration; forwarded__parse's answer. */
static int fwd_parse(const char *spec)
{
    memset(&fwd_srv, 0, sizeof fwd_srv);
    return forwarded__parse(&fwd_srv.cfg.routing, spec);
}

/* Whether a peer at addr (an IPv4 or IPv6 literal, or "unix") is trusted
 * under the configuration fwd_parse made. */
static int fwd_trusts(const char *addr)
{
    memset(&fwd_conn, 0, sizeof fwd_conn);
    fwd_conn.srv = &fwd_srv;
    if (strcmp(addr, "unix") == 0)
        fwd_conn.peer_family = AF_UNIX;
    else if (inet_pton(AF_INET, addr, fwd_conn.peer_addr) == 1)
        fwd_conn.peer_family = AF_INET;
    else if (inet_pton(AF_INET6, addr, fwd_conn.peer_addr) == 1)
        fwd_conn.peer_family = AF_INET6;
    else
        cr_assert_fail("bad test address %s", addr);
    return forwarded__trusted(&fwd_conn);
}

/* A request from peer carrying the given X-Forwarded-For / -Proto (NULL:
 * absent). */
static co_request_t *fwd_request(const char *peer, const char *xff,
                                 const char *proto)
{
    fwd_trusts(peer);
    memset(&fwd_req, 0, sizeof fwd_req);
    request__attach_store(&fwd_req, &fwd_store);
    fwd_req.conn = &fwd_conn;
    if (xff)
        fwd_req.headers[fwd_req.nheaders++] = (struct http_header){
            "X-Forwarded-For", xff, 15, (uint32_t)strlen(xff)};
    if (proto)
        fwd_req.headers[fwd_req.nheaders++] = (struct http_header){
            "X-Forwarded-Proto", proto, 17, (uint32_t)strlen(proto)};
    return &fwd_req;
}

Test(forwarded_unit, parses_addresses_networks_and_unix)
{
    cr_assert_eq(fwd_parse("127.0.0.1,::1, 10.0.0.0/8 ,unix"), 0);
    cr_assert_eq(fwd_srv.cfg.routing.ntrusted, 3);
    cr_assert_eq(fwd_srv.cfg.routing.trusted[0].family, AF_INET);
    cr_assert_eq(fwd_srv.cfg.routing.trusted[0].bits, 32);
    cr_assert_eq(fwd_srv.cfg.routing.trusted[1].family, AF_INET6);
    cr_assert_eq(fwd_srv.cfg.routing.trusted[1].bits, 128);
    cr_assert_eq(fwd_srv.cfg.routing.trusted[2].bits, 8);
    cr_assert(fwd_srv.cfg.routing.trust_unix);
    cr_assert_not(fwd_srv.cfg.routing.trust_all);
}

Test(forwarded_unit, an_empty_list_trusts_no_one)
{
    cr_assert_eq(fwd_parse(""), 0);
    cr_assert_eq(fwd_srv.cfg.routing.ntrusted, 0);
    cr_assert_not(fwd_trusts("127.0.0.1"));
    cr_assert_not(fwd_trusts("unix"));
}

Test(forwarded_unit, refuses_bad_input)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/8x",
        "1.2.3",       "host",   "1.2.3.4.5", "::1::2",     "127.0.0.1,nope",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(fwd_parse(bad[i]), -1, "accepted %s", bad[i]);
}

Test(forwarded_unit, refuses_more_networks_than_it_holds)
{
    char spec[512] = "";
    for (int i = 0; i <= HTTP_MAX_TRUSTED; i++)
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s10.0.0.%d",
                 i ? "," : "", i);
    cr_assert_eq(fwd_parse(spec), -1);
    cr_assert_eq(fwd_parse("unix,*,unix"), 0, "keywords take no slot");
}

Test(forwarded_unit, refuses_a_list_too_long_to_copy)
{
    static char spec[2048];
    memset(spec, ' ', sizeof spec - 1);
    cr_assert_eq(fwd_parse(spec), -1);
}

Test(forwarded_unit, trusts_a_network_by_its_prefix)
{
    cr_assert_eq(fwd_parse("10.0.0.0/8,172.16.0.0/12,fd00::/8"), 0);
    cr_assert(fwd_trusts("10.1.2.3"));
    cr_assert_not(fwd_trusts("11.0.0.1"));
    cr_assert(fwd_trusts("172.31.255.255"));
    cr_assert_not(fwd_trusts("172.32.0.0"));
    cr_assert_not(fwd_trusts("172.15.255.255"));
    cr_assert(fwd_trusts("fd12::1"));
    cr_assert_not(fwd_trusts("fe80::1"));
    cr_assert_not(fwd_trusts("unix"));
}

Test(forwarded_unit, matches_addresses_exactly_and_by_family)
{
    cr_assert_eq(fwd_parse("127.0.0.1,::1"), 0);
    cr_assert(fwd_trusts("127.0.0.1"));
    cr_assert_not(fwd_trusts("127.0.0.2"));
    cr_assert(fwd_trusts("::1"));
    cr_assert_not(fwd_trusts("::2"));
    /* 10.0.0.0/8's bytes under an IPv6 peer are another address */
    cr_assert_eq(fwd_parse("10.0.0.0/8"), 0);
    cr_assert_not(fwd_trusts("a00::1"));
}

Test(forwarded_unit, a_zero_prefix_trusts_its_whole_family)
{
    cr_assert_eq(fwd_parse("0.0.0.0/0"), 0);
    cr_assert(fwd_trusts("203.0.113.9"));
    cr_assert_not(fwd_trusts("2001:db8::1"));
}

Test(forwarded_unit, star_trusts_everyone)
{
    cr_assert_eq(fwd_parse("*"), 0);
    cr_assert(fwd_trusts("203.0.113.9"));
    cr_assert(fwd_trusts("2001:db8::1"));
    cr_assert(fwd_trusts("unix"));
}

Test(forwarded_unit, believes_the_rightmost_address_from_a_trusted_proxy)
{
    cr_assert_eq(fwd_parse("127.0.0.1"), 0);
    co_request_t *req = fwd_request("127.0.0.1", "6.6.6.6, 203.0.113.7 ", NULL);
    const char *client = forwarded__client(req);
    cr_assert_not_null(client);
    cr_assert_str_eq(client, "203.0.113.7");
}

Test(forwarded_unit, ignores_headers_from_anyone_else)
{
    cr_assert_eq(fwd_parse("127.0.0.1"), 0);
    co_request_t *req = fwd_request("192.0.2.1", "203.0.113.7", "https");
    cr_assert_null(forwarded__client(req));
    cr_assert_str_eq(forwarded__scheme(req), "http");
}

Test(forwarded_unit, ignores_a_forwarded_address_that_is_not_one)
{
    cr_assert_eq(fwd_parse("127.0.0.1"), 0);
    cr_assert_null(forwarded__client(fwd_request("127.0.0.1", "evil", NULL)));
    cr_assert_null(
        forwarded__client(fwd_request("127.0.0.1", "1.2.3.4,", NULL)));
}

Test(forwarded_unit, takes_the_scheme_from_a_trusted_proxy)
{
    cr_assert_eq(fwd_parse("unix"), 0);
    cr_assert_str_eq(forwarded__scheme(fwd_request("unix", NULL, "HTTPS")),
                     "https");
    cr_assert_str_eq(forwarded__scheme(fwd_request("unix", NULL, "ftp")),
                     "http");
}
