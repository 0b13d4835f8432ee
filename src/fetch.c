/*
 * fetch: libcurl multi on libuv (see fetch.h).
 *
 * Ownership: a struct fetch_sock lives from curl's first interest in a
 * socket until CURL_POLL_REMOVE, and is freed in its poll handle's close
 * callback, never before.  A transfer's CURL easy handle is created with
 * the transfer and cleaned up in fetch_xfer_free().  libcurl's result codes
 * are folded into enum fetch_result here and nowhere else.
 *
 * Where requests may go is decided in prereq_cb(), which libcurl calls
 * with the address of each connection (new or reused) before it sends a
 * request on it, redirects included: that is the one place that sees the
 * address a host name resolved to, so the rules are kept there.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "backoff.h"
#include "fetch.h"

#define ERROR_BODY_MAX (64 * 1024)
#define CALL_BACKOFF_FIRST_MS 500 /* a call's retries: 0.5, 1, 2... s */
#define CALL_BACKOFF_MAX_MS 16000

struct fetch_call {
	struct fetch *fetch;
	struct fetch_call *next; /* in fetch.calls */
	char *url;
	char **headers; /* NULL-ended copies */
	int head;
	unsigned tries, tried;
	struct fetch_xfer *x; /* in flight */
	uv_timer_t timer;     /* the pause before a retry */
	void (*done)(void *arg, struct fetch_xfer *x);
	void *arg;
};

static void call_end(struct fetch_call *c);

struct fetch_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct fetch *fetch;
};

/* Per-transfer state that callers need not see. */
struct xfer_state {
	int checked; /* the status was looked at, on the first body byte */
	int to_file;
	char refused[sizeof(((struct fetch_xfer *)0)->curl_error)];
	char why[200]; /* an origin fault, said once the transfer ends */
};

static void check_done(struct fetch *f);

static void
sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct fetch_sock *s = h->data;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(s->fetch->multi, s->fd, flags, &running);
	check_done(s->fetch);
}

static int
socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
	struct fetch *f = userp;
	struct fetch_sock *s = socketp;
	int events = 0;

	if (action == CURL_POLL_REMOVE) {
		if (s != NULL) {
			/* Stop watching before curl closes the fd. */
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, sock_closed);
			curl_multi_assign(f->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		s = calloc(1, sizeof(*s));
		if (s == NULL)
			return -1;
		s->fd = fd;
		s->fetch = f;
		if (uv_poll_init_socket(f->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(f->multi, fd, s);
	}
	if (action & CURL_POLL_IN)
		events |= UV_READABLE;
	if (action & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, poll_cb);
	return 0;
}

static void
timer_cb(uv_timer_t *t)
{
	struct fetch *f = t->data;
	int running;

	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(f);
}

static int
timer_set(CURLM *multi, long ms, void *userp)
{
	struct fetch *f = userp;

	if (ms < 0)
		uv_timer_stop(&f->timer);
	else /* 0 means now: from the loop, not from inside curl */
		uv_timer_start(&f->timer, timer_cb, ms == 0 ? 1 : (uint64_t)ms,
		    0);
	return 0;
}

int
fetch_init(struct fetch *f, uv_loop_t *loop, const struct fetch_opts *o)
{
	memset(f, 0, sizeof(*f));
	f->loop = loop;
	if (o != NULL)
		f->opts = *o;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	f->multi = curl_multi_init();
	if (f->multi == NULL)
		return -ENOMEM;
	uv_timer_init(loop, &f->timer);
	f->timer.data = f;
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_set);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
	    f->opts.max_total > 0 ? f->opts.max_total : 64L);
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    f->opts.max_host > 0 ? f->opts.max_host : 16L);
	curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	return 0;
}

void
fetch_close(struct fetch *f)
{
	struct fetch_call *c;

	if (f->multi == NULL)
		return;
	f->closing = 1;
	/* Calls in flight end without their done callbacks. */
	while ((c = f->calls) != NULL) {
		if (c->x != NULL) {
			fetch_xfer_cancel(c->x);
			fetch_xfer_free(c->x);
		}
		call_end(c);
	}
	uv_timer_stop(&f->timer);
	uv_close((uv_handle_t *)&f->timer, NULL);
	curl_multi_cleanup(f->multi);
	f->multi = NULL;
}

