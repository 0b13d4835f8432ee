/*
 * fetch: all of modelcache's HTTP, one libcurl multi handle driven by a
 * libuv loop (one timer, one uv_poll_t per socket: curl's multi-uv.c
 * pattern).
 *
 * A transfer (struct fetch_xfer) is one request: its body goes to memory
 * (bounded) or to a file descriptor at an offset with pwrite, so that many
 * ranges of one file can arrive in parallel.  A ranged request is checked
 * before any byte is written: the answer must be 206 with a Content-Range
 * that starts where we asked, or the transfer stops with FETCH_RANGE_IGNORED
 * and nothing is written.  A body to a file never runs past what was asked
 * for: the range, or the whole file's size when the caller stated it
 * (fetch_xfer_expect()).  An answer that announces more (Content-Length,
 * the end or the total of its Content-Range) stops before its first byte is
 * written, one that sends more without saying so stops at the limit, with
 * FETCH_TOO_LONG; one that ends before it stops with FETCH_TOO_SHORT.  Both
 * are faults of the origin.  Bodies of error answers (status >= 300) go to
 * memory, never to the file.  Accept-Encoding is never sent, TLS is always
 * verified, and the standard proxy variables apply (libcurl reads them).
 *
 * Where a request may go is checked at the address actually connected to,
 * before each request is sent (a redirect followed, a reused connection):
 * a transfer's origin is the address of its first request, or the one its
 * caller names (fetch_xfer_origin(), for a redirect's target fetched
 * later).  A request to a loopback, link-local or private address is made
 * only when the origin is on an address of that same class; public
 * addresses are always allowed.  A transfer that carries an Authorization
 * header never sends it over plain http, except to a URL that names a
 * loopback host and connects to a loopback address.  Either refusal ends
 * the transfer with FETCH_REFUSED, the reason in curl_error.  Through a
 * proxy, the address checked is the proxy's.
 * Everything runs on the loop's thread; callbacks are never re-entered
 * from inside libcurl.
 */
#ifndef MC_FETCH_H
#define MC_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define FETCH_BODY_MAX (16 * 1024 * 1024) /* bodies kept in memory */
#define FETCH_HEADER_MAX 4096		  /* one captured header */
#define FETCH_URL_HEADER_MAX (128 * 1024) /* a Location or a Link */
#define FETCH_WAIT_MAX_S 60 /* the longest Retry-After or reset honoured */

/* The classes of address a transfer may reach (see above). */
enum fetch_net {
	FETCH_NET_UNKNOWN, /* not connected yet */
	FETCH_NET_PUBLIC,
	FETCH_NET_PRIVATE,   /* 10/8 172.16/12 192.168/16 100.64/10 fc00::/7 */
	FETCH_NET_LINKLOCAL, /* 169.254/16 fe80::/10 */
	FETCH_NET_LOOPBACK,  /* 127/8 ::1, and this host: 0/8 :: */
};

struct fetch_opts {
	const char *ca_file; /* NULL: the system's */
	const char *user_agent;
	long max_total;		 /* connections in all, 0: 64 */
	long max_host;		 /* connections per host, 0: 16 */
	long connect_timeout_ms; /* 0: 15 s */
	long low_speed_time_s;	 /* abort below 1 KiB/s for this long,
					   0: 30 s */
};

struct fetch {
	uv_loop_t *loop;
	void *multi; /* CURLM * */
	uv_timer_t timer;
	struct fetch_opts opts;
	unsigned running;	  /* transfers started, not yet done */
	struct fetch_call *calls; /* fetch_call_start()'s in flight */
	int closing;
};

enum fetch_result {
	FETCH_OK,	     /* an HTTP answer came (see status) */
	FETCH_NETWORK,	     /* no complete answer: connect, reset, timeout */
	FETCH_RANGE_IGNORED, /* asked a range, got 200 or a wrong range */
	FETCH_WRITE,	     /* the file could not be written (errno) */
	FETCH_TOO_LARGE,     /* a memory body over its limit */
	FETCH_REFUSED,	     /* an address or scheme not allowed (why in
				curl_error) */
	FETCH_TOO_LONG,	     /* a file body past what was asked for */
	FETCH_TOO_SHORT,     /* a file body that ended before it */
};

