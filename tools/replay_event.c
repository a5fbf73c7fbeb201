/*
 * replay_event.c - see replay_event.h.
 *
 * The JSON check is a validator of its own rather than cJSON: a rebuild
 * checks every one of a million rows, and validating without building a tree
 * costs a fraction of parsing one. It follows RFC 8259's grammar exactly
 * (no comments, no trailing commas, no leading zeros, no raw control bytes in
 * strings) and keeps its nesting on a fixed stack.
 */
#include "replay_event.h"

#include "bss_error.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64
/* 9999-12-31T23:59:59.999Z: the last instant an ISO-8601 year of four
 * digits can show. */
#define TIME_MS_MAX 253402300799999LL

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* p at the opening quote; returns the byte after the closing quote or NULL. */
static const char *scan_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                break;
            case 'u':
                if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) || !is_hex(p[3]) ||
                    !is_hex(p[4]))
                    return NULL;
                p += 4;
                break;
            default:
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *scan_digits(const char *p, const char *end)
{
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p == start ? NULL : p;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static const char *scan_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0')
        p++;
    else if ((p = scan_digits(p, end)) == NULL)
        return NULL;
    if (p < end && *p == '.' && (p = scan_digits(p + 1, end)) == NULL)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if ((p = scan_digits(p, end)) == NULL)
            return NULL;
    }
    return p;
}

static const char *scan_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0)
        return NULL;
    return p + n;
}

int replay_json_object_valid(const char *text, size_t len, size_t *error_at)
{
    const char *p = text, *end = text + len;
    char stack[JSON_MAX_DEPTH]; /* '{' or '[' per open container */
    int depth = 0;
    int after_value = 0; /* the loop is at a value's start (0) or just after one */
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        goto bad;
    while (1) {
        p = skip_ws(p, end);
        if (p >= end)
            goto bad;
        if (!after_value) {
            const char *next = NULL;
            switch (*p) {
            case '{':
            case '[':
                if (depth == JSON_MAX_DEPTH)
                    goto bad;
                stack[depth++] = *p;
                p = skip_ws(p + 1, end);
                if (p < end && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
                    depth--;
                    p++;
                    after_value = 1;
                    if (depth == 0)
                        goto done;
                    continue;
                }
                if (stack[depth - 1] == '{') {
                    /* A member: "key" : then its value. */
                    if (p >= end || *p != '"' || (p = scan_string(p, end)) == NULL)
                        goto bad;
                    p = skip_ws(p, end);
                    if (p >= end || *p != ':')
                        goto bad;
                    p++;
                }
                continue;
            case '"':
                next = scan_string(p, end);
                break;
            case 't':
                next = scan_literal(p, end, "true");
                break;
            case 'f':
                next = scan_literal(p, end, "false");
                break;
            case 'n':
                next = scan_literal(p, end, "null");
                break;
            default:
                next = scan_number(p, end);
                break;
            }
            if (next == NULL)
                goto bad;
            p = next;
            after_value = 1;
            continue;
        }
        /* After a value: a comma (then the next element or member) or the
         * container's closing bracket. */
        char open = stack[depth - 1];
        if (*p == ',') {
            p = skip_ws(p + 1, end);
            if (open == '{') {
                if (p >= end || *p != '"' || (p = scan_string(p, end)) == NULL)
                    goto bad;
                p = skip_ws(p, end);
                if (p >= end || *p != ':')
                    goto bad;
                p++;
            }
            after_value = 0;
            continue;
        }
        if (*p != (open == '{' ? '}' : ']'))
            goto bad;
        p++;
        if (--depth == 0)
            goto done;
    }
done:
    p = skip_ws(p, end);
    if (p != end)
        goto bad;
    return 1;
bad:
    if (error_at != NULL)
        *error_at = (size_t)((p != NULL ? p : end) - text);
    return 0;
}

/* Copies a text column into dst (cap bytes with the NUL): it must be
 * present, non-empty unless allowed, fit, and hold no control bytes (they
 * would break the tool's one-line output and have no place in ids). */
static int copy_text(const replay_text *col, const char *name, int may_be_empty, char *dst,
                     size_t cap, char *err)
{
    if (col->text == NULL) {
        bss_seterr(err, "%s is NULL", name);
        return BSS_ERR_INVALID;
    }
    if (col->len == 0 && !may_be_empty) {
        bss_seterr(err, "%s is empty", name);
        return BSS_ERR_INVALID;
    }
    if (col->len >= cap) {
        bss_seterr(err, "%s is %zu bytes, more than %zu", name, col->len, cap - 1);
        return BSS_ERR_INVALID;
    }
    for (size_t i = 0; i < col->len; i++) {
        if ((unsigned char)col->text[i] < 0x20 || col->text[i] == 0x7f) {
            bss_seterr(err, "%s has a control byte at offset %zu", name, i);
            return BSS_ERR_INVALID;
        }
    }
    memcpy(dst, col->text, col->len);
    dst[col->len] = '\0';
    return BSS_OK;
}

