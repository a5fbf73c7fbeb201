/* bus.c - picks the backend and forwards to it; see bus.h. */
#include "bus.h"

#include "bss_error.h"

#include <stdlib.h>
#include <string.h>

struct bss_bus {
    const bss_bus_ops *ops;
    void *state;
    int64_t published; /* last sequence published, for backends without confirm */
};

int bss_bus_open(const bss_bus_options *options, bss_bus **out, char *err)
{
    const char *name = bss_config_get(options->config, "BSS_BUS", "nng");
    const bss_bus_ops *ops = NULL;
    if (strcmp(name, bss_bus_nng_ops.name) == 0)
        ops = &bss_bus_nng_ops;
    else if (strcmp(name, bss_bus_kafka_ops.name) == 0)
        ops = &bss_bus_kafka_ops;
    if (ops == NULL) {
        bss_seterr(err, "unknown bus backend '%s' (BSS_BUS); known: nng, kafka", name);
        return BSS_ERR_INVALID;
    }
    bss_bus *bus = calloc(1, sizeof *bus);
    if (bus == NULL) {
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    bus->ops = ops;
    int rc = ops->open(options, &bus->state, err);
    if (rc != BSS_OK) {
        free(bus);
        return rc;
    }
    *out = bus;
    return BSS_OK;
}

const char *bss_bus_backend(const bss_bus *bus) { return bus->ops->name; }

int bss_bus_publish(bss_bus *bus, int64_t sequence, const char *subject, const char *payload,
                    size_t len, char *err)
{
    int rc = bus->ops->publish(bus->state, sequence, subject, payload, len, err);
    if (rc == BSS_OK)
        bus->published = sequence;
    return rc;
}

int bss_bus_confirm(bss_bus *bus, int timeout_ms, int64_t *confirmed, char *err)
{
    if (bus->ops->confirm == NULL) {
        if (bus->published > *confirmed)
            *confirmed = bus->published;
        return BSS_OK;
    }
    return bus->ops->confirm(bus->state, timeout_ms, confirmed, err);
}

int bss_bus_announce_head(bss_bus *bus, int64_t head)
{
    return bus->ops->announce_head(bus->state, head);
}

int bss_bus_subscribe(bss_bus *bus, const char *stream, char *err)
{
    return bus->ops->subscribe(bus->state, stream, err);
}

int bss_bus_poll(bss_bus *bus, int timeout_ms, bss_bus_position_fn position,
                 bss_bus_apply_fn apply, void *ctx, char *err)
{
    return bus->ops->poll(bus->state, timeout_ms, position, apply, ctx, err);
}

int bss_bus_caught_up(const bss_bus *bus) { return bus->ops->caught_up(bus->state); }

int64_t bss_bus_lag(const bss_bus *bus) { return bus->ops->lag(bus->state); }

void bss_bus_close(bss_bus *bus)
{
    if (bus == NULL)
        return;
    bus->ops->close(bus->state);
    free(bus);
}