struct fetch_xfer {
	struct fetch *fetch;
	void *easy;    /* CURL * */
	void *headers; /* struct curl_slist * */
	/* where the body goes */
	int fd;				 /* -1: memory */
	uint64_t offset;		 /* pwrite offset of the first byte */
	uint64_t range_start, range_end; /* UINT64_MAX: no range */
	uint64_t size;			 /* the file's, UINT64_MAX: unknown */
	size_t body_max;
	/* what came back */
	enum fetch_result result;
	long status;
	int write_errno;
	uint64_t got; /* body bytes received */
	char *body;   /* memory body (or error body), NUL-ended */
	size_t body_len;
	char etag[128], linked_etag[128], repo_commit[64];
	char error_code[64], error_message[512];
	/*
	 * The transfer's, freed with it (a caller may take one and leave
	 * NULL); they hold the last answer's headers, after redirects.
	 */
	char *location;	 /* Location, whole; NULL when absent */
	char *link_next; /* Link's rel="next" target, whole; NULL absent */
	int link_bad;	 /* a Link header could not be parsed */
	char content_range[128];
	int64_t linked_size, content_length; /* -1 when absent */
	int64_t retry_after_s;		     /* -1 when absent */
	int64_t ratelimit_reset_s;	     /* RateLimit t=, -1 absent */
	int64_t ratelimit_remaining;	     /* RateLimit r=, -1 absent */
	/* why it failed, for people: libcurl's words, or ours for a fault */
	char curl_error[512];
	/* where it went (see above) */
	enum fetch_net origin_net; /* the origin's class */
	enum fetch_net net;	   /* the last address connected to */
	int secret;		   /* an Authorization header was added */
	/* the caller's */
	void (*done)(struct fetch_xfer *xfer);
	void *arg;
	void (*progress)(struct fetch_xfer *xfer, size_t n); /* may be NULL */
};

/* Sets up the engine on loop.  0, or -ENOMEM / -EIO. */
int fetch_init(struct fetch *f, uv_loop_t *loop, const struct fetch_opts *o);
/*
 * Stops the engine: transfers still running are abandoned without their
 * done callbacks.  Handles close on the loop; run it once more to free them.
 */
void fetch_close(struct fetch *f);

/*
 * A new transfer of url (copied) by GET.  Returns NULL when out of memory.
 * Free it with fetch_xfer_free(), never while it runs.
 */
struct fetch_xfer *fetch_xfer_new(struct fetch *f, const char *url);
void fetch_xfer_free(struct fetch_xfer *xfer);
/* Adds a request header line ("Name: value"); Authorization is a secret. */
int fetch_xfer_header(struct fetch_xfer *xfer, const char *line);
/*
 * The class of address the transfer's origin is on, for a transfer whose
 * URL came from a redirect (by default, the class of its first address).
 */
void fetch_xfer_origin(struct fetch_xfer *xfer, enum fetch_net net);
/* HEAD instead of GET. */
void fetch_xfer_head(struct fetch_xfer *xfer);
/* Follows redirects (default: not), dropping credentials across hosts. */
void fetch_xfer_follow(struct fetch_xfer *xfer);
/* On a new connection, not one already open (a hedge). */
void fetch_xfer_fresh(struct fetch_xfer *xfer);
/* Body to memory, at most max bytes (default FETCH_BODY_MAX). */
void fetch_xfer_to_memory(struct fetch_xfer *xfer, size_t max);
/*
 * Body to fd: byte k of the answer goes to offset + k.  With start !=
 * UINT64_MAX, asks for bytes start..end (inclusive) and checks the answer.
 */
void fetch_xfer_to_fd(struct fetch_xfer *xfer, int fd, uint64_t offset,
    uint64_t start, uint64_t end);
/*
 * The file a body to fd belongs to is size bytes, as the origin described
 * it.  An answer without a range must then be exactly size bytes long (a
 * longer one is never written past size), and a ranged answer's
 * Content-Range must name that total.  Without it, only a range bounds the
 * body.
 */
void fetch_xfer_expect(struct fetch_xfer *xfer, uint64_t size);
/* Starts it; done() is called once, on the loop thread. */
int fetch_xfer_start(struct fetch_xfer *xfer,
    void (*done)(struct fetch_xfer *xfer), void *arg);
/* Stops a running transfer without calling done(). */
void fetch_xfer_cancel(struct fetch_xfer *xfer);

/* A failure worth retrying: no answer, 408, 429 or 5xx. */
int fetch_transient(const struct fetch_xfer *x);
/*
 * How long the answer asks to wait before the next try, in ms: the
 * RateLimit reset of a 429 with none remaining, else Retry-After; at most
 * FETCH_WAIT_MAX_S, whatever the origin sent.  -1 when it says nothing.
 */
int64_t fetch_wait_ms(const struct fetch_xfer *x);
/* The class of a numeric IPv4 or IPv6 address (IPv4-mapped as IPv4). */
enum fetch_net fetch_net_of(const char *ip);
/* "public", "private", "link-local", "loopback" or "unknown". */
const char *fetch_net_name(enum fetch_net net);
/*
 * A call, for the few small requests around a pull (API calls, HEADs):
 * GET (or HEAD) url to memory with the NULL-ended header lines (copied),
 * following redirects.  Transient failures are retried up to tries times,
 * after Retry-After or 0.5, 1, 2, 4... s.  done() gets the last transfer
 * (the caller frees it), or NULL when out of memory; it is called from the
 * loop, never from inside fetch_call_start().  Returns 0 or -ENOMEM.
 */
struct fetch_call;
int fetch_call_start(struct fetch *f, const char *url,
    const char *const *headers, int head, unsigned tries,
    void (*done)(void *arg, struct fetch_xfer *x), void *arg);

/* Percent-encodes s into buf; keep_slash keeps '/' as is. */
int fetch_escape(const char *s, int keep_slash, char *buf, size_t len);

#endif