/* The first bytes of text, printable, with "..." when cut (out: 32 bytes). */
static void preview(const char *text, size_t len, char *out, size_t outlen)
{
    size_t room = outlen - 4, n = 0;
    for (; n < len && n < room; n++) {
        unsigned char c = (unsigned char)text[n];
        out[n] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    strcpy(out + n, n < len ? "..." : "");
}

int replay_event_from_row(const replay_row *row, const char *source, bss_event *ev,
                          char *data_buf, size_t data_cap, char *err)
{
    memset(ev, 0, sizeof *ev);
    if (source == NULL || strlen(source) > BSS_EVENT_SOURCE_MAX) {
        bss_seterr(err, "bad source name");
        return BSS_ERR_INVALID;
    }
    strcpy(ev->source, source);
    if (row->sequence < 1) {
        bss_seterr(err, "sequence %lld is not positive", (long long)row->sequence);
        return BSS_ERR_INVALID;
    }
    if (row->defects & REPLAY_ROW_BAD_VERSION) {
        bss_seterr(err, "version is not an integer");
        return BSS_ERR_INVALID;
    }
    if (row->defects & REPLAY_ROW_BAD_TIME) {
        bss_seterr(err, "time_ms is not an integer");
        return BSS_ERR_INVALID;
    }
    if (row->version < 1) {
        bss_seterr(err, "version %lld is not positive", (long long)row->version);
        return BSS_ERR_INVALID;
    }
    if (row->time_ms < 0 || row->time_ms > TIME_MS_MAX) {
        bss_seterr(err, "time_ms %lld is out of range", (long long)row->time_ms);
        return BSS_ERR_INVALID;
    }
    int rc = copy_text(&row->id, "id", 0, ev->id, sizeof ev->id, err);
    if (rc == BSS_OK)
        rc = copy_text(&row->type, "type", 0, ev->type, sizeof ev->type, err);
    if (rc == BSS_OK)
        rc = copy_text(&row->subject, "subject", 0, ev->subject, sizeof ev->subject, err);
    if (rc == BSS_OK)
        rc = copy_text(&row->correlation_id, "correlation_id", 1, ev->correlation_id,
                       sizeof ev->correlation_id, err);
    if (rc == BSS_OK)
        rc = copy_text(&row->causation_id, "causation_id", 1, ev->causation_id,
                       sizeof ev->causation_id, err);
    if (rc != BSS_OK)
        return rc;
    if (row->data.text == NULL) {
        bss_seterr(err, "data is NULL");
        return BSS_ERR_INVALID;
    }
    if (row->data.len > BSS_EVENT_MAX_BYTES || row->data.len >= data_cap) {
        bss_seterr(err, "data is %zu bytes, more than an event may hold", row->data.len);
        return BSS_ERR_INVALID;
    }
    size_t at = 0;
    if (!replay_json_object_valid(row->data.text, row->data.len, &at)) {
        char shown[32];
        preview(row->data.text, row->data.len, shown, sizeof shown);
        bss_seterr(err, "data is not a JSON object (byte %zu): \"%s\"", at, shown);
        return BSS_ERR_INVALID;
    }
    memcpy(data_buf, row->data.text, row->data.len);
    data_buf[row->data.len] = '\0';
    ev->data = data_buf;
    ev->sequence = row->sequence;
    ev->version = row->version;
    ev->time_ms = row->time_ms;
    return BSS_OK;
}

static int tree_mentions(const cJSON *node, const char *value)
{
    for (; node != NULL; node = node->next) {
        if (cJSON_IsString(node) && node->valuestring != NULL &&
            strcmp(node->valuestring, value) == 0)
            return 1;
        if ((cJSON_IsObject(node) || cJSON_IsArray(node)) && tree_mentions(node->child, value))
            return 1;
    }
    return 0;
}

int replay_event_mentions(const bss_event *ev, const char *value)
{
    if (strcmp(ev->subject, value) == 0)
        return 1;
    if (ev->data == NULL)
        return 0;
    cJSON *root = cJSON_Parse(ev->data);
    if (root == NULL)
        return 0;
    int found = tree_mentions(root->child, value);
    cJSON_Delete(root);
    return found;
}

char *replay_json_quote(const char *value)
{
    cJSON *s = cJSON_CreateString(value);
    if (s == NULL)
        return NULL;
    char *out = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return out;
}