/* A header's value (trimmed) when its name matches: 1, else 0. */
static int
value(const char *line, size_t len, const char *name, const char **v,
    size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return 0;
	line += n + 1;
	len -= n + 1;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len > 0 &&
	    (line[len - 1] == '\r' || line[len - 1] == '\n' ||
		line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*v = line;
	*vlen = len;
	return 1;
}

/* Copies a header's value (trimmed, cut to cap) when name matches. */
static int
take(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
	const char *v;
	size_t vlen;

	if (!value(line, len, name, &v, &vlen))
		return 0;
	if (vlen > cap - 1)
		vlen = cap - 1;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
	return 1;
}

static int64_t
number(const char *s)
{
	char *end;
	long long v;

	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

/* RateLimit: "resolvers";r=0;t=42 */
static void
ratelimit(struct fetch_xfer *x, const char *v)
{
	const char *r = strstr(v, ";r="), *t = strstr(v, ";t=");

	if (r != NULL)
		x->ratelimit_remaining = strtoll(r + 3, NULL, 10);
	if (t != NULL)
		x->ratelimit_reset_s = strtoll(t + 3, NULL, 10);
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/* Whether the space-separated list s (n bytes) holds the word w. */
static int
has_word(const char *s, size_t n, const char *w)
{
	size_t wl = strlen(w), i = 0, k;

	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		for (k = i; k < n && s[k] != ' ';)
			k++;
		if (k - i == wl && strncasecmp(s + i, w, wl) == 0)
			return 1;
		i = k;
	}
	return 0;
}

/*
 * Link: <url>; rel="next", <url>; rel="prev" (RFC 8288), parsed whole,
 * whatever its length: the rel="next" target is kept in full.  -EBADMSG
 * for a header that does not parse, or a second next link.
 */
static int
parse_link(struct fetch_xfer *x, const char *p, size_t len)
{
	const char *end = p + len, *lt, *gt, *name, *val, *q;
	size_t nlen, vlen;
	int next;

	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			return 0;
		if (*p != '<' ||
		    (gt = memchr(p, '>', (size_t)(end - p))) == NULL)
			return -EBADMSG;
		lt = p + 1;
		p = skip_ws(gt + 1, end);
		next = 0;
		while (p < end && *p != ',') {
			if (*p != ';')
				return -EBADMSG;
			p = name = skip_ws(p + 1, end);
			while (p < end && strchr("=;, \t", *p) == NULL)
				p++;
			nlen = (size_t)(p - name);
			p = skip_ws(p, end);
			val = p;
			vlen = 0;
			if (p < end && *p == '=') {
				p = skip_ws(p + 1, end);
				if (p < end && *p == '"') {
					val = p + 1;
					q = memchr(val, '"',
					    (size_t)(end - val));
					if (q == NULL)
						return -EBADMSG;
					vlen = (size_t)(q - val);
					p = q + 1;
				} else {
					for (val = p; p < end &&
					     strchr(";, \t", *p) == NULL;)
						p++;
					vlen = (size_t)(p - val);
				}
				p = skip_ws(p, end);
			}
			if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 &&
			    has_word(val, vlen, "next"))
				next = 1;
		}
		if (!next)
			continue;
		if (x->link_next != NULL)
			return -EBADMSG;
		if ((x->link_next = strndup(lt, (size_t)(gt - lt))) == NULL)
			return -ENOMEM;
	}
}

static void
reset_headers(struct fetch_xfer *x)
{
	x->etag[0] = x->linked_etag[0] = x->repo_commit[0] = '\0';
	x->error_code[0] = x->error_message[0] = '\0';
	x->content_range[0] = '\0';
	free(x->location);
	free(x->link_next);
	x->location = x->link_next = NULL;
	x->link_bad = 0;
	x->linked_size = x->content_length = -1;
	x->retry_after_s = x->ratelimit_reset_s = -1;
	x->ratelimit_remaining = -1;
}

