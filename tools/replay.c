/*
 * replay.c - bssiot-replay, the operator's view into the event logs.
 *
 *   bssiot-replay timeline --line N | --customer C [--json]
 *   bssiot-replay events [--source S] [--type T] [--subject X]
 *                        [--since ISO] [--until ISO] [--json]
 *   bssiot-replay at --line N --time ISO [--json]
 *   bssiot-replay rebuild --projection mypage --out FILE [--match-live]
 *   bssiot-replay verify --projection mypage [--rebuilt FILE]
 *
 * Common: --data-dir DIR (else BSS_DATA_DIR, else ./data); BSS_<SERVICE>_DB
 * overrides one store's path as it does for the services; times print in
 * BSS_TZ (Asia/Seoul). The logs are opened read-only and can be read while
 * the services run. --kafka-brokers HOST:PORT[,..] (or BSS_BUS=kafka with
 * BSS_KAFKA_BROKERS) reads the sources' Kafka topics instead of the stores
 * (replay_kafka.h; BSS_KAFKA_TOPIC_PREFIX and the services' other
 * BSS_KAFKA_* settings apply); the live read model verify compares with is
 * still the mypage store under the data dir.
 *
 * Exit status: 0 done; 1 verify found differences; 2 done, but corrupt
 * events were skipped (each reported on stderr with its db file, source and
 * sequence); 3 failed (a store unreadable, an I/O error); 64 bad usage. When
 * several apply, the first in the order 3, 64, 1, 2 wins.
 */
#include "bss_error.h"
#include "isotime.h"
#include "replay_at.h"
#include "replay_event.h"
#include "replay_format.h"
#include "replay_log.h"
#include "replay_timeline.h"
#ifdef BSS_REPLAY_HAVE_MYPAGE
#include "replay_rebuild.h"
#endif

#include <cjson/cJSON.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_DIFFERENT 1
#define EXIT_SKIPPED 2
#define EXIT_FAILED 3
#define EXIT_USAGE 64

typedef struct options {
    const char *command;
    const char *data_dir;
    const char *line, *customer, *source, *type, *subject, *projection, *out, *rebuilt;
    const char *kafka_brokers;
    replay_source src;
    const char *since_text, *until_text, *time_text;
    int64_t since_ms, until_ms, time_ms;
    int json, match_live;
} options;

static void usage(FILE *f)
{
    fputs("usage: bssiot-replay COMMAND [options]\n"
          "  timeline --line N | --customer C [--json]\n"
          "  events [--source S[,S..]] [--type T] [--subject X] [--since ISO] [--until ISO] [--json]\n"
          "  at --line N --time ISO [--json]\n"
          "  rebuild --projection mypage --out FILE [--match-live]\n"
          "  verify --projection mypage [--rebuilt FILE]\n"
          "common: --data-dir DIR (BSS_DATA_DIR, default ./data); --kafka-brokers H:P[,..]\n"
          "(or BSS_BUS=kafka + BSS_KAFKA_BROKERS) reads the Kafka topics instead; times are\n"
          "ISO-8601 with an offset, printed in BSS_TZ (default Asia/Seoul)\n"
          "exit: 0 ok, 1 verify differences, 2 corrupt events skipped, 3 failed, 64 usage\n",
          f);
}

