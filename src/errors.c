/*
 * errors: see errors.h.  Every column is read from the one table there.
 */
#include "config.h"

#include <string.h>

#include "errors.h"

static const struct {
	const char *name;
	int err;
	int exit;
	const char *phrase;
} table[] = {
#define ERR_ROW(code, name, err, exit, phrase) { name, err, exit, phrase },
	ERRORS(ERR_ROW)
#undef ERR_ROW
};

/* e, or ERR_INTERNAL when e is outside the enum. */
static enum err_code
known(enum err_code e)
{
	return (unsigned)e < ERR_COUNT ? e : ERR_INTERNAL;
}

const char *
err_name(enum err_code e)
{
	return table[known(e)].name;
}

int
err_errno(enum err_code e)
{
	return -table[known(e)].err;
}

int
err_exit(enum err_code e)
{
	return table[known(e)].exit;
}

const char *
err_phrase(enum err_code e)
{
	return table[known(e)].phrase;
}

enum err_code
err_of_name(const char *name)
{
	unsigned i;

	for (i = 0; name != NULL && i < ERR_COUNT; i++)
		if (strcmp(name, table[i].name) == 0)
			return (enum err_code)i;
	return ERR_INTERNAL;
}

enum err_code
err_of_errno(int rc)
{
	unsigned i;

	switch (-rc) {
	case ENOTDIR:
		return ERR_NOT_FOUND;
	case ENAMETOOLONG:
		return ERR_BAD_REQUEST;
	case EDQUOT:
		return ERR_NO_SPACE;
	}
	for (i = 0; i < ERR_COUNT; i++)
		if (-rc == table[i].err)
			return (enum err_code)i;
	return ERR_INTERNAL;
}