static size_t
header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct fetch_xfer *x = ud;
	size_t len = size * n, vlen;
	char v[FETCH_HEADER_MAX];
	const char *val;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		reset_headers(x); /* a new answer (after a redirect) */
		return len;
	}
	if (take(p, len, "ETag", x->etag, sizeof(x->etag)) ||
	    take(p, len, "X-Linked-Etag", x->linked_etag,
		sizeof(x->linked_etag)) ||
	    take(p, len, "X-Repo-Commit", x->repo_commit,
		sizeof(x->repo_commit)) ||
	    take(p, len, "X-Error-Code", x->error_code,
		sizeof(x->error_code)) ||
	    take(p, len, "X-Error-Message", x->error_message,
		sizeof(x->error_message)) ||
	    take(p, len, "Content-Range", x->content_range,
		sizeof(x->content_range)))
		return len;
	/* URLs are kept whole, or the header counts as unreadable. */
	if (value(p, len, "Location", &val, &vlen)) {
		free(x->location);
		x->location =
		    vlen < FETCH_URL_HEADER_MAX ? strndup(val, vlen) : NULL;
		if (x->location == NULL)
			snprintf(x->curl_error, sizeof(x->curl_error),
			    "cannot keep a Location of %zu bytes", vlen);
		return x->location != NULL ? len : 0;
	}
	if (value(p, len, "Link", &val, &vlen)) {
		if (vlen >= FETCH_URL_HEADER_MAX ||
		    parse_link(x, val, vlen) < 0)
			x->link_bad = 1;
		return len;
	}
	if (take(p, len, "X-Linked-Size", v, sizeof(v)))
		x->linked_size = number(v);
	else if (take(p, len, "Content-Length", v, sizeof(v)))
		x->content_length = number(v);
	else if (take(p, len, "Retry-After", v, sizeof(v)))
		x->retry_after_s = number(v);
	else if (take(p, len, "RateLimit", v, sizeof(v)))
		ratelimit(x, v);
	return len;
}

/*
 * The numbers of a Content-Range "bytes A-B/T" (T is UINT64_MAX for "*").
 * -1 when it is absent or malformed.
 */
static int
content_range(const char *cr, uint64_t *a, uint64_t *b, uint64_t *t)
{
	char *end;

	if (strncasecmp(cr, "bytes ", 6) != 0 || !isdigit((unsigned char)cr[6]))
		return -1;
	errno = 0;
	*a = strtoull(cr + 6, &end, 10);
	if (*end != '-' || !isdigit((unsigned char)end[1]))
		return -1;
	*b = strtoull(end + 1, &end, 10);
	if (*end != '/' || errno != 0 || *b < *a)
		return -1;
	if (strcmp(end + 1, "*") == 0) {
		*t = UINT64_MAX;
		return 0;
	}
	if (!isdigit((unsigned char)end[1]))
		return -1;
	*t = strtoull(end + 1, &end, 10);
	return *end != '\0' || errno != 0 ? -1 : 0;
}

/* The body bytes a transfer to a file must bring; UINT64_MAX: unbounded. */
static uint64_t
wanted(const struct fetch_xfer *x)
{
	if (x->range_start != UINT64_MAX)
		return x->range_end - x->range_start + 1;
	return x->size;
}

