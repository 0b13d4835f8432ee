/*
 * conf: the configuration key table and the three ways to fill it.
 *
 * Every key is one row of keys[] below: its name in the file, its
 * environment variable, its default as text, and how its text becomes a
 * value.  Defaults go through the same conf_set() as everything else, so a
 * default can never be a value the parser would refuse.  modelcache.conf(5)
 * documents the same table; change both together.
 *
 *	key		environment		default
 *	store		MODELCACHE_STORE	/var/lib/modelcache
 *	socket		MODELCACHE_SOCKET	/run/modelcache/modelcache.sock
 *	models		MODELCACHE_MODELS	""
 *	include		MODELCACHE_INCLUDE	"" (every file; globs)
 *	exclude		MODELCACHE_EXCLUDE	"" (none; globs)
 *	max_size	MODELCACHE_MAX_SIZE	0 (no limit; a size, see below)
 *	log_format	MODELCACHE_LOG_FORMAT	text (or json)
 *	hf_endpoint	HF_ENDPOINT		https://huggingface.co
 *	hf_token_path	HF_TOKEN_PATH		""
 *	stale_after	MODELCACHE_STALE_AFTER	30 (seconds, 1..86400)
 *	index_busy_timeout MODELCACHE_INDEX_BUSY_TIMEOUT 0 (a 4th of
 *			stale_after, 100 ms..30 s; else seconds, 1..30,
 *			below stale_after: see conf_check)
 *	refresh		MODELCACHE_REFRESH	600 (seconds, 0..31536000)
 *	socket_group	MODELCACHE_SOCKET_GROUP	"" (the daemon's own group)
 *	allow_uids	MODELCACHE_ALLOW_UIDS	"" (anyone the socket lets in)
 *	max_connections	MODELCACHE_MAX_CONNECTIONS 256 (1..65536)
 *	max_leases_per_client MODELCACHE_MAX_LEASES_PER_CLIENT 64 (1..65536)
 *	max_pulls_per_client MODELCACHE_MAX_PULLS_PER_CLIENT 4 (1..1024)
 *	allow		MODELCACHE_ALLOW	hf:// only (globs of references)
 *	index		MODELCACHE_INDEX	"" (chosen by the store's filesystem)
 *	node		MODELCACHE_NODE		"" (the host name)
 *
 * The file grammar, one line at a time:
 *	line	= blank | comment | key "=" value [comment]
 *	value	= '"' any byte but '"' '"' | bare text
 * Spaces and tabs around keys and values are ignored, as is a final '\r'.
 * A '#' starts a comment at the start of a line or after a space or tab, so
 * "models = https://h/f#sha256=…" needs no quotes.  Quotes take no escapes:
 * a value cannot hold '"'.  No value may hold a control character.
 *
 * conf_set() changes nothing when it fails, so a struct conf always holds
 * values that passed their checks.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"

#define SIZE_TEXT_MAX 64 /* bytes in a size, digits and unit */
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

enum conf_type {
	CONF_STRING,  /* char *, any text without control characters */
	CONF_PATH,    /* char *, like CONF_STRING but not empty */
	CONF_GLOBS,   /* char *, at most CONF_GLOBS_MAX globs (conf_globs) */
	CONF_SOCKET,  /* char *, a path that fits in sun_path */
	CONF_URL,     /* char *, http(s) URL, trailing '/' dropped */
	CONF_FORMAT,  /* char *, "text" or "json" */
	CONF_SIZE,    /* uint64_t, conf_parse_size() */
	CONF_SECONDS, /* unsigned, between min and max */
	CONF_COUNT,   /* unsigned, between min and max */
};

struct conf_key {
	const char *name;
	const char *env;
	const char *def;
	enum conf_type type;
	size_t offset;
	unsigned min, max; /* CONF_SECONDS and CONF_COUNT only */
};

