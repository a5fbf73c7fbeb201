/*
 * admin.c - bssiot-admin: the operator's commands that are not REST calls.
 *
 *   bssiot-admin token create --role operator|mediation|customer
 *                             [--customer ID] [--label TEXT] [--json]
 *   bssiot-admin token list [--json]
 *   bssiot-admin token revoke TOKEN_ID
 *
 * Works on the gateway's token store (BSS_GATEWAY_DB, default
 * <BSS_DATA_DIR>/gateway.db with BSS_DATA_DIR defaulting to ./data), the
 * same file a running gateway reads: a new token works at once, a revoked
 * one stops working within the gateway's cache time
 * (BSS_GATEWAY_TOKEN_CACHE_MS, 1 s). `create` prints the token once; only
 * its hash is stored, so it cannot be shown again. --data-dir and
 * --gateway-db may be given as flags too.
 *
 * Exit status: 0 done, 1 failure, 2 usage error.
 */
#include "bss_error.h"
#include "isotime.h"
#include "tokens.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct options {
    const char *role, *customer, *label, *data_dir, *db;
    int json;
    const char *positional[3];
    int npositional;
};

static int usage(void)
{
    fputs("usage: bssiot-admin token create --role operator|mediation|customer"
          " [--customer ID] [--label TEXT] [--json]\n"
          "       bssiot-admin token list [--json]\n"
          "       bssiot-admin token revoke TOKEN_ID\n"
          "options: --data-dir DIR, --gateway-db FILE (or BSS_DATA_DIR, BSS_GATEWAY_DB)\n",
          stderr);
    return 2;
}

static int parse(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    o->data_dir = getenv("BSS_DATA_DIR");
    o->db = getenv("BSS_GATEWAY_DB");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--role") == 0)
            slot = &o->role;
        else if (strcmp(a, "--customer") == 0)
            slot = &o->customer;
        else if (strcmp(a, "--label") == 0)
            slot = &o->label;
        else if (strcmp(a, "--data-dir") == 0)
            slot = &o->data_dir;
        else if (strcmp(a, "--gateway-db") == 0)
            slot = &o->db;
        if (slot != NULL) {
            if (i + 1 >= argc)
                return BSS_ERR_INVALID;
            *slot = argv[++i];
        } else if (a[0] == '-' || o->npositional == 3) {
            return BSS_ERR_INVALID;
        } else {
            o->positional[o->npositional++] = a;
        }
    }
    return BSS_OK;
}

/* A time for the listing: ISO-8601 with the offset of BSS_TZ, or "-". */
static void iso_time(int64_t ms, char *out, size_t len)
{
    if (ms == 0 || bss_time_format(ms, out, len) != BSS_OK)
        snprintf(out, len, "-");
}

static cJSON *info_json(const gw_token_info *info)
{
    char created[BSS_TIME_LEN + 1], revoked[BSS_TIME_LEN + 1];
    iso_time(info->created_ms, created, sizeof created);
    iso_time(info->revoked_ms, revoked, sizeof revoked);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tokenId", info->token_id);
    cJSON_AddStringToObject(o, "role", gw_role_name(info->role));
    if (info->customer_id[0] != '\0')
        cJSON_AddStringToObject(o, "customerId", info->customer_id);
    cJSON_AddStringToObject(o, "label", info->label);
    cJSON_AddStringToObject(o, "createdAt", created);
    if (info->revoked_ms != 0)
        cJSON_AddStringToObject(o, "revokedAt", revoked);
    return o;
}

static int print_json(cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        return 1;
    puts(text);
    free(text);
    return 0;
}