/* Stops a transfer for an origin fault, and says why. */
static int fault(struct fetch_xfer *x, struct xfer_state *st,
    enum fetch_result r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fault(struct fetch_xfer *x, struct xfer_state *st, enum fetch_result r,
    const char *fmt, ...)
{
	va_list ap;

	x->result = r;
	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Looks at the answer before the first body byte is kept: a range must be
 * the one asked for, and no length the answer announces may differ from
 * what was asked for.
 */
static int
check_answer(struct fetch_xfer *x, struct xfer_state *st)
{
	uint64_t want = wanted(x), a = 0, b = 0, t = UINT64_MAX;
	int64_t len = x->content_length;

	st->checked = 1;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	st->to_file = x->fd >= 0 && x->status >= 200 && x->status < 300;
	if (!st->to_file)
		return 0;
	if (x->range_start != UINT64_MAX &&
	    (x->status != 206 ||
		content_range(x->content_range, &a, &b, &t) < 0 ||
		a != x->range_start)) {
		x->result = FETCH_RANGE_IGNORED;
		return -1;
	}
	if (x->range_start != UINT64_MAX && b != x->range_end)
		return fault(x, st,
		    b > x->range_end ? FETCH_TOO_LONG : FETCH_TOO_SHORT,
		    "asked for bytes %" PRIu64 "-%" PRIu64
		    ", the origin answered '%.60s'",
		    x->range_start, x->range_end, x->content_range);
	if (x->range_start != UINT64_MAX && t != UINT64_MAX &&
	    x->size != UINT64_MAX && t != x->size)
		return fault(x, st,
		    t > x->size ? FETCH_TOO_LONG : FETCH_TOO_SHORT,
		    "the file is %" PRIu64 " bytes, the origin answered"
		    " '%.60s'",
		    x->size, x->content_range);
	if (want != UINT64_MAX && len >= 0 && (uint64_t)len != want)
		return fault(x, st,
		    (uint64_t)len > want ? FETCH_TOO_LONG : FETCH_TOO_SHORT,
		    "asked for %" PRIu64 " bytes, the origin announced"
		    " %" PRId64 " (Content-Length)",
		    want, len);
	return 0;
}

static int
keep_in_memory(struct fetch_xfer *x, const char *p, size_t len, size_t max)
{
	char *b;

	if (x->body_len + len > max)
		return -1;
	b = realloc(x->body, x->body_len + len + 1);
	if (b == NULL)
		return -1;
	memcpy(b + x->body_len, p, len);
	x->body = b;
	x->body_len += len;
	b[x->body_len] = '\0';
	return 0;
}

static size_t
write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct fetch_xfer *x = ud;
	struct xfer_state *st = (struct xfer_state *)(x + 1);
	size_t len = size * n, done = 0;
	ssize_t w;

	if (!st->checked && check_answer(x, st) < 0)
		return 0;
	if (!st->to_file) {
		size_t max = x->fd >= 0 || x->status >= 300 ? ERROR_BODY_MAX
							    : x->body_max;

		if (keep_in_memory(x, p, len, max) < 0) {
			/* An error body is only kept as far as it fits. */
			if (x->fd >= 0 || x->status >= 300)
				return len;
			x->result = FETCH_TOO_LARGE;
			return 0;
		}
	} else {
		/* Never a byte past what was asked for. */
		if (wanted(x) != UINT64_MAX && x->got + len > wanted(x)) {
			fault(x, st, FETCH_TOO_LONG,
			    "asked for %" PRIu64 " bytes, the origin sent more",
			    wanted(x));
			return 0;
		}
		while (done < len) {
			w = pwrite(x->fd, p + done, len - done,
			    (off_t)(x->offset + x->got + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				x->write_errno = errno;
				x->result = FETCH_WRITE;
				return 0;
			}
			done += (size_t)w;
		}
	}
	x->got += len;
	if (x->progress != NULL && st->to_file)
		x->progress(x, len);
	return len;
}

enum fetch_net
fetch_net_of(const char *ip)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };
	unsigned char a[16];
	char buf[INET6_ADDRSTRLEN];
	size_t n = strcspn(ip, "%"); /* fe80::1%eth0: the zone is no part */

	if (n >= sizeof(buf))
		return FETCH_NET_UNKNOWN;
	memcpy(buf, ip, n);
	buf[n] = '\0';
	ip = buf;
	if (inet_pton(AF_INET6, ip, a) == 1) {
		if (memcmp(a, mapped, 12) != 0) {
			if (memcmp(a, in6addr_loopback.s6_addr, 16) == 0 ||
			    memcmp(a, in6addr_any.s6_addr, 16) == 0)
				return FETCH_NET_LOOPBACK;
			if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
				return FETCH_NET_LINKLOCAL;
			if ((a[0] & 0xfe) == 0xfc)
				return FETCH_NET_PRIVATE;
			return FETCH_NET_PUBLIC;
		}
		memmove(a, a + 12, 4); /* ::ffff:a.b.c.d is a.b.c.d */
	} else if (inet_pton(AF_INET, ip, a) != 1)
		return FETCH_NET_UNKNOWN;
	if (a[0] == 127 || a[0] == 0)
		return FETCH_NET_LOOPBACK;
	if (a[0] == 169 && a[1] == 254)
		return FETCH_NET_LINKLOCAL;
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
	    (a[0] == 192 && a[1] == 168) ||
	    (a[0] == 100 && (a[1] & 0xc0) == 64))
		return FETCH_NET_PRIVATE;
	return FETCH_NET_PUBLIC;
}

