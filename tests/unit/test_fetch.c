/*
 * test_fetch: unit tests for the parts of src/fetch.c that decide without
 * a network: the class of an address (which redirects may be followed)
 * and how long an answer may make a pull wait.  Transfers themselves are
 * tested against real servers by the integration tests (t0110, t0112).
 */
#include "config.h"

#include <limits.h>

#include "unit.h"

#include "fetch.h"

static void
test_net_of(void **state)
{
	static const struct {
		const char *ip;
		enum fetch_net net;
	} cases[] = {
		{ "127.0.0.1", FETCH_NET_LOOPBACK },
		{ "127.255.0.9", FETCH_NET_LOOPBACK },
		{ "0.0.0.0", FETCH_NET_LOOPBACK },
		{ "0.1.2.3", FETCH_NET_LOOPBACK },
		{ "::1", FETCH_NET_LOOPBACK },
		{ "::", FETCH_NET_LOOPBACK },
		{ "::ffff:127.0.0.1", FETCH_NET_LOOPBACK },
		{ "::ffff:0.0.0.0", FETCH_NET_LOOPBACK },
		{ "10.0.0.1", FETCH_NET_PRIVATE },
		{ "10.255.255.255", FETCH_NET_PRIVATE },
		{ "172.16.0.1", FETCH_NET_PRIVATE },
		{ "172.31.255.1", FETCH_NET_PRIVATE },
		{ "172.32.0.1", FETCH_NET_PUBLIC },
		{ "172.15.0.1", FETCH_NET_PUBLIC },
		{ "192.168.1.1", FETCH_NET_PRIVATE },
		{ "192.169.1.1", FETCH_NET_PUBLIC },
		{ "100.64.0.1", FETCH_NET_PRIVATE },
		{ "100.127.255.255", FETCH_NET_PRIVATE },
		{ "100.128.0.1", FETCH_NET_PUBLIC },
		{ "100.63.255.255", FETCH_NET_PUBLIC },
		{ "fc00::1", FETCH_NET_PRIVATE },
		{ "fdff:1::2", FETCH_NET_PRIVATE },
		{ "::ffff:10.1.2.3", FETCH_NET_PRIVATE },
		{ "::ffff:192.168.0.1", FETCH_NET_PRIVATE },
		{ "169.254.169.254", FETCH_NET_LINKLOCAL },
		{ "fe80::1", FETCH_NET_LINKLOCAL },
		{ "febf::1", FETCH_NET_LINKLOCAL },
		{ "fe80::1%eth0", FETCH_NET_LINKLOCAL },
		{ "fec0::1", FETCH_NET_PUBLIC },
		{ "::ffff:169.254.169.254", FETCH_NET_LINKLOCAL },
		{ "192.0.2.1", FETCH_NET_PUBLIC },
		{ "8.8.8.8", FETCH_NET_PUBLIC },
		{ "2001:db8::1", FETCH_NET_PUBLIC },
		{ "::ffff:8.8.8.8", FETCH_NET_PUBLIC },
		{ "", FETCH_NET_UNKNOWN },
		{ "localhost", FETCH_NET_UNKNOWN },
		{ "256.0.0.1", FETCH_NET_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (fetch_net_of(cases[i].ip) != cases[i].net)
			fail_msg("'%s' is %s, want %s", cases[i].ip,
			    fetch_net_name(fetch_net_of(cases[i].ip)),
			    fetch_net_name(cases[i].net));
	}
	assert_string_equal(fetch_net_name(FETCH_NET_LINKLOCAL), "link-local");
}

/* An answer as fetch.c leaves it: nothing said about waiting. */
static void
answer(struct fetch_xfer *x, long status)
{
	memset(x, 0, sizeof(*x));
	x->result = FETCH_OK;
	x->status = status;
	x->retry_after_s = x->ratelimit_reset_s = x->ratelimit_remaining = -1;
}

static void
test_wait(void **state)
{
	struct fetch_xfer x;

	(void)state;
	answer(&x, 503);
	assert_int_equal(fetch_wait_ms(&x), -1);
	x.retry_after_s = 3;
	assert_int_equal(fetch_wait_ms(&x), 3000);
	x.retry_after_s = 100000000000LL;
	assert_int_equal(fetch_wait_ms(&x), FETCH_WAIT_MAX_S * 1000);
	x.retry_after_s = LLONG_MAX;
	assert_int_equal(fetch_wait_ms(&x), FETCH_WAIT_MAX_S * 1000);

	/* A 429 with nothing left: the reset, and its second itself. */
	answer(&x, 429);
	x.ratelimit_remaining = 0;
	x.ratelimit_reset_s = 4;
	x.retry_after_s = 1;
	assert_int_equal(fetch_wait_ms(&x), 5000);
	x.ratelimit_reset_s = LLONG_MAX;
	assert_int_equal(fetch_wait_ms(&x), FETCH_WAIT_MAX_S * 1000);
	x.ratelimit_reset_s = FETCH_WAIT_MAX_S - 1;
	assert_int_equal(fetch_wait_ms(&x), FETCH_WAIT_MAX_S * 1000);
	/* Some left: the reset is not the wait; Retry-After is. */
	x.ratelimit_remaining = 3;
	assert_int_equal(fetch_wait_ms(&x), 1000);

	/* No answer at all: nothing said. */
	answer(&x, 0);
	x.result = FETCH_NETWORK;
	x.retry_after_s = 5;
	assert_int_equal(fetch_wait_ms(&x), -1);
}

static void
test_refused_is_final(void **state)
{
	struct fetch_xfer x;

	(void)state;
	answer(&x, 0);
	x.result = FETCH_NETWORK;
	assert_true(fetch_transient(&x));
	x.result = FETCH_REFUSED;
	assert_false(fetch_transient(&x));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_of),
		cmocka_unit_test(test_wait),
		cmocka_unit_test(test_refused_is_final),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
