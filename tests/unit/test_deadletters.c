/*
 * test_deadletters.c - re-driving a dead letter applies it exactly once,
 * leaves nothing behind when the handler still rejects it, and says so for
 * one that does not exist or does not decode. Real store file.
 */
#include "bss_error.h"
#include "check.h"
#include "deadletters.h"
#include "envelope.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A domain that counts what it applied in its own table, and rejects events
 * of type "Bad" until `fixed` is set (the operator's fix). */
struct domain {
    int fixed;
};

static int counting_handler(void *ctx, bss_store *store, const bss_event *ev, char *err)
{
    const struct domain *d = ctx;
    if (strcmp(ev->type, "Bad") == 0 && !d->fixed) {
        bss_seterr(err, "Bad is not understood yet");
        return BSS_ERR_INVALID;
    }
    return sqlite3_exec(bss_store_db(store), "INSERT INTO applied VALUES (1)", NULL, NULL,
                        NULL) == SQLITE_OK
               ? BSS_OK
               : BSS_ERR_IO;
}

static int schema(sqlite3 *db, char *err)
{
    (void)err;
    return sqlite3_exec(db, "CREATE TABLE applied(x)", NULL, NULL, NULL) == SQLITE_OK ? BSS_OK
                                                                                      : BSS_ERR_IO;
}

static void dead_letter(check_counts *c, bss_store *store, const char *payload)
{
    char err[BSS_ERRLEN];
    CHECK(c, bss_store_begin(store, err) == BSS_OK);
    CHECK(c, bss_store_dead_letter(store, "producer", 0, 7, payload, strlen(payload), "test",
                                   err) == BSS_OK);
    CHECK(c, bss_store_commit(store, err) == BSS_OK);
}

int main(void)
{
    check_counts c = {0, 0};
    char dir[] = "/tmp/bss-deadletters-XXXXXX";
    if (tu_begin(dir) != 0)
        return 1;
    char path[512], err[BSS_ERRLEN];
    snprintf(path, sizeof path, "%s/consumer.db", dir);
    bss_store *store = NULL;
    CHECK(&c, tu_open_store(path, "consumer", &store) == BSS_OK);
    CHECK(&c, tu_apply_schema(store, schema) == BSS_OK);

    bss_event *bad = tu_event(&c, "producer", "Bad", "s1", "{\"x\":1}");
    size_t len = 0;
    char *payload = bad ? bss_event_encode(bad, &len) : NULL;
    CHECK(&c, payload != NULL);
    dead_letter(&c, store, payload ? payload : "{}"); /* id 1 */
    dead_letter(&c, store, "not json");                /* id 2 */

    struct domain d = {0};
    int64_t when = 0;
    /* still rejected: nothing applied, nothing recorded */
    CHECK(&c, bss_deadletters_redrive(store, counting_handler, &d, 1, &when, err) ==
                  BSS_ERR_INVALID);
    CHECK(&c, tu_count_rows(store, "SELECT count(*) FROM applied") == 0);
    /* the fix is deployed: applied once */
    d.fixed = 1;
    CHECK(&c, bss_deadletters_redrive(store, counting_handler, &d, 1, &when, err) == BSS_OK);
    CHECK(&c, when > 0);
    CHECK(&c, bss_deadletters_redrive(store, counting_handler, &d, 1, &when, err) ==
                  BSS_ERR_CONFLICT);
    CHECK(&c, tu_count_rows(store, "SELECT count(*) FROM applied") == 1);
    CHECK(&c, tu_count_rows(store, "SELECT count(*) FROM dead_letter_redrives") == 1);
    /* undecodable stays rejected; unknown id */
    CHECK(&c, bss_deadletters_redrive(store, counting_handler, &d, 2, &when, err) ==
                  BSS_ERR_INVALID);
    CHECK(&c, bss_deadletters_redrive(store, counting_handler, &d, 99, &when, err) ==
                  BSS_ERR_NOTFOUND);
    CHECK(&c, tu_count_rows(store, "SELECT count(*) FROM applied") == 1);

    free(payload);
    bss_event_free(bad);
    bss_store_close(store);
    tu_end(dir);
    return CHECK_DONE(&c);
}