const char *
fetch_net_name(enum fetch_net net)
{
	static const char *const names[] = { "unknown", "public", "private",
		"link-local", "loopback" };

	return (size_t)net < sizeof(names) / sizeof(names[0]) ? names[net]
							      : "unknown";
}

/* Whether url's scheme is http and its host names loopback. */
static void
url_facts(const char *url, int *plain, int *loopback)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *h;
	size_t n;

	*plain = *loopback = 0;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
		*plain = strcasecmp(scheme, "http") == 0;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		goto out;
	h = host;
	n = strlen(h);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h[n - 1] = '\0';
		h++;
	}
	*loopback = strcasecmp(h, "localhost") == 0 ||
	    fetch_net_of(h) == FETCH_NET_LOOPBACK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
}

/*
 * Before each request, on the connection it will use: the address rules
 * of fetch.h.  A refusal ends the transfer before a byte is sent.
 */
static int
prereq_cb(void *ud, char *ip, char *local_ip, int port, int local_port)
{
	struct fetch_xfer *x = ud;
	struct xfer_state *st = (struct xfer_state *)(x + 1);
	enum fetch_net net = fetch_net_of(ip);
	char *got = NULL;
	const char *url;
	int plain, loopback;

	(void)local_ip;
	(void)local_port;
	curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &got);
	url = got != NULL ? got : "";
	x->net = net;
	if (x->origin_net == FETCH_NET_UNKNOWN)
		x->origin_net = net;
	if (net == FETCH_NET_UNKNOWN ||
	    (net != FETCH_NET_PUBLIC && net != x->origin_net)) {
		snprintf(st->refused, sizeof(st->refused),
		    "refused to follow the origin to '%.300s': %s is a %s"
		    " address and the origin is on a %s one",
		    url, ip, fetch_net_name(net),
		    fetch_net_name(x->origin_net));
		goto refuse;
	}
	url_facts(url, &plain, &loopback);
	if (x->secret && plain && !(loopback && net == FETCH_NET_LOOPBACK)) {
		snprintf(st->refused, sizeof(st->refused),
		    "refused to send the token over plain http to"
		    " '%.300s' (%s port %d): only https, or http to loopback",
		    url, ip, port);
		goto refuse;
	}
	return CURL_PREREQFUNC_OK;
refuse:
	x->result = FETCH_REFUSED;
	return CURL_PREREQFUNC_ABORT;
}

struct fetch_xfer *
fetch_xfer_new(struct fetch *f, const char *url)
{
	struct fetch_xfer *x;
	CURL *e;

	/* The private state sits right after the public struct. */
	x = calloc(1, sizeof(*x) + sizeof(struct xfer_state));
	if (x == NULL)
		return NULL;
	x->fetch = f;
	x->fd = -1;
	x->range_start = x->range_end = UINT64_MAX;
	x->size = UINT64_MAX;
	x->body_max = FETCH_BODY_MAX;
	reset_headers(x);
	if ((e = curl_easy_init()) == NULL) {
		free(x);
		return NULL;
	}
	x->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_error);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    f->opts.connect_timeout_ms > 0 ? f->opts.connect_timeout_ms
					   : 15000L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
	    f->opts.low_speed_time_s > 0 ? f->opts.low_speed_time_s : 30L);
	if (f->opts.ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, f->opts.ca_file);
	curl_easy_setopt(e, CURLOPT_USERAGENT,
	    f->opts.user_agent != NULL ? f->opts.user_agent
				       : "modelcache/" PACKAGE_VERSION);
	return x;
}

void
fetch_xfer_free(struct fetch_xfer *x)
{
	if (x == NULL)
		return;
	curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x->location);
	free(x->link_next);
	free(x->body);
	free(x);
}

int
fetch_xfer_header(struct fetch_xfer *x, const char *line)
{
	struct curl_slist *l = curl_slist_append(x->headers, line);

	if (l == NULL)
		return -ENOMEM;
	x->headers = l;
	if (strncasecmp(line, "Authorization:", 14) == 0)
		x->secret = 1;
	return 0;
}

