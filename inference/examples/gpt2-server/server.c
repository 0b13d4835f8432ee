/*
 * gpt2-server: a GPT-2 behind HTTP (gpt2-server(1)), the inference
 * server of modelcache's examples.
 *
 *	gpt2-server [--model DIR] [--listen HOST:PORT] [--threads N]
 *
 * At start it loads the model in DIR (MODELCACHE_MODEL_DIR, as
 * modelcache-preload exports it): config.json, the tokenizer's
 * vocab.json and merges.txt, and model.safetensors, mapped once.  A file
 * that is missing or malformed ends the program with one line naming it
 * and exit status 1.  Then it serves, with libmicrohttpd, a thread a
 * connection:
 *
 *	GET /generate?prompt=TEXT&max_tokens=N   greedy decoding
 *	GET /logits?prompt=TEXT                  the last position's logits
 *	GET /healthz
 *
 * Every answer is a JSON object; a bad request is a 400 with
 * {"error": SENTENCE}.  No request opens a file: everything a request
 * needs was read or mapped at start.  Requests that run the model take
 * turns (model_mu): one key/value cache is alive at a time, so memory
 * stays bounded by one request's context whatever the number of clients,
 * and each request gets every thread of the pool.  /healthz does not
 * wait for them.
 *
 * SIGINT and SIGTERM stop the server: connections are closed, the model
 * released, exit status 0.
 *
 * Its diagnostics are lines on stderr, "gpt2-server: MESSAGE" (and
 * "listening on HOST:PORT" bare), or with MODELCACHE_LOG_FORMAT=json
 * (modelcache's setting, which modelcache-preload passes on) one JSON
 * object a line as modelcache's programs write them:
 * {"ts":"2026-11-26T18:00:00.123Z","level":"info","prog":"gpt2-server",
 * "msg":MESSAGE}.  Each line is one write(2).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "model.h"
#include "tokenizer.h"

#define PROG "gpt2-server"

static int log_json; /* MODELCACHE_LOG_FORMAT=json; set once in main */

