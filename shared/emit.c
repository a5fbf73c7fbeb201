/* emit.c - see emit.h. */
#include "emit.h"

#include "bss_error.h"

#include <stdlib.h>
#include <string.h>

/* Appends with expected_version; *version (may be NULL) gets the event's. */
static int append(bss_store *store, const bss_emit_origin *origin, const char *type,
                  const char *subject, int64_t expected_version, int64_t *version,
                  const cJSON *data, char *err)
{
    if (data != NULL && !cJSON_IsObject(data)) {
        bss_seterr(err, "%s: data must be a JSON object", type);
        return BSS_ERR_INVALID;
    }
    char *json = data != NULL ? cJSON_PrintUnformatted(data) : strdup("{}");
    if (json == NULL) {
        bss_seterr(err, "%s: out of memory", type);
        return BSS_ERR_NOMEM;
    }
    bss_event *ev = bss_event_adopt(type, subject, json, err);
    if (ev == NULL)
        return BSS_ERR_INVALID;
    if (origin->cause != NULL)
        bss_event_caused_by(ev, origin->cause);
    else if (origin->correlation_id != NULL)
        bss_event_set_correlation(ev, origin->correlation_id);
    int rc = bss_store_append(store, subject, expected_version, &ev, 1, err);
    if (rc == BSS_OK && version != NULL)
        *version = ev->version;
    bss_event_free(ev);
    return rc;
}

int bss_emit(bss_store *store, const bss_event *cause, const char *type, const char *subject,
             const cJSON *data, char *err)
{
    bss_emit_origin origin = {cause, NULL};
    return append(store, &origin, type, subject, BSS_ANY_VERSION, NULL, data, err);
}

int bss_emit_versioned(bss_store *store, const bss_emit_origin *origin, const char *type,
                       const char *subject, int64_t *version, const cJSON *data, char *err)
{
    return append(store, origin, type, subject, *version, version, data, err);
}