void
fetch_xfer_origin(struct fetch_xfer *x, enum fetch_net net)
{
	x->origin_net = net;
}

void
fetch_xfer_head(struct fetch_xfer *x)
{
	curl_easy_setopt(x->easy, CURLOPT_NOBODY, 1L);
}

void
fetch_xfer_follow(struct fetch_xfer *x)
{
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(x->easy, CURLOPT_MAXREDIRS, 10L);
	/* Credentials never travel to another host (the default, stated). */
	curl_easy_setopt(x->easy, CURLOPT_UNRESTRICTED_AUTH, 0L);
}

void
fetch_xfer_fresh(struct fetch_xfer *x)
{
	curl_easy_setopt(x->easy, CURLOPT_FRESH_CONNECT, 1L);
}

void
fetch_xfer_to_memory(struct fetch_xfer *x, size_t max)
{
	x->fd = -1;
	x->body_max = max;
}

void
fetch_xfer_to_fd(struct fetch_xfer *x, int fd, uint64_t offset, uint64_t start,
    uint64_t end)
{
	char range[64];

	x->fd = fd;
	x->offset = offset;
	x->range_start = start;
	x->range_end = end;
	if (start != UINT64_MAX) {
		snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, start,
		    end);
		curl_easy_setopt(x->easy, CURLOPT_RANGE, range);
	}
}

void
fetch_xfer_expect(struct fetch_xfer *x, uint64_t size)
{
	x->size = size;
}

int
fetch_xfer_start(struct fetch_xfer *x, void (*done)(struct fetch_xfer *),
    void *arg)
{
	struct fetch *f = x->fetch;

	if (f->closing)
		return -ESHUTDOWN;
	x->done = done;
	x->arg = arg;
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	if (curl_multi_add_handle(f->multi, x->easy) != CURLM_OK)
		return -EIO;
	f->running++;
	return 0;
}

void
fetch_xfer_cancel(struct fetch_xfer *x)
{
	if (curl_multi_remove_handle(x->fetch->multi, x->easy) == CURLM_OK &&
	    x->fetch->running > 0)
		x->fetch->running--;
}

static void
finish(struct fetch_xfer *x, CURLcode rc)
{
	struct xfer_state *st = (struct xfer_state *)(x + 1);

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->result == FETCH_REFUSED) /* libcurl wrote its own words */
		snprintf(x->curl_error, sizeof(x->curl_error), "%s",
		    st->refused);
	/* An empty body never met write_cb(): look at the answer now. */
	if (rc == CURLE_OK && x->result == FETCH_OK && !st->checked)
		check_answer(x, st);
	if (rc == CURLE_OK && x->result == FETCH_OK && st->to_file &&
	    wanted(x) != UINT64_MAX && x->got < wanted(x))
		fault(x, st, FETCH_TOO_SHORT,
		    "asked for %" PRIu64 " bytes, the origin's answer ended"
		    " after %" PRIu64,
		    wanted(x), x->got);
	if (x->result == FETCH_TOO_LONG || x->result == FETCH_TOO_SHORT)
		snprintf(x->curl_error, sizeof(x->curl_error), "%s", st->why);
	if (rc != CURLE_OK && x->result == FETCH_OK) {
		x->result = FETCH_NETWORK;
		if (x->curl_error[0] == '\0')
			snprintf(x->curl_error, sizeof(x->curl_error), "%s",
			    curl_easy_strerror(rc));
	}
}

static void
check_done(struct fetch *f)
{
	struct fetch_xfer *x;
	CURLMsg *msg;
	int pending;

	while (f->multi != NULL &&
	    (msg = curl_multi_info_read(f->multi, &pending)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&x);
		curl_multi_remove_handle(f->multi, msg->easy_handle);
		finish(x, msg->data.result);
		f->running--;
		x->done(x);
	}
}

static void
call_free(uv_handle_t *h)
{
	struct fetch_call *c = h->data;
	char **hp;

	for (hp = c->headers; hp != NULL && *hp != NULL; hp++)
		free(*hp);
	free(c->headers);
	free(c->url);
	free(c);
}

