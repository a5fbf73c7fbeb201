/*
 * config.h - a service's configuration: BSS_* environment variables,
 * overridden by command-line flags.
 *
 * bss_config_load() copies every environment variable whose name starts with
 * "BSS_", then applies the command-line flags on top. A flag names a key by
 * the rule: strip the leading "--", uppercase, '-' becomes '_', and prefix
 * "BSS_" unless the result already starts with it. So "--data-dir=/x",
 * "--data-dir /x" and "--bss-data-dir=/x" all set BSS_DATA_DIR to "/x".
 * Unknown keys are kept like any other; the service decides what it reads.
 *
 * A bss_config is a plain map owned by the caller. It is not locked: fill it
 * (load, set) before starting threads; afterwards any number of threads may
 * read it concurrently. Values are copied in; pointers returned by the
 * getters stay valid until that key is set again or the config is freed.
 */
#ifndef BSS_CONFIG_H
#define BSS_CONFIG_H

typedef struct bss_config bss_config;

/* Builds a config from the environment and argv (argv[0] is the program and
 * is skipped; argv may be NULL when argc is 0). Flags must be "--name=value"
 * or "--name value" where name is [A-Za-z0-9][A-Za-z0-9_-]*; a value may be
 * empty only in the "=" form. A lone "--" ends flag parsing and the rest of
 * argv is ignored. Returns the config, or NULL with a reason in err
 * (BSS_ERRLEN bytes, may be NULL) for a positional argument, a bad flag name,
 * a flag without a value, or when memory runs out. */
bss_config *bss_config_load(int argc, char **argv, char *err);

/* An empty config (for tests and tools). NULL when memory runs out. */
bss_config *bss_config_new(void);

/* The value of `key`, or `fallback` when the key is not set. A key set to
 * the empty string is set (returns ""). A NULL config returns fallback. */
const char *bss_config_get(const bss_config *cfg, const char *key,
                           const char *fallback);

/* Reads `key` as a decimal integer (optional sign, no other characters, must
 * fit in long long) into *out. When the key is not set, *out = fallback and
 * the result is BSS_OK. When it is set but not an integer, returns
 * BSS_ERR_INVALID with a reason naming the key in err (may be NULL) and
 * leaves *out unchanged. */
int bss_config_get_int(const bss_config *cfg, const char *key, long long fallback,
                       long long *out, char *err);

/* Reads `key` as a boolean: 1/true/yes/on or 0/false/no/off (any case) into
 * *out; fallback when unset. BSS_ERR_INVALID (err filled) otherwise. */
int bss_config_get_bool(const bss_config *cfg, const char *key, int fallback,
                        int *out, char *err);

/* Sets key to a copy of value, replacing any earlier value (which frees the
 * old string: pointers to it from bss_config_get become invalid). Returns
 * BSS_OK, BSS_ERR_INVALID for a NULL/empty key or NULL value, or
 * BSS_ERR_NOMEM. */
int bss_config_set(bss_config *cfg, const char *key, const char *value);

/* Sets key only when it is not set yet (launchers' defaults). Same returns
 * as bss_config_set; an existing key gives BSS_OK and is left alone. */
int bss_config_set_default(bss_config *cfg, const char *key, const char *value);

/* Frees the config and every string in it. NULL is a no-op. */
void bss_config_free(bss_config *cfg);

#endif
