/* config.c - see config.h.
 *
 * A small array of key/value pairs searched linearly: a service has a few
 * dozen settings and reads them at start-up. */
#include "config.h"

#include "bss_error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

struct config_item {
    char *key;
    char *value;
};

struct bss_config {
    struct config_item *items;
    size_t n, cap;
};

bss_config *bss_config_new(void) { return calloc(1, sizeof(bss_config)); }

void bss_config_free(bss_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->items[i].key);
        free(cfg->items[i].value);
    }
    free(cfg->items);
    free(cfg);
}

static struct config_item *find(const bss_config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->items[i].key, key) == 0)
            return &cfg->items[i];
    return NULL;
}

/* Sets key (taking `klen` bytes of it) to value. */
static int set_n(bss_config *cfg, const char *key, size_t klen, const char *value)
{
    if (cfg == NULL || key == NULL || klen == 0 || value == NULL)
        return BSS_ERR_INVALID;
    char *k = strndup(key, klen);
    char *v = strdup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return BSS_ERR_NOMEM;
    }
    struct config_item *it = find(cfg, k);
    if (it != NULL) {
        free(k);
        free(it->value);
        it->value = v;
        return BSS_OK;
    }
    if (cfg->n == cfg->cap) {
        size_t ncap = cfg->cap ? cfg->cap * 2 : 32;
        struct config_item *n = realloc(cfg->items, ncap * sizeof *n);
        if (n == NULL) {
            free(k);
            free(v);
            return BSS_ERR_NOMEM;
        }
        cfg->items = n;
        cfg->cap = ncap;
    }
    cfg->items[cfg->n].key = k;
    cfg->items[cfg->n].value = v;
    cfg->n++;
    return BSS_OK;
}

int bss_config_set(bss_config *cfg, const char *key, const char *value)
{
    return set_n(cfg, key, key ? strlen(key) : 0, value);
}

int bss_config_set_default(bss_config *cfg, const char *key, const char *value)
{
    if (cfg != NULL && key != NULL && find(cfg, key) != NULL)
        return BSS_OK;
    return bss_config_set(cfg, key, value);
}

const char *bss_config_get(const bss_config *cfg, const char *key, const char *fallback)
{
    if (cfg == NULL || key == NULL)
        return fallback;
    const struct config_item *it = find(cfg, key);
    return it ? it->value : fallback;
}

int bss_config_get_int(const bss_config *cfg, const char *key, long long fallback,
                       long long *out, char *err)
{
    const char *v = bss_config_get(cfg, key, NULL);
    if (v == NULL) {
        *out = fallback;
        return BSS_OK;
    }
    const char *digits = (v[0] == '+' || v[0] == '-') ? v + 1 : v;
    if (!isdigit((unsigned char)digits[0])) {
        bss_seterr(err, "%s: \"%s\" is not an integer", key, v);
        return BSS_ERR_INVALID;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        bss_seterr(err, "%s: \"%s\" is not an integer in range", key, v);
        return BSS_ERR_INVALID;
    }
    *out = n;
    return BSS_OK;
}

int bss_config_get_bool(const bss_config *cfg, const char *key, int fallback,
                        int *out, char *err)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    const char *v = bss_config_get(cfg, key, NULL);
    if (v == NULL) {
        *out = fallback;
        return BSS_OK;
    }
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return BSS_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return BSS_OK;
        }
    }
    bss_seterr(err, "%s: \"%s\" is not a boolean", key, v);
    return BSS_ERR_INVALID;
}

/* Turns flag name `name` (namelen bytes, after "--") into a key in out. */
static int flag_key(const char *name, size_t namelen, char *out, size_t outlen)
{
    if (namelen == 0 || !isalnum((unsigned char)name[0]))
        return BSS_ERR_INVALID;
    size_t pre = 0;
    int has_prefix = namelen > 4 && strncasecmp(name, "bss", 3) == 0 &&
                     (name[3] == '-' || name[3] == '_');
    if (!has_prefix) {
        if (outlen < 5)
            return BSS_ERR_INVALID;
        memcpy(out, "BSS_", 4);
        pre = 4;
    }
    if (pre + namelen + 1 > outlen)
        return BSS_ERR_INVALID;
    for (size_t i = 0; i < namelen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '-' || c == '_')
            out[pre + i] = '_';
        else if (isalnum(c))
            out[pre + i] = (char)toupper(c);
        else
            return BSS_ERR_INVALID;
    }
    out[pre + namelen] = '\0';
    return BSS_OK;
}

bss_config *bss_config_load(int argc, char **argv, char *err)
{
    bss_config *cfg = bss_config_new();
    if (cfg == NULL) {
        bss_seterr(err, "out of memory");
        return NULL;
    }
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL || strncmp(*e, "BSS_", 4) != 0)
            continue;
        if (set_n(cfg, *e, (size_t)(eq - *e), eq + 1) == BSS_ERR_NOMEM) {
            bss_seterr(err, "out of memory");
            bss_config_free(cfg);
            return NULL;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (strncmp(arg, "--", 2) != 0) {
            bss_seterr(err, "unexpected argument \"%s\" (flags are --name=value)", arg);
            bss_config_free(cfg);
            return NULL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            value = argv[++i];
        } else {
            bss_seterr(err, "flag %s needs a value", arg);
            bss_config_free(cfg);
            return NULL;
        }
        char key[256];
        if (flag_key(name, namelen, key, sizeof key) != BSS_OK) {
            bss_seterr(err, "malformed flag \"%s\"", arg);
            bss_config_free(cfg);
            return NULL;
        }
        if (bss_config_set(cfg, key, value) != BSS_OK) {
            bss_seterr(err, "out of memory");
            bss_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}