static void say(const char *level, int bare, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define DEFAULT_MAX_TOKENS 16
#define MAX_TOKENS_MAX 1024
/* Bytes of prompt: BPE is quadratic in the length of a word. */
#define PROMPT_MAX 8192
#define BODY_MAX (256u * 1024 * 1024)
#define CONNECTIONS_MAX 64
#define CONNECTION_MEMORY (128 * 1024)
#define CONNECTION_TIMEOUT_S 120

struct server {
	const char *dir;
	struct model model;
	struct tokenizer *tok;
	int eos_id;
	pthread_mutex_t model_mu;
};

/* A response body: grows up to max, then refuses. */
struct buf {
	char *p;
	size_t len, cap, max;
	int failed;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return;
	if (n > b->max - b->len) {
		b->failed = 1;
		return;
	}
	if (b->len + n > b->cap) {
		cap = b->cap > 0 ? b->cap : 256;
		while (cap < b->len + n)
			cap = cap > b->max / 2 ? b->max : cap * 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
buf_printf(struct buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		b->failed = 1;
		return;
	}
	buf_add(b, tmp, (size_t)n);
}

/*
 * The length of the valid UTF-8 sequence at s[0..n), or 0 with *skip the
 * bytes to replace by one U+FFFD: the maximal part of a sequence that
 * could have been valid, at least one byte (Unicode's recommended
 * practice, which Python's errors="replace" follows).
 */
static size_t
utf8_valid(const unsigned char *s, size_t n, size_t *skip)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		*skip = 1;
		return 0;
	}
	for (k = 1; k <= need; k++) {
		if (k >= n || s[k] < lo || s[k] > hi) {
			*skip = k;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/* s[0..n) as a JSON string, invalid UTF-8 replaced by U+FFFD. */
static void
buf_json_string(struct buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len, skip;
	char esc[8];

	buf_add(b, "\"", 1);
	while (i < n) {
		if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			buf_add(b, esc, 2);
			i++;
		} else if (u[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			buf_add(b, esc, 6);
			i++;
		} else if ((len = utf8_valid(u + i, n - i, &skip)) > 0) {
			buf_add(b, s + i, len);
			i += len;
		} else {
			buf_add(b, "\xef\xbf\xbd", 3);
			i += skip;
		}
	}
	buf_add(b, "\"", 1);
}

static void
buf_json_ids(struct buf *b, const int *ids, size_t n)
{
	size_t i;

	buf_add(b, "[", 1);
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%d", i > 0 ? "," : "", ids[i]);
	buf_add(b, "]", 1);
}

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* --- requests ----------------------------------------------------- */

/* A request's query, as MHD decoded it (unescape() below). */
struct query {
	const char *prompt, *max_tokens;
	size_t prompt_len, max_tokens_len;
	int has_prompt, has_max_tokens;
	char bad[96]; /* the first problem, or "" */
};

static enum MHD_Result
query_arg(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size)
{
	struct query *q = cls;
	const char **v = NULL;
	size_t *len = NULL;
	int *has = NULL;

	/* By length: a decoded key may hold a NUL. */
	if (key_size == 6 && memcmp(key, "prompt", 6) == 0)
		v = &q->prompt, len = &q->prompt_len, has = &q->has_prompt;
	else if (key_size == 10 && memcmp(key, "max_tokens", 10) == 0)
		v = &q->max_tokens, len = &q->max_tokens_len,
		has = &q->has_max_tokens;
	if (has == NULL || *has) {
		if (q->bad[0] == '\0')
			snprintf(q->bad, sizeof(q->bad), "%s parameter '%.32s'",
			    has == NULL ? "unknown" : "repeated", key);
		return MHD_YES;
	}
	*has = 1;
	*v = value != NULL ? value : "";
	*len = value != NULL ? value_size : 0;
	return MHD_YES;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * MHD's unescaper for the query: "+" is a space and "%HH" a byte, as in
 * application/x-www-form-urlencoded; a "%" not followed by two hex
 * digits stays as it is.  The result may hold NUL bytes (its length is
 * what counts).
 */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	char *r = s, *w = s;
	int hi, lo;

	while (*r != '\0') {
		if (*r == '+') {
			*w++ = ' ';
			r++;
		} else if (*r == '%' && (hi = hexval(r[1])) >= 0 &&
		    (lo = hexval(r[2])) >= 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else
			*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}

struct answer {
	unsigned status;
	struct buf body;
};

static void answer_error(struct answer *a, unsigned status, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
answer_error(struct answer *a, unsigned status, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->status = status;
	a->body.len = 0;
	a->body.failed = 0;
	buf_add(&a->body, "{\"error\":", 9);
	buf_json_string(&a->body, msg, strlen(msg));
	buf_add(&a->body, "}", 1);
}

/*
 * The prompt's ids, or an empty prompt's start (bos_token_id, as the
 * reference does); 0, or an error answered.
 */
static int
prompt_ids(struct server *srv, struct answer *a, const struct query *q,
    int **ids, size_t *n)
{
	int rc;

	if (!q->has_prompt) {
		answer_error(a, 400, "missing parameter 'prompt'");
		return -EINVAL;
	}
	if (q->prompt_len > PROMPT_MAX) {
		answer_error(a, 400, "prompt is %zu bytes, more than %d",
		    q->prompt_len, PROMPT_MAX);
		return -EINVAL;
	}
	rc = tokenizer_encode(srv->tok, q->prompt, q->prompt_len, ids, n);
	if (rc < 0) {
		answer_error(a, rc == -ENOMEM ? 500 : 400,
		    rc == -ENOMEM ? "out of memory"
				  : "the prompt has a piece the vocabulary "
				    "lacks");
		return rc;
	}
	if (*n == 0) {
		if (srv->model.cfg.bos_id < 0 ||
		    srv->model.cfg.bos_id >= srv->model.cfg.vocab_size) {
			answer_error(a, 400,
			    "empty prompt, and the model has no "
			    "bos_token_id to start from");
			return -EINVAL;
		}
		(*ids)[0] = srv->model.cfg.bos_id;
		*n = 1;
	}
	if (*n > (size_t)srv->model.cfg.n_positions) {
		answer_error(a, 400, "prompt is %zu tokens, the context is %d",
		    *n, srv->model.cfg.n_positions);
		return -EINVAL;
	}
	return 0;
}

/* Feeds ids[0..n) to a fresh state; logits are the last position's. */
static int
prefill(struct server *srv, struct model_state *s, const int *ids, size_t n,
    float *logits)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if ((rc = model_step(&srv->model, s, ids[i],
			 i + 1 == n ? logits : NULL)) < 0)
			return rc;
	return 0;
}

static int
argmax(const float *v, int n)
{
	int i, best = 0;

	for (i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

static void
do_logits(struct server *srv, struct answer *a, const struct query *q)
{
	const struct model_config *cfg = &srv->model.cfg;
	struct model_state s = { 0 };
	float *logits = NULL;
	int *ids = NULL, i;
	size_t n;

	if (q->has_max_tokens) {
		answer_error(a, 400, "/logits takes no max_tokens");
		return;
	}
	if (prompt_ids(srv, a, q, &ids, &n) < 0)
		goto out;
	logits = malloc((size_t)cfg->vocab_size * sizeof(float));
	if (logits == NULL || model_state_init(&s, &srv->model, (int)n) < 0 ||
	    prefill(srv, &s, ids, n, logits) < 0) {
		answer_error(a, 500, "out of memory");
		goto out;
	}
	buf_add(&a->body, "{\"ids\":", 7);
	buf_json_ids(&a->body, ids, n);
	buf_printf(&a->body, ",\"argmax\":%d,\"logits\":[",
	    argmax(logits, cfg->vocab_size));
	for (i = 0; i < cfg->vocab_size; i++) {
		if (isfinite(logits[i]))
			buf_printf(&a->body, "%s%.9g", i > 0 ? "," : "",
			    (double)logits[i]);
		else
			buf_printf(&a->body, "%snull", i > 0 ? "," : "");
	}
	buf_add(&a->body, "]}", 2);
out:
	model_state_release(&s);
	free(logits);
	free(ids);
}

/* Strictly decimal, in [lo, hi]. */
static int
parse_int(const char *s, size_t len, long lo, long hi, long *out)
{
	long v = 0;
	size_t i;

	if (len == 0 || len > 9)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static void
do_generate(struct server *srv, struct answer *a, const struct query *q,
    double t0)
{
	const struct model_config *cfg = &srv->model.cfg;
	struct model_state s = { 0 };
	const char *stop = "max_tokens", *piece;
	struct buf text = { .max = BODY_MAX };
	float *logits = NULL;
	int *ids = NULL, *out = NULL, next;
	size_t n, count = 0, plen;
	long max_tokens = DEFAULT_MAX_TOKENS;

	if (q->has_max_tokens &&
	    parse_int(q->max_tokens, q->max_tokens_len, 0, MAX_TOKENS_MAX,
		&max_tokens) < 0) {
		answer_error(a, 400, "max_tokens must be an integer in [0, %d]",
		    MAX_TOKENS_MAX);
		return;
	}
	if (prompt_ids(srv, a, q, &ids, &n) < 0)
		goto out;
	logits = malloc((size_t)cfg->vocab_size * sizeof(float));
	out = malloc(((size_t)max_tokens + 1) * sizeof(*out));
	/* The whole sequence fits the context: the last token is never
	 * fed, so n + max_tokens - 1 positions at most. */
	if (logits == NULL || out == NULL ||
	    model_state_init(&s, &srv->model,
		(int)(n + (size_t)max_tokens > (size_t)cfg->n_positions
			? (size_t)cfg->n_positions
			: n + (size_t)max_tokens)) < 0 ||
	    prefill(srv, &s, ids, n, logits) < 0) {
		answer_error(a, 500, "out of memory");
		goto out;
	}
	for (;;) {
		if (count == (size_t)max_tokens) {
			stop = "max_tokens";
			break;
		}
		if (n + count >= (size_t)cfg->n_positions) {
			stop = "context";
			break;
		}
		next = argmax(logits, cfg->vocab_size);
		if (next == srv->eos_id) {
			stop = "eos";
			break;
		}
		out[count++] = next;
		if ((piece = tokenizer_token(srv->tok, next, &plen)) != NULL)
			buf_add(&text, piece, plen);
		if (count == (size_t)max_tokens ||
		    n + count >= (size_t)cfg->n_positions)
			continue;
		if (model_step(&srv->model, &s, next, logits) < 0) {
			answer_error(a, 500, "the model failed a step");
			goto out;
		}
	}
	if (text.failed) {
		answer_error(a, 500, "out of memory");
		goto out;
	}
	buf_add(&a->body, "{\"text\":", 8);
	buf_json_string(&a->body, text.p != NULL ? text.p : "", text.len);
	buf_printf(&a->body, ",\"tokens\":%zu,\"prompt_tokens\":%zu,", count,
	    n);
	buf_add(&a->body, "\"ids\":", 6);
	buf_json_ids(&a->body, out, count);
	buf_printf(&a->body, ",\"stop\":\"%s\",\"ms\":%.3f}", stop,
	    now_ms() - t0);
out:
	model_state_release(&s);
	free(text.p);
	free(logits);
	free(out);
	free(ids);
}

static void
do_healthz(struct server *srv, struct answer *a)
{
	buf_add(&a->body, "{\"ok\":true,\"model\":", 19);
	buf_json_string(&a->body, srv->dir, strlen(srv->dir));
	buf_add(&a->body, "}", 1);
}

static enum MHD_Result
handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	static int first_call;
	struct server *srv = cls;
	struct answer a = { 200, { .max = BODY_MAX } };
	struct MHD_Response *resp;
	struct query q = { 0 };
	enum MHD_Result ret;
	double t0 = now_ms();

	/* The first call has the headers only; answer on the next. */
	if (*con_cls == NULL) {
		*con_cls = &first_call;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		*upload_data_size = 0; /* a body: ignored */
		return MHD_YES;
	}
	MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		answer_error(&a, 405, "method %.16s not allowed", method);
	else if (strcmp(url, "/healthz") != 0 &&
	    strcmp(url, "/generate") != 0 && strcmp(url, "/logits") != 0)
		answer_error(&a, 404, "no such path");
	else if (q.bad[0] != '\0')
		answer_error(&a, 400, "%s", q.bad);
	else if (strcmp(url, "/healthz") == 0)
		do_healthz(srv, &a);
	else {
		pthread_mutex_lock(&srv->model_mu);
		if (strcmp(url, "/generate") == 0)
			do_generate(srv, &a, &q, t0);
		else
			do_logits(srv, &a, &q);
		pthread_mutex_unlock(&srv->model_mu);
	}
	if (a.body.failed) {
		free(a.body.p);
		a.body = (struct buf){ .max = BODY_MAX };
		answer_error(&a, 500, "answer too large or out of memory");
	}
	buf_add(&a.body, "\n", 1);
	if (a.body.failed) {
		free(a.body.p);
		return MHD_NO;
	}
	resp = MHD_create_response_from_buffer(a.body.len, a.body.p,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(a.body.p);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = MHD_queue_response(c, a.status, resp);
	MHD_destroy_response(resp);
	if (strcmp(url, "/healthz") != 0)
		say("info", 0, "%s %s %u %.1f ms", method, url, a.status,
		    now_ms() - t0);
	return ret;
}

/* --- start -------------------------------------------------------- */

/* libmicrohttpd's own messages, as lines of ours. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	say("warn", 0, "libmicrohttpd: %s", msg);
}

static void
usage(FILE *to)
{
	fprintf(to,
	    "usage: " PROG " [--model DIR] [--listen HOST:PORT]"
	    " [--threads N]\n"
	    "\n"
	    "  --model DIR         the model (MODELCACHE_MODEL_DIR)\n"
	    "  --listen HOST:PORT  where to listen (default " DEFAULT_LISTEN
	    "; port 0: any)\n"
	    "  --threads N         threads for the forward pass"
	    " (default: the CPUs online)\n"
	    "  --help              this text\n"
	    "  --version           the version\n");
}

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * One line on stderr, as text ("gpt2-server: " first unless bare) or as a
 * JSON object (log_json), handed to one write(2).
 */
static void
say(const char *level, int bare, const char *fmt, ...)
{
	struct buf b = { .max = 8192 };
	struct timespec now;
	struct tm tm;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!log_json) {
		if (!bare)
			buf_add(&b, PROG ": ", strlen(PROG ": "));
		buf_add(&b, msg, strlen(msg));
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		buf_printf(&b,
		    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\","
		    "\"level\":\"%s\",\"prog\":\"" PROG "\",\"msg\":",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000), level);
		buf_json_string(&b, msg, strlen(msg));
		buf_add(&b, "}", 1);
	}
	buf_add(&b, "\n", 1);
	if (!b.failed && write(STDERR_FILENO, b.p, b.len) < 0)
		b.failed = 1; /* stderr is gone: nowhere to say so */
	free(b.p);
}

/* One line on stderr, at error level; returns code. */
static int
fail(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say("error", 0, "%s", msg);
	return code;
}

/*
 * HOST:PORT ([V6]:PORT for an IPv6 literal) into an address to bind.
 * Returns 0, or -1 with the problem in err.
 */
static int
parse_listen(const char *spec, struct sockaddr_storage *ss, char *err,
    size_t errsz)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hl;
	long port;
	int rc;

	if (colon == NULL ||
	    parse_int(colon + 1, strlen(colon + 1), 0, 65535, &port) < 0) {
		snprintf(err, errsz, "--listen '%s': not HOST:PORT", spec);
		return -1;
	}
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(err, errsz, "--listen: bad host in '%s'", spec);
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = '\0';
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(err, errsz, "--listen: cannot resolve '%s': %s", host,
		    gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "listen", required_argument, NULL, 'l' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen_spec = DEFAULT_LISTEN;
	struct server srv = { 0 };
	struct sockaddr_storage ss, bound;
	socklen_t bl = sizeof(bound);
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d = NULL;
	char err[512], host[INET6_ADDRSTRLEN];
	const char *env;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	sigset_t sigs;
	double t0;
	int ch, sig, rc = 1;

	log_json = (env = getenv("MODELCACHE_LOG_FORMAT")) != NULL &&
	    strcmp(env, "json") == 0;
	srv.dir = getenv("MODELCACHE_MODEL_DIR");
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			srv.dir = optarg;
			break;
		case 'l':
			listen_spec = optarg;
			break;
		case 't':
			if (parse_int(optarg, strlen(optarg), 1, 64, &threads) <
			    0)
				return fail(2, "--threads: not 1 to 64");
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (srv.dir == NULL || srv.dir[0] == '\0')
		return fail(2,
		    "no model: give --model DIR or set "
		    "MODELCACHE_MODEL_DIR");
	if (parse_listen(listen_spec, &ss, err, sizeof(err)) < 0)
		return fail(2, "%s", err);
	if (threads < 1)
		threads = 1;
	if (threads > 64)
		threads = 64;

	/* Every thread started from here on leaves these to sigwait(). */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* The time zone, read now: a request's Date header would open
	 * /etc/localtime the first time otherwise. */
	tzset();
	pthread_mutex_init(&srv.model_mu, NULL);

	t0 = now_ms();
	if (model_load(&srv.model, srv.dir, (int)threads, err, sizeof(err)) <
	    0) {
		fail(1, "%s", err);
		goto out;
	}
	if (tokenizer_load(&srv.tok, srv.dir, srv.model.cfg.vocab_size, err,
		sizeof(err)) < 0) {
		fail(1, "%s", err);
		goto out;
	}
	srv.eos_id = srv.model.cfg.eos_id >= 0 ? srv.model.cfg.eos_id
					       : tokenizer_eot(srv.tok);
	say("info", 0,
	    "loaded '%s' in %.1f ms: %d layers, %d heads, %d wide, "
	    "vocabulary %d, context %d, %s (%zu tensors in place, %zu "
	    "widened to fp32), %d threads",
	    srv.dir, now_ms() - t0, srv.model.cfg.n_layer, srv.model.cfg.n_head,
	    srv.model.cfg.n_embd, srv.model.cfg.vocab_size,
	    srv.model.cfg.n_positions, srv.model.dtype, srv.model.in_place,
	    srv.model.widened, srv.model.nthreads);

	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
		(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, handler, &srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	    NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_UNESCAPE_CALLBACK,
	    unescape, NULL, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)CONNECTIONS_MAX, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_LISTENING_ADDRESS_REUSE,
	    1, MHD_OPTION_END);
	if (d == NULL) {
		fail(1, "cannot listen on %s", listen_spec);
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
	if (info == NULL ||
	    getsockname(info->listen_fd, (struct sockaddr *)&bound, &bl) < 0) {
		fail(1, "cannot read the listening address");
		goto out;
	}
	if (bound.ss_family == AF_INET6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&bound;

		inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
		say("info", 1, "listening on [%s]:%u", host,
		    ntohs(a6->sin6_port));
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&bound;

		inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
		say("info", 1, "listening on %s:%u", host, ntohs(a4->sin_port));
	}
	if (sigwait(&sigs, &sig) != 0) {
		fail(1, "sigwait failed");
		goto out;
	}
	say("info", 0, "%s, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rc = 0;
out:
	if (d != NULL)
		MHD_stop_daemon(d);
	tokenizer_free(srv.tok);
	model_release(&srv.model);
	pthread_mutex_destroy(&srv.model_mu);
	return rc;
}