/* Takes c off the engine's list and frees it once its timer closes. */
static void
call_end(struct fetch_call *c)
{
	struct fetch_call **pp;

	for (pp = &c->fetch->calls; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	uv_close((uv_handle_t *)&c->timer, call_free);
}

static void call_try(uv_timer_t *t);

static void
call_answered(struct fetch_xfer *x)
{
	struct fetch_call *c = x->arg;
	int64_t ms;

	c->x = NULL;
	if (fetch_transient(x) && ++c->tried < c->tries) {
		ms = fetch_wait_ms(x);
		if (ms < 0)
			ms = backoff_ms(CALL_BACKOFF_FIRST_MS,
			    CALL_BACKOFF_MAX_MS, c->tried - 1);
		fetch_xfer_free(x);
		uv_timer_start(&c->timer, call_try, (uint64_t)ms, 0);
		return;
	}
	c->done(c->arg, x);
	call_end(c);
}

static void
call_try(uv_timer_t *t)
{
	struct fetch_call *c = t->data;
	struct fetch_xfer *x = fetch_xfer_new(c->fetch, c->url);
	char **hp;

	for (hp = c->headers; x != NULL && *hp != NULL; hp++)
		if (fetch_xfer_header(x, *hp) < 0) {
			fetch_xfer_free(x);
			x = NULL;
		}
	if (x != NULL) {
		if (c->head)
			fetch_xfer_head(x);
		fetch_xfer_follow(x);
		fetch_xfer_to_memory(x, FETCH_BODY_MAX);
		if (fetch_xfer_start(x, call_answered, c) == 0) {
			c->x = x;
			return;
		}
		fetch_xfer_free(x);
	}
	c->done(c->arg, NULL);
	call_end(c);
}

int
fetch_call_start(struct fetch *f, const char *url, const char *const *headers,
    int head, unsigned tries, void (*done)(void *arg, struct fetch_xfer *x),
    void *arg)
{
	struct fetch_call *c = calloc(1, sizeof(*c));
	size_t n = 0, i;

	while (headers != NULL && headers[n] != NULL)
		n++;
	if (c == NULL || (c->url = strdup(url)) == NULL ||
	    (c->headers = calloc(n + 1, sizeof(char *))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++)
		if ((c->headers[i] = strdup(headers[i])) == NULL)
			goto nomem;
	c->fetch = f;
	c->head = head;
	c->tries = tries > 0 ? tries : 1;
	c->done = done;
	c->arg = arg;
	uv_timer_init(f->loop, &c->timer);
	c->timer.data = c;
	c->next = f->calls;
	f->calls = c;
	/* From the loop, so that done() never runs inside this call. */
	uv_timer_start(&c->timer, call_try, 0, 0);
	return 0;
nomem:
	if (c != NULL) {
		for (i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
			free(c->headers[i]);
		free(c->headers);
		free(c->url);
	}
	free(c);
	return -ENOMEM;
}

int
fetch_transient(const struct fetch_xfer *x)
{
	if (x->result == FETCH_REFUSED)
		return 0; /* the same request would be refused again */
	return x->result != FETCH_OK || x->status == 408 || x->status == 429 ||
	    x->status >= 500;
}

int64_t
fetch_wait_ms(const struct fetch_xfer *x)
{
	int64_t s = -1;

	if (x->result != FETCH_OK)
		return -1;
	if (x->status == 429 && x->ratelimit_remaining == 0 &&
	    x->ratelimit_reset_s >= 0) /* and the reset's second itself */
		s = x->ratelimit_reset_s < FETCH_WAIT_MAX_S
		    ? x->ratelimit_reset_s + 1
		    : FETCH_WAIT_MAX_S;
	else if (x->retry_after_s >= 0)
		s = x->retry_after_s;
	if (s < 0)
		return -1;
	return (s < FETCH_WAIT_MAX_S ? s : FETCH_WAIT_MAX_S) * 1000;
}

int
fetch_escape(const char *s, int keep_slash, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~' || (keep_slash && c == '/')) {
			if (o + 1 >= len)
				return -ENAMETOOLONG;
			buf[o++] = (char)c;
		} else {
			if (o + 3 >= len)
				return -ENAMETOOLONG;
			buf[o++] = '%';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return 0;
}