static const struct conf_key keys[] = {
	{ "store", "MODELCACHE_STORE", "/var/lib/modelcache", CONF_PATH,
	    offsetof(struct conf, store), 0, 0 },
	{ "socket", "MODELCACHE_SOCKET", "/run/modelcache/modelcache.sock",
	    CONF_SOCKET, offsetof(struct conf, socket), 0, 0 },
	{ "models", "MODELCACHE_MODELS", "", CONF_STRING,
	    offsetof(struct conf, models), 0, 0 },
	{ "include", "MODELCACHE_INCLUDE", "", CONF_GLOBS,
	    offsetof(struct conf, include), 0, 0 },
	{ "exclude", "MODELCACHE_EXCLUDE", "", CONF_GLOBS,
	    offsetof(struct conf, exclude), 0, 0 },
	{ "max_size", "MODELCACHE_MAX_SIZE", "0", CONF_SIZE,
	    offsetof(struct conf, max_size), 0, 0 },
	{ "log_format", "MODELCACHE_LOG_FORMAT", "text", CONF_FORMAT,
	    offsetof(struct conf, log_format), 0, 0 },
	{ "hf_endpoint", "HF_ENDPOINT", "https://huggingface.co", CONF_URL,
	    offsetof(struct conf, hf_endpoint), 0, 0 },
	{ "hf_token_path", "HF_TOKEN_PATH", "", CONF_STRING,
	    offsetof(struct conf, hf_token_path), 0, 0 },
	{ "stale_after", "MODELCACHE_STALE_AFTER", "30", CONF_SECONDS,
	    offsetof(struct conf, stale_s), 1, 86400 },
	{ "index_busy_timeout", "MODELCACHE_INDEX_BUSY_TIMEOUT", "0",
	    CONF_SECONDS, offsetof(struct conf, busy_s), 0, CONF_BUSY_MAX },
	{ "refresh", "MODELCACHE_REFRESH", "600", CONF_SECONDS,
	    offsetof(struct conf, refresh_s), 0, 31536000 },
	{ "socket_group", "MODELCACHE_SOCKET_GROUP", "", CONF_STRING,
	    offsetof(struct conf, socket_group), 0, 0 },
	{ "allow_uids", "MODELCACHE_ALLOW_UIDS", "", CONF_STRING,
	    offsetof(struct conf, allow_uids), 0, 0 },
	{ "max_connections", "MODELCACHE_MAX_CONNECTIONS", "256", CONF_COUNT,
	    offsetof(struct conf, max_conns), 1, 65536 },
	{ "max_leases_per_client", "MODELCACHE_MAX_LEASES_PER_CLIENT", "64",
	    CONF_COUNT, offsetof(struct conf, max_leases), 1, 65536 },
	{ "max_pulls_per_client", "MODELCACHE_MAX_PULLS_PER_CLIENT", "4",
	    CONF_COUNT, offsetof(struct conf, max_pulls), 1, 1024 },
	{ "allow", "MODELCACHE_ALLOW", "hf://*", CONF_GLOBS,
	    offsetof(struct conf, allow), 0, 0 },
	{ "index", "MODELCACHE_INDEX", "", CONF_STRING,
	    offsetof(struct conf, index), 0, 0 },
	{ "node", "MODELCACHE_NODE", "", CONF_STRING,
	    offsetof(struct conf, node), 0, 0 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static const struct conf_key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static void *
field(struct conf *conf, const struct conf_key *k)
{
	return (char *)conf + k->offset;
}

static int
fail(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return -EINVAL;
}

/* Writes a message into err, when the caller gave room for one. */
static void errorf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* *v = *v * 10 + the digit c; -ERANGE when that overflows. */
static int
add_digit(uint64_t *v, int c)
{
	if (*v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
		return -ERANGE;
	*v = *v * 10 + (uint64_t)(c - '0');
	return 0;
}

/* The multiplier of a size unit (case already folded), or 0. */
static uint64_t
size_unit(const char *u)
{
	static const struct {
		char letter;
		int power;
	} units[] = { { 'k', 1 }, { 'm', 2 }, { 'g', 3 }, { 't', 4 } };
	uint64_t mult = 1, base = 1000;
	size_t i;
	int p = 0, j;

	if (*u == '\0' || strcmp(u, "b") == 0)
		return 1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (u[0] == units[i].letter)
			p = units[i].power;
	if (p == 0)
		return 0;
	u++;
	if (*u == 'i') {
		base = 1024;
		u++;
	}
	if (*u == 'b')
		u++;
	if (*u != '\0')
		return 0;
	for (j = 0; j < p; j++)
		mult *= base;
	return mult;
}

/*
 * floor(mult * 0.DIGITS) for the fraction digits frac[0..n), exactly and
 * for any n: from the last digit back, a = floor((digit * mult + a) / 10).
 * Each step drops a part below one from a sum whose other terms are whole,
 * and dropping less than one from (whole + part) / 10 never changes its
 * floor, so the result is the floor of the exact product.
 */
static uint64_t
fraction_of(const char *frac, size_t n, uint64_t mult)
{
	uint64_t a = 0;

	while (n-- > 0)
		a = ((uint64_t)(frac[n] - '0') * mult + a) / 10;
	return a;
}

int
conf_parse_size(const char *text, uint64_t *out)
{
	char unit[8];
	const char *p = text, *frac = NULL;
	uint64_t whole = 0, mult, frac_part;
	size_t nfrac = 0, i;

	if (text == NULL || strnlen(text, SIZE_TEXT_MAX + 1) > SIZE_TEXT_MAX ||
	    !is_digit((unsigned char)*p))
		return -EINVAL;
	for (; is_digit((unsigned char)*p); p++)
		if (add_digit(&whole, *p) < 0)
			return -EINVAL;
	if (*p == '.') {
		frac = ++p;
		while (is_digit((unsigned char)*p))
			p++;
		if ((nfrac = (size_t)(p - frac)) == 0)
			return -EINVAL;
	}
	for (i = 0; p[i] != '\0' && i < sizeof(unit) - 1; i++)
		unit[i] = (p[i] >= 'A' && p[i] <= 'Z')
		    ? (char)(p[i] - 'A' + 'a')
		    : p[i];
	unit[i] = '\0';
	if (p[i] != '\0' || (mult = size_unit(unit)) == 0)
		return -EINVAL;
	frac_part = frac != NULL ? fraction_of(frac, nfrac, mult) : 0;
	if (whole > (UINT64_MAX - frac_part) / mult)
		return -EINVAL;
	*out = whole * mult + frac_part;
	return 0;
}

/* A whole number of seconds within [min, max]. */
static int
parse_count(const char *text, unsigned min, unsigned max, unsigned *out,
    int seconds, const char **why)
{
	uint64_t v = 0;
	const char *p;

	if (!is_digit((unsigned char)*text))
		return fail(why,
		    seconds ? "must be a whole number of seconds"
			    : "must be a whole number");
	for (p = text; is_digit((unsigned char)*p); p++)
		if (add_digit(&v, *p) < 0)
			return fail(why,
			    seconds ? "number of seconds out of range"
				    : "number out of range");
	if (*p != '\0')
		return fail(why,
		    seconds ? "must be a whole number of seconds"
			    : "must be a whole number");
	if (v < min || v > max)
		return fail(why,
		    seconds ? "number of seconds out of range"
			    : "number out of range");
	*out = (unsigned)v;
	return 0;
}

/* A fresh copy of an http(s) URL without its trailing slashes. */
static int
parse_url(const char *text, char **out, const char **why)
{
	size_t len = strlen(text), skip;

	if (strncmp(text, "https://", strlen("https://")) == 0)
		skip = strlen("https://");
	else if (strncmp(text, "http://", strlen("http://")) == 0)
		skip = strlen("http://");
	else
		return fail(why, "must start with http:// or https://");
	while (len > skip && text[len - 1] == '/')
		len--;
	if (len == skip || text[skip] == '/')
		return fail(why, "URL has no host");
	if (strpbrk(text, " \"<>\\^`{|}") != NULL)
		return fail(why, "invalid character in URL");
	if ((*out = strndup(text, len)) == NULL)
		return -ENOMEM;
	return 0;
}

#define GLOB_SEP " \t,"

size_t
conf_globs(char *list, const char **globs, size_t max)
{
	size_t n = 0, len;

	for (;;) {
		list += strspn(list, GLOB_SEP);
		if (*list == '\0' || n == max)
			return n;
		len = strcspn(list, GLOB_SEP);
		globs[n++] = list;
		list += len;
		if (*list != '\0')
			*list++ = '\0';
	}
}

/* Whether text is at most CONF_GLOBS_MAX globs. */
static int
check_globs(const char *text, const char **why)
{
	size_t n = 0;

	for (;;) {
		text += strspn(text, GLOB_SEP);
		if (*text == '\0')
			return 0;
		if (++n > CONF_GLOBS_MAX)
			return fail(why, "more than 64 patterns");
		text += strcspn(text, GLOB_SEP);
	}
}

/* The new string for a key of a string type, checked. */
static int
parse_string(const struct conf_key *k, const char *value, char **out,
    const char **why)
{
	switch (k->type) {
	case CONF_URL:
		return parse_url(value, out, why);
	case CONF_FORMAT:
		if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
			return fail(why, "must be text or json");
		break;
	case CONF_SOCKET:
		if (strlen(value) >= SUN_PATH_MAX)
			return fail(why, "socket path is too long");
		if (*value == '\0')
			return fail(why, "must not be empty");
		break;
	case CONF_PATH:
		if (*value == '\0')
			return fail(why, "must not be empty");
		break;
	case CONF_GLOBS:
		if (check_globs(value, why) < 0)
			return -EINVAL;
		break;
	default:
		break;
	}
	if ((*out = strdup(value)) == NULL)
		return -ENOMEM;
	return 0;
}

int
conf_set(struct conf *conf, const char *key, const char *value,
    const char **why)
{
	const struct conf_key *k;
	char *s, **slot;
	uint64_t size;
	int rc;

	if (key == NULL || (k = find_key(key)) == NULL)
		return -ENOENT;
	if (value == NULL)
		return fail(why, "missing value");
	if (has_control(value))
		return fail(why, "control character in value");
	switch (k->type) {
	case CONF_SIZE:
		if (conf_parse_size(value, &size) < 0)
			return fail(why, "invalid size");
		*(uint64_t *)field(conf, k) = size;
		return 0;
	case CONF_SECONDS:
	case CONF_COUNT:
		return parse_count(value, k->min, k->max,
		    (unsigned *)field(conf, k), k->type == CONF_SECONDS, why);
	default:
		if ((rc = parse_string(k, value, &s, why)) < 0)
			return rc;
		slot = field(conf, k);
		free(*slot);
		*slot = s;
		return 0;
	}
}

int
conf_init(struct conf *conf)
{
	size_t i;
	int rc;

	memset(conf, 0, sizeof(*conf));
	for (i = 0; i < NKEYS; i++) {
		if ((rc = conf_set(conf, keys[i].name, keys[i].def, NULL)) <
		    0) {
			conf_release(conf);
			return rc;
		}
	}
	return 0;
}

void
conf_release(struct conf *conf)
{
	if (conf == NULL)
		return;
	free(conf->store);
	free(conf->socket);
	free(conf->models);
	free(conf->include);
	free(conf->exclude);
	free(conf->log_format);
	free(conf->hf_endpoint);
	free(conf->hf_token_path);
	free(conf->socket_group);
	free(conf->allow_uids);
	free(conf->allow);
	free(conf->index);
	free(conf->node);
	memset(conf, 0, sizeof(*conf));
}

int
conf_load_env(struct conf *conf, char *err, size_t errlen)
{
	const char *value, *why = "invalid value";
	size_t i;
	int rc;

	for (i = 0; i < NKEYS; i++) {
		if ((value = getenv(keys[i].env)) == NULL || *value == '\0')
			continue;
		if ((rc = conf_set(conf, keys[i].name, value, &why)) < 0) {
			errorf(err, errlen, "%s: %s", keys[i].env,
			    rc == -EINVAL ? why : strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int
conf_check(const struct conf *conf, char *err, size_t errlen)
{
	/* A waiter on the index must not outlast the stale limit. */
	if (conf->busy_s != 0 && conf->busy_s >= conf->stale_s) {
		errorf(err, errlen,
		    "index_busy_timeout (%u s) must be below stale_after"
		    " (%u s)",
		    conf->busy_s, conf->stale_s);
		return -EINVAL;
	}
	return 0;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Cuts s[0..*len) down to what lies between blanks and an ending '\r'. */
static char *
trim(char *s, size_t *len)
{
	while (*len > 0 && (is_blank(s[*len - 1]) || s[*len - 1] == '\r'))
		(*len)--;
	while (*len > 0 && is_blank(*s)) {
		s++;
		(*len)--;
	}
	s[*len] = '\0';
	return s;
}

/*
 * Finds the value in the text after '=' (NUL-terminated, writable) and ends
 * it with a NUL.  Returns NULL with *why set on a bad value.
 */
static char *
line_value(char *s, const char **why)
{
	char *end;
	size_t len;

	while (is_blank(*s))
		s++;
	if (*s == '"') {
		if ((end = strchr(s + 1, '"')) == NULL) {
			*why = "unterminated quote";
			return NULL;
		}
		*end = '\0';
		for (end++; is_blank(*end) || *end == '\r'; end++)
			;
		if (*end != '\0' && *end != '#') {
			*why = "text after closing quote";
			return NULL;
		}
		return s + 1;
	}
	for (end = s; *end != '\0'; end++)
		if (*end == '#' && (end == s || is_blank(end[-1])))
			break;
	len = (size_t)(end - s);
	return trim(s, &len);
}

/* Applies one line (NUL-terminated, writable); lineno is for messages. */
static int
conf_line(struct conf *conf, char *s, size_t len, unsigned lineno, char *err,
    size_t errlen)
{
	const char *why = "invalid value";
	char *eq, *key, *value;
	size_t klen;
	int rc;

	if (memchr(s, '\0', len) != NULL) {
		errorf(err, errlen, "%u: NUL byte in line", lineno);
		return -EINVAL;
	}
	s = trim(s, &len);
	if (len == 0 || *s == '#')
		return 0;
	if ((eq = strchr(s, '=')) == NULL) {
		errorf(err, errlen, "%u: expected 'key = value'", lineno);
		return -EINVAL;
	}
	*eq = '\0';
	klen = (size_t)(eq - s);
	key = trim(s, &klen);
	if ((value = line_value(eq + 1, &why)) == NULL) {
		errorf(err, errlen, "%u: %.64s: %s", lineno, key, why);
		return -EINVAL;
	}
	if ((rc = conf_set(conf, key, value, &why)) == -ENOENT) {
		errorf(err, errlen, "%u: unknown key '%.64s'", lineno, key);
		return -EINVAL;
	}
	if (rc < 0)
		errorf(err, errlen, "%u: %.64s: %s", lineno, key,
		    rc == -EINVAL ? why : strerror(-rc));
	return rc;
}

/* Reads all of fd into a fresh NUL-terminated buffer of at most max bytes. */
static int
read_bounded(int fd, size_t max, char **out, size_t *outlen)
{
	char *buf;
	size_t len = 0;
	ssize_t n;
	int rc = 0;

	if ((buf = malloc(max + 2)) == NULL)
		return -ENOMEM;
	while (len <= max) {
		n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		rc = -EFBIG;
		goto out;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
out:
	free(buf);
	return rc;
}

int
conf_load_file(struct conf *conf, const char *path, char *err, size_t errlen)
{
	char *buf = NULL, *line, *nl;
	size_t len = 0, linelen;
	unsigned lineno = 0;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		errorf(err, errlen, "cannot open '%s': %s", path,
		    strerror(-rc));
		return rc;
	}
	rc = read_bounded(fd, CONF_FILE_MAX, &buf, &len);
	close(fd);
	if (rc < 0) {
		errorf(err, errlen, "cannot read '%s': %s", path,
		    rc == -EFBIG ? "file is too large" : strerror(-rc));
		goto out;
	}
	for (line = buf; line < buf + len; line = nl + 1) {
		lineno++;
		if ((nl = memchr(line, '\n', (size_t)(buf + len - line))) ==
		    NULL)
			nl = buf + len;
		linelen = (size_t)(nl - line);
		if (linelen > CONF_LINE_MAX) {
			errorf(err, errlen, "%u: line is too long", lineno);
			rc = -EINVAL;
			goto out;
		}
		*nl = '\0';
		if ((rc = conf_line(conf, line, linelen, lineno, err, errlen)) <
		    0)
			goto out;
	}
out:
	free(buf);
	return rc;
}
