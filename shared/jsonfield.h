/*
 * jsonfield.h - reading typed fields out of a JSON object, or failing with a
 * reason that names the field.
 *
 * Every event handler and route that takes JSON from outside the process
 * reads its fields through these, so a missing, mistyped or oversized field
 * is always reported the same way: BSS_ERR_INVALID with err naming the field
 * ("field 'apnCd' is missing").
 *
 * Nothing here allocates; strings are copied into caller-owned buffers.
 */
#ifndef BSS_JSONFIELD_H
#define BSS_JSONFIELD_H

#include "envelope.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Largest integer accepted by bss_jfield_int64: 2^53, the last integer a
 * JSON number (an IEEE double in cJSON) holds exactly. */
#define BSS_JFIELD_INT_MAX 9007199254740992LL

/* Copies the required string member `name` of obj into out (outlen bytes,
 * NUL included). Returns BSS_OK, or BSS_ERR_INVALID with err filled when obj
 * is not an object, the member is missing, not a string, empty, or does not
 * fit (out is then ""). */
int bss_jfield_string(const cJSON *obj, const char *name, char *out, size_t outlen, char *err);

/* Like bss_jfield_string, but a missing member or JSON null gives BSS_OK
 * with out = "". An empty string is accepted. */
int bss_jfield_string_opt(const cJSON *obj, const char *name, char *out, size_t outlen,
                          char *err);

/* Reads the required member `name` as an integer: a JSON number without a
 * fractional part within [-BSS_JFIELD_INT_MAX, BSS_JFIELD_INT_MAX].
 * Returns BSS_OK or BSS_ERR_INVALID (err filled, *out unchanged). */
int bss_jfield_int64(const cJSON *obj, const char *name, int64_t *out, char *err);

/* Reads the required member `name` as an ISO-8601 date-time with offset
 * (see bss_time_parse): *ms gets the instant, and text (textlen bytes, may
 * be NULL) the original string. Returns BSS_OK or BSS_ERR_INVALID. */
int bss_jfield_time(const cJSON *obj, const char *name, int64_t *ms, char *text, size_t textlen,
                    char *err);

/* The required member `name` as an object, or NULL with err filled. */
const cJSON *bss_jfield_object(const cJSON *obj, const char *name, char *err);

/* Parses ev->data, which must be a JSON object: the object (free with
 * cJSON_Delete), or NULL with err filled ("<type> <id>: data is not a JSON
 * object"). */
cJSON *bss_jfield_event_data(const bss_event *ev, char *err);

#endif