static int create_token(gw_tokens *t, const struct options *o)
{
    gw_role role;
    if (o->role == NULL || gw_role_parse(o->role, &role) != BSS_OK) {
        fputs("bssiot-admin: --role must be operator, mediation or customer\n", stderr);
        return 2;
    }
    char token[GW_TOKEN_LEN + 1], err[BSS_ERRLEN];
    gw_token_info info;
    if (gw_tokens_create(t, role, o->customer, o->label, token, &info, err) != BSS_OK) {
        fprintf(stderr, "bssiot-admin: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (o->json) {
        cJSON *out = info_json(&info);
        cJSON_AddStringToObject(out, "token", token);
        rc = print_json(out);
    } else {
        printf("%s\n", token);
        fprintf(stderr, "token %s (%s%s%s) created; it is shown only this once\n", info.token_id,
                gw_role_name(role), info.customer_id[0] ? " of customer " : "", info.customer_id);
    }
    memset(token, 0, sizeof token);
    return rc;
}

static int list_tokens(gw_tokens *t, const struct options *o)
{
    gw_token_info *rows = NULL;
    size_t n = 0;
    char err[BSS_ERRLEN];
    if (gw_tokens_list(t, &rows, &n, err) != BSS_OK) {
        fprintf(stderr, "bssiot-admin: %s\n", err);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (o->json) {
            rc = print_json(info_json(&rows[i]));
            continue;
        }
        char created[BSS_TIME_LEN + 1], revoked[BSS_TIME_LEN + 1];
        iso_time(rows[i].created_ms, created, sizeof created);
        iso_time(rows[i].revoked_ms, revoked, sizeof revoked);
        printf("%s  %-9s  %-16s  created %s  revoked %s  %s\n", rows[i].token_id,
               gw_role_name(rows[i].role), rows[i].customer_id[0] ? rows[i].customer_id : "-",
               created, revoked, rows[i].label);
    }
    free(rows);
    return rc;
}

static int revoke_token(gw_tokens *t, const char *id)
{
    char err[BSS_ERRLEN];
    int rc = gw_tokens_revoke(t, id, err);
    if (rc != BSS_OK) {
        fprintf(stderr, "bssiot-admin: %s\n", err);
        return 1;
    }
    fprintf(stderr, "token %s revoked\n", id);
    return 0;
}

int main(int argc, char **argv)
{
    const char *zone = getenv("BSS_TZ");
    if (bss_time_set_zone(zone != NULL && zone[0] != '\0' ? zone : "Asia/Seoul") != BSS_OK) {
        fputs("bssiot-admin: BSS_TZ is not a time zone\n", stderr);
        return 1;
    }
    struct options o;
    if (parse(argc, argv, &o) != BSS_OK || o.npositional < 2 ||
        strcmp(o.positional[0], "token") != 0)
        return usage();
    const char *cmd = o.positional[1];
    int is_create = strcmp(cmd, "create") == 0, is_list = strcmp(cmd, "list") == 0,
        is_revoke = strcmp(cmd, "revoke") == 0;
    if ((!is_create && !is_list && !is_revoke) || (is_revoke != (o.npositional == 3)))
        return usage();

    char path[PATH_MAX];
    if (o.db != NULL && o.db[0] != '\0') {
        snprintf(path, sizeof path, "%s", o.db);
    } else {
        const char *dir = o.data_dir && o.data_dir[0] ? o.data_dir : "./data";
        if (mkdir(dir, 0700) != 0 && access(dir, W_OK) != 0) {
            fprintf(stderr, "bssiot-admin: cannot use data dir %s\n", dir);
            return 1;
        }
        if (snprintf(path, sizeof path, "%s/gateway.db", dir) >= (int)sizeof path) {
            fputs("bssiot-admin: data dir path too long\n", stderr);
            return 1;
        }
    }
    gw_tokens *t = NULL;
    char err[BSS_ERRLEN];
    if (gw_tokens_open(path, 0, &t, err) != BSS_OK) {
        fprintf(stderr, "bssiot-admin: %s\n", err);
        return 1;
    }
    int rc = is_create ? create_token(t, &o) : is_list ? list_tokens(t, &o) : revoke_token(t, o.positional[2]);
    gw_tokens_close(t);
    return rc;
}
