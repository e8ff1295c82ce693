#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "dotstub/json.h"

void json_init(json_t *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* The comma and the key before a value. */
static void begin_value(json_t *j, const char *key)
{
	if (j->has_items[j->depth])
		fputc(',', j->out);
	j->has_items[j->depth] = 1;
	if (key) {
		json_write_string(j->out, key);
		fputc(':', j->out);
	}
}

static void open_container(json_t *j, const char *key, char open)
{
	begin_value(j, key);
	fputc(open, j->out);
	/* Deeper than anything we write: keep the text balanced anyway. */
	if (j->depth + 1 < JSON_DEPTH_MAX)
		j->depth++;
	j->has_items[j->depth] = 0;
}

void json_object(json_t *j, const char *key)
{
	open_container(j, key, '{');
}

void json_array(json_t *j, const char *key)
{
	open_container(j, key, '[');
}

void json_end(json_t *j, char close)
{
	fputc(close, j->out);
	if (j->depth > 0)
		j->depth--;
	if (j->depth == 0)
		fputc('\n', j->out);
}

void json_str(json_t *j, const char *key, const char *s)
{
	begin_value(j, key);
	if (s)
		json_write_string(j->out, s);
	else
		fputs("null", j->out);
}

void json_int(json_t *j, const char *key, int64_t v)
{
	begin_value(j, key);
	fprintf(j->out, "%" PRId64, v);
}

void json_ms(json_t *j, const char *key, double ms)
{
	begin_value(j, key);
	if (ms < 0)
		fputs("null", j->out);
	else
		fprintf(j->out, "%.3f", ms);
}

void json_bool(json_t *j, const char *key, int v)
{
	begin_value(j, key);
	fputs(v ? "true" : "false", j->out);
}

/* Length of the well-formed UTF-8 sequence at s (1 to 4), or 0: overlong
 * forms, surrogates and code points past U+10FFFF are not well-formed
 * (RFC 3629). The terminating NUL fails as a continuation byte. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0], cp, min;
	size_t n;

	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		n = 2; min = 0x80; cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3; min = 0x800; cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4; min = 0x10000; cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

void json_write_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', out);
	while (*s) {
		size_t n = utf8_len(s);

		if (n == 0) {
			fputs("\\ufffd", out);
			s++;
		} else if (*s == '"' || *s == '\\') {
			fputc('\\', out);
			fputc(*s++, out);
		} else if (*s < 0x20 || *s == 0x7f) {
			fprintf(out, "\\u%04x", *s++);
		} else {
			fwrite(s, 1, n, out);
			s += n;
		}
	}
	fputc('"', out);
}
