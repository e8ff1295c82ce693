/* json: JSON text for scripts (--probe --json), written as it goes. Strings
 * are escaped per RFC 8259 and bytes that are not valid UTF-8 become
 * U+FFFD, so that text a peer chose (a certificate's subject) can never
 * break the document or smuggle in members. */
#ifndef DOTSTUB_JSON_H
#define DOTSTUB_JSON_H

#include <stdint.h>
#include <stdio.h>

#define JSON_DEPTH_MAX 16

typedef struct {
	FILE *out;
	unsigned depth;
	unsigned char has_items[JSON_DEPTH_MAX];  /* a comma before the next */
} json_t;

void json_init(json_t *j, FILE *out);

/* Each value goes into the innermost open object under `key`, or into an
 * array (or at the top) with key NULL. */
void json_object(json_t *j, const char *key);   /* open { */
void json_array(json_t *j, const char *key);    /* open [ */
void json_end(json_t *j, char close);           /* '}' or ']'; a newline
						 * after the outermost */
void json_str(json_t *j, const char *key, const char *s);  /* NULL: null */
void json_int(json_t *j, const char *key, int64_t v);
/* ms with three decimals; a negative value (not measured) is null. */
void json_ms(json_t *j, const char *key, double ms);
void json_bool(json_t *j, const char *key, int v);

/* s as a JSON string, quotes included. */
void json_write_string(FILE *out, const char *s);

#endif