static int parse_time(const char *flag, const char *text, int64_t *ms)
{
    if (bss_time_parse(text, strlen(text), ms) != BSS_OK) {
        fprintf(stderr, "bssiot-replay: %s '%s' is not an ISO-8601 time with offset"
                        " (e.g. 2026-10-15T09:00:00+09:00)\n", flag, text);
        return EXIT_USAGE;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->since_ms = INT64_MIN;
    o->until_ms = INT64_MAX;
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    o->command = argv[1];
    if (strcmp(o->command, "help") == 0 || strcmp(o->command, "--help") == 0) {
        usage(stdout);
        exit(0);
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(arg, "--match-live") == 0) {
            o->match_live = 1;
            continue;
        }
        /* "--name value" or "--name=value" */
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        static const struct {
            const char *name;
            size_t offset;
        } FLAGS[] = {
            {"--data-dir", offsetof(options, data_dir)},
            {"--line", offsetof(options, line)},
            {"--customer", offsetof(options, customer)},
            {"--source", offsetof(options, source)},
            {"--type", offsetof(options, type)},
            {"--subject", offsetof(options, subject)},
            {"--projection", offsetof(options, projection)},
            {"--out", offsetof(options, out)},
            {"--rebuilt", offsetof(options, rebuilt)},
            {"--since", offsetof(options, since_text)},
            {"--until", offsetof(options, until_text)},
            {"--time", offsetof(options, time_text)},
            {"--kafka-brokers", offsetof(options, kafka_brokers)},
        };
        int known = 0;
        for (size_t f = 0; f < sizeof FLAGS / sizeof FLAGS[0]; f++) {
            if (strlen(FLAGS[f].name) == name_len && strncmp(arg, FLAGS[f].name, name_len) == 0) {
                known = 1;
                if (value == NULL || value[0] == '\0') {
                    fprintf(stderr, "bssiot-replay: %.*s needs a value\n", (int)name_len, arg);
                    return EXIT_USAGE;
                }
                *(const char **)((char *)o + FLAGS[f].offset) = value;
            }
        }
        if (!known) {
            fprintf(stderr, "bssiot-replay: unknown option '%.*s'\n", (int)name_len, arg);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (o->data_dir == NULL)
        o->data_dir = getenv("BSS_DATA_DIR");
    if (o->data_dir == NULL || o->data_dir[0] == '\0')
        o->data_dir = "./data";
    if (o->kafka_brokers == NULL) {
        /* The services' own switch: a system on Kafka is replayed from it. */
        const char *bus = getenv("BSS_BUS");
        const char *brokers = getenv("BSS_KAFKA_BROKERS");
        if (bus != NULL && strcmp(bus, "kafka") == 0) {
            if (brokers == NULL || brokers[0] == '\0') {
                fprintf(stderr, "bssiot-replay: BSS_BUS=kafka needs BSS_KAFKA_BROKERS\n");
                return EXIT_USAGE;
            }
            o->kafka_brokers = brokers;
        }
    }
    o->src.data_dir = o->data_dir;
    o->src.kafka_brokers = o->kafka_brokers;
    o->src.topic_prefix = getenv("BSS_KAFKA_TOPIC_PREFIX");
    if (o->since_text != NULL && parse_time("--since", o->since_text, &o->since_ms) != 0)
        return EXIT_USAGE;
    if (o->until_text != NULL && parse_time("--until", o->until_text, &o->until_ms) != 0)
        return EXIT_USAGE;
    if (o->time_text != NULL && parse_time("--time", o->time_text, &o->time_ms) != 0)
        return EXIT_USAGE;
    return 0;
}

static int status_for(int rc, size_t skipped)
{
    if (rc != BSS_OK)
        return EXIT_FAILED;
    return skipped > 0 ? EXIT_SKIPPED : 0;
}

/* ---- events ---- */

enum { FOCUS_INVOICES = 64, INVOICE_ID_MAX = 160 };

typedef struct print_ctx {
    int json;
    const char *focus;
    int failed;
    /* The focus line's charges seen so far: the invoice billing each and
     * the line's total in it, shown on that invoice (which names no line). */
    struct {
        char invoice_id[INVOICE_ID_MAX];
        char total[24];
    } billed[FOCUS_INVOICES];
    size_t nbilled;
} print_ctx;

/* Remembers a ChargeCalculated of the focus line; returns the line's total
 * in an InvoiceIssued remembered so, else NULL. */
static const char *focus_line_total(print_ctx *p, const bss_event *ev)
{
    if (p->focus == NULL)
        return NULL;
    if (strcmp(ev->type, "InvoiceIssued") == 0) {
        for (size_t i = 0; i < p->nbilled; i++)
            if (strcmp(p->billed[i].invoice_id, ev->subject) == 0)
                return p->billed[i].total;
        return NULL;
    }
    if (p->nbilled == FOCUS_INVOICES || strcmp(ev->subject, p->focus) != 0 ||
        !replay_charge_invoice_id(ev, p->billed[p->nbilled].invoice_id, INVOICE_ID_MAX))
        return NULL;
    cJSON *d = cJSON_Parse(ev->data);
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(d, "total");
    if (cJSON_IsNumber(total) && total->valuedouble >= 0 && total->valuedouble <= 9e15) {
        snprintf(p->billed[p->nbilled].total, sizeof p->billed[p->nbilled].total, "%.0f",
                 total->valuedouble);
        p->nbilled++;
    }
    cJSON_Delete(d);
    return NULL;
}

static int print_one(void *ctx, const bss_event *ev)
{
    print_ctx *p = ctx;
    int rc = p->json ? replay_print_json(stdout, ev)
                     : replay_print_text(stdout, ev, p->focus, focus_line_total(p, ev));
    if (rc != BSS_OK)
        p->failed = 1;
    return rc != BSS_OK; /* stdout gone (a closed pipe): stop */
}

/* Splits "a,b" into the source list (at most the known count). */
static size_t pick_sources(const char *spec, const char **out, char *buf, size_t buflen)
{
    if (spec == NULL) {
        for (size_t i = 0; i < replay_known_nsources; i++)
            out[i] = replay_known_sources[i];
        return replay_known_nsources;
    }
    snprintf(buf, buflen, "%s", spec);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && n < 16;
         tok = strtok_r(NULL, ",", &save))
        out[n++] = tok;
    return n;
}

static int cmd_events(const options *o)
{
    const char *sources[16];
    char buf[512];
    size_t nsources = pick_sources(o->source, sources, buf, sizeof buf);
    replay_filter f;
    replay_filter_init(&f);
    f.type = o->type;
    f.subject = o->subject;
    f.since_ms = o->since_ms;
    f.until_ms = o->until_ms;
    print_ctx p = {.json = o->json};
    size_t skipped = 0;
    char err[BSS_ERRLEN];
    int rc = replay_merge(&o->src, sources, nsources, &f, print_one, &p, &skipped, stderr, err);
    if (rc != BSS_OK)
        fprintf(stderr, "bssiot-replay: %s\n", err);
    return p.failed ? EXIT_FAILED : status_for(rc, skipped);
}

/* ---- timeline ---- */

typedef struct mention_ctx {
    const char *const *values;
    size_t n;
} mention_ctx;

static int keep_mentioning(void *ctx, const bss_event *ev)
{
    const mention_ctx *m = ctx;
    for (size_t i = 0; i < m->n; i++)
        if (replay_event_mentions(ev, m->values[i]))
            return 1;
    return 0;
}

/* Every event about the line (or about the customer and each of its lines),
 * in causal order. Two passes: the first finds what names the line (or the
 * customer); the second adds what names anything found so: the customer's
 * lines, and the invoices billing the line's charges (an InvoiceIssued
 * names its customer, not its lines). */
static int gather_timeline(const options *o, replay_events *out, size_t *skipped, char *err)
{
    const char *first[1] = {o->line ? o->line : o->customer};
    replay_filter f;
    replay_filter_init(&f);
    f.mentions = first;
    f.nmentions = 1;
    mention_ctx m = {first, 1};
    /* The second pass reads a superset of these rows and reports what is
     * corrupt among them; the first pass stays quiet. */
    FILE *quiet = fopen("/dev/null", "w");
    size_t first_skipped = 0;
    int rc = replay_collect(&o->src, replay_known_sources, replay_known_nsources, &f,
                            keep_mentioning, &m, out, &first_skipped, quiet ? quiet : stderr,
                            err);
    if (quiet != NULL)
        fclose(quiet);
    if (rc != BSS_OK)
        return rc;
    char(*invoices)[INVOICE_ID_MAX] = calloc(out->count + 1, sizeof *invoices);
    const char **values = malloc((out->count + 1) * sizeof *values);
    if (values == NULL || invoices == NULL) {
        free(values);
        free(invoices);
        bss_seterr(err, "out of memory");
        return BSS_ERR_NOMEM;
    }
    size_t n = 0;
    values[n++] = first[0];
    for (size_t i = 0; i < out->count; i++) {
        const char *value = NULL;
        if (o->customer != NULL)
            value = out->items[i].subject;
        else if (replay_charge_invoice_id(&out->items[i], invoices[i], INVOICE_ID_MAX))
            value = invoices[i];
        int seen = value == NULL;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(values[k], value) == 0;
        if (!seen)
            values[n++] = value;
    }
    replay_events all = {0};
    f.mentions = values;
    f.nmentions = n;
    m.values = values;
    m.n = n;
    rc = replay_collect(&o->src, replay_known_sources, replay_known_nsources, &f,
                        keep_mentioning, &m, &all, skipped, stderr, err);
    /* values point into out's events and invoices: free those only now. */
    free(values);
    free(invoices);
    replay_events_free(out);
    *out = all;
    if (rc == BSS_OK)
        rc = replay_causal_order(out);
    return rc;
}

static int cmd_timeline(const options *o)
{
    if ((o->line == NULL) == (o->customer == NULL)) {
        fprintf(stderr, "bssiot-replay: timeline needs exactly one of --line and --customer\n");
        return EXIT_USAGE;
    }
    replay_events list = {0};
    size_t skipped = 0;
    char err[BSS_ERRLEN];
    int rc = gather_timeline(o, &list, &skipped, err);
    if (rc != BSS_OK)
        fprintf(stderr, "bssiot-replay: %s\n", err);
    print_ctx p = {.json = o->json, .focus = o->line};
    for (size_t i = 0; i < list.count && !p.failed; i++)
        print_one(&p, &list.items[i]);
    if (rc == BSS_OK && list.count == 0)
        fprintf(stderr, "bssiot-replay: no events about %s in %s\n",
                o->line ? o->line : o->customer,
                o->kafka_brokers ? o->kafka_brokers : o->data_dir);
    replay_events_free(&list);
    return p.failed ? EXIT_FAILED : status_for(rc, skipped);
}

/* ---- at ---- */

static int cmd_at(const options *o)
{
    if (o->line == NULL || o->time_text == NULL) {
        fprintf(stderr, "bssiot-replay: at needs --line and --time\n");
        return EXIT_USAGE;
    }
    replay_events list = {0};
    size_t skipped = 0;
    char err[BSS_ERRLEN];
    int rc = gather_timeline(o, &list, &skipped, err);
    replay_line_state *st = rc == BSS_OK ? replay_line_state_new(o->line, o->time_ms) : NULL;
    if (rc == BSS_OK && st == NULL) {
        bss_seterr(err, "out of memory");
        rc = BSS_ERR_NOMEM;
    }
    for (size_t i = 0; rc == BSS_OK && i < list.count; i++) {
        int applied = replay_line_state_apply(st, &list.items[i], err);
        if (applied == BSS_ERR_INVALID) {
            /* Decodable but not what its type promises: the same kind of
             * damage as a corrupt row, reported the same way. */
            fprintf(stderr, "bssiot-replay: skipped an event: %s\n", err);
            skipped++;
        } else if (applied != BSS_OK) {
            rc = applied;
        }
    }
    if (rc != BSS_OK) {
        fprintf(stderr, "bssiot-replay: %s\n", err);
    } else {
        int printed = o->json ? replay_line_state_print_json(stdout, st)
                              : replay_line_state_print_text(stdout, st);
        if (printed != BSS_OK)
            rc = printed;
    }
    replay_line_state_free(st);
    replay_events_free(&list);
    return status_for(rc, skipped);
}

/* ---- rebuild / verify ---- */

#ifdef BSS_REPLAY_HAVE_MYPAGE
static int check_projection(const options *o)
{
    if (o->projection == NULL || strcmp(o->projection, "mypage") != 0) {
        fprintf(stderr, "bssiot-replay: --projection must be mypage (the one projection there is)\n");
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_rebuild(const options *o)
{
    int bad = check_projection(o);
    if (bad)
        return bad;
    if (o->out == NULL) {
        fprintf(stderr, "bssiot-replay: rebuild needs --out FILE\n");
        return EXIT_USAGE;
    }
    char err[BSS_ERRLEN], live[1024];
    replay_positions positions;
    const replay_positions *up_to = NULL;
    if (o->match_live) {
        if (replay_store_path(o->data_dir, "mypage", live, sizeof live) != BSS_OK ||
            replay_live_positions(live, &positions, err) != BSS_OK) {
            fprintf(stderr, "bssiot-replay: live read model: %s\n", err);
            return EXIT_FAILED;
        }
        up_to = &positions;
    }
    replay_rebuild_stats stats;
    int rc = replay_rebuild_mypage(&o->src, o->out, up_to, &stats, stderr, err);
    if (rc != BSS_OK) {
        fprintf(stderr, "bssiot-replay: rebuild: %s\n", err);
        return EXIT_FAILED;
    }
    /* Wall time depends on what else the machine runs; CPU per event is
     * the figure that compares across runs. */
    double rate = stats.seconds > 0 ? (double)stats.logged / stats.seconds : 0;
    double cpu_rate = stats.cpu_seconds > 0 ? (double)stats.logged / stats.cpu_seconds : 0;
    fprintf(stderr,
            "bssiot-replay: rebuilt %s from %lld logged events (%lld applied) in %.3f s"
            " (%.0f events/s; merge %.3f s); CPU %.3f s (%.0f events per CPU-second; read"
            " %.3f s, apply %.3f s); %zu corrupt skipped, %zu rejected, %lld duplicates"
            " dropped\n",
            o->out, (long long)stats.logged, (long long)stats.applied, stats.seconds, rate,
            stats.merge_seconds, stats.cpu_seconds, cpu_rate, stats.read_cpu_seconds,
            stats.apply_cpu_seconds,
            stats.skipped, stats.rejected, (long long)stats.duplicates);
    return status_for(BSS_OK, stats.skipped + stats.rejected);
}

static int cmd_verify(const options *o)
{
    int bad = check_projection(o);
    if (bad)
        return bad;
    char err[BSS_ERRLEN], live[1024], scratch[1100] = "";
    if (replay_store_path(o->data_dir, "mypage", live, sizeof live) != BSS_OK) {
        fprintf(stderr, "bssiot-replay: the live read model's path is too long\n");
        return EXIT_FAILED;
    }
    const char *rebuilt = o->rebuilt;
    size_t skipped = 0;
    if (rebuilt == NULL) {
        /* Rebuild at exactly the live store's positions, so a read model
         * that lags behind the logs still compares equal. */
        replay_positions positions;
        if (replay_live_positions(live, &positions, err) != BSS_OK) {
            fprintf(stderr, "bssiot-replay: live read model: %s\n", err);
            return EXIT_FAILED;
        }
        const char *tmpdir = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/bssiot-replay-verify-%ld.db",
                 tmpdir && tmpdir[0] ? tmpdir : "/tmp", (long)getpid());
        replay_rebuild_stats stats;
        if (replay_rebuild_mypage(&o->src, scratch, &positions, &stats, stderr, err) != BSS_OK) {
            fprintf(stderr, "bssiot-replay: rebuild: %s\n", err);
            return EXIT_FAILED;
        }
        skipped = stats.skipped + stats.rejected;
        rebuilt = scratch;
    }
    size_t differences = 0;
    int rc = replay_verify_mypage(live, rebuilt, stdout, &differences, err);
    if (scratch[0] != '\0')
        unlink(scratch);
    if (rc != BSS_OK) {
        fprintf(stderr, "bssiot-replay: verify: %s\n", err);
        return EXIT_FAILED;
    }
    if (differences > 0) {
        printf("verify: %zu differences between %s and %s\n", differences, live,
               o->rebuilt ? o->rebuilt : "a rebuild at its positions");
        return EXIT_DIFFERENT;
    }
    printf("verify: equal\n");
    return status_for(BSS_OK, skipped);
}
#else
static int cmd_rebuild(const options *o)
{
    (void)o;
    fprintf(stderr, "bssiot-replay: built without the mypage projection\n");
    return EXIT_FAILED;
}

static int cmd_verify(const options *o) { return cmd_rebuild(o); }
#endif

int main(int argc, char **argv)
{
    /* Before SQLite's first use: without memory statistics its allocator
     * takes no global mutex, which the rebuild's reader and applier threads
     * would otherwise contend for on every allocation. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    const char *zone = getenv("BSS_TZ");
    if (bss_time_set_zone(zone && zone[0] ? zone : "Asia/Seoul") != BSS_OK) {
        fprintf(stderr, "bssiot-replay: BSS_TZ '%s' is not a known time zone\n", zone);
        return EXIT_USAGE;
    }
    static const struct {
        const char *name;
        int (*run)(const options *);
    } COMMANDS[] = {{"events", cmd_events},   {"timeline", cmd_timeline}, {"at", cmd_at},
                    {"rebuild", cmd_rebuild}, {"verify", cmd_verify}};
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++) {
        if (strcmp(o.command, COMMANDS[i].name) == 0) {
            rc = COMMANDS[i].run(&o);
            if (fflush(stdout) != 0 && rc == 0)
                rc = EXIT_FAILED;
            return rc;
        }
    }
    fprintf(stderr, "bssiot-replay: unknown command '%s'\n", o.command);
    usage(stderr);
    return EXIT_USAGE;
}
