/*
 * bssiot.c - starts a whole bssiot system on one machine and keeps it up.
 *
 * It runs in the foreground: every service (customer, rater, billing, ...,
 * then the gateway) as a child process whose logs go to this terminal, each
 * restarted with backoff if it dies, and all of them stopped cleanly (SIGTERM,
 * then SIGKILL after BSS_STOP_TIMEOUT_MS) on Ctrl-C or SIGTERM.
 *
 * Two settings make a complete, independent system:
 *   BSS_DATA_DIR  every store, socket, pid file and log under it (./data)
 *   BSS_PORT      the gateway's port (8088); service k listens on
 *                 127.0.0.1:BSS_PORT+k and the gateway is pointed at them.
 * A random BSS_INTERNAL_TOKEN is generated for each run unless one is set:
 * the services then answer only the gateway (shared/internal_auth.h).
 * Anything already set in the environment (BSS_CUSTOMER_LISTEN,
 * BSS_UPSTREAM_RATER, BSS_CATALOG, ...) is left alone. Service binaries are
 * looked up next to this one (BSS_BIN_DIR overrides); a service whose binary
 * does not exist is skipped with a note.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BSS_DEFAULT_CATALOG
#define BSS_DEFAULT_CATALOG "config/products.json"
#endif

typedef struct child {
    const char *name;  /* service name */
    int port_offset;   /* listens on BSS_PORT + offset */
    char path[PATH_MAX + 64];
    pid_t pid;
    int restarts;
    struct timespec next_start;
} child;

typedef struct supervisor {
    child children[8];
    int count;
    char data_dir[PATH_MAX];
    int port;
    sigset_t signals;
    long stop_timeout_ms;
} supervisor;

/* One JSON log line like the services' own (messages never need escaping:
 * they are built from service names, numbers and paths we chose). */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
    char msg[PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "{\"service\":\"bssiot\",\"msg\":\"%s\"}\n", msg);
}

static int set_default(const char *key, const char *value)
{
    return setenv(key, value, 0);
}

static void upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int configure(supervisor *s)
{
    const char *dir = getenv("BSS_DATA_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "./data";
    if (mkdir_p(dir) != 0 || realpath(dir, s->data_dir) == NULL) {
        fprintf(stderr, "bssiot: cannot create data dir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char run[PATH_MAX + 8];
    snprintf(run, sizeof run, "%s/run", s->data_dir);
    if (mkdir_p(run) != 0) {
        fprintf(stderr, "bssiot: cannot create %s\n", run);
        return -1;
    }
    const char *port = getenv("BSS_PORT");
    char *end = NULL;
    long p = port ? strtol(port, &end, 10) : 8088;
    if ((port && (*end != '\0' || end == port)) || p < 1 || p > 65535 - 16) {
        fprintf(stderr, "bssiot: BSS_PORT must be a port number below 65519\n");
        return -1;
    }
    s->port = (int)p;
    const char *timeout = getenv("BSS_STOP_TIMEOUT_MS");
    s->stop_timeout_ms = timeout ? strtol(timeout, NULL, 10) : 10000;
    if (s->stop_timeout_ms <= 0)
        s->stop_timeout_ms = 10000;

    char value[PATH_MAX + 32];
    setenv("BSS_DATA_DIR", s->data_dir, 1);
    /* Services answer only the gateway: a fresh secret for every run,
     * shared through the environment of the processes started here. */
    if (getenv("BSS_INTERNAL_TOKEN") == NULL) {
        unsigned char secret[16];
        if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
            fprintf(stderr, "bssiot: getrandom failed\n");
            return -1;
        }
        char hex[2 * sizeof secret + 1];
        for (size_t i = 0; i < sizeof secret; i++)
            snprintf(hex + 2 * i, 3, "%02x", secret[i]);
        setenv("BSS_INTERNAL_TOKEN", hex, 1);
    }
    snprintf(value, sizeof value, "%d", s->port);
    set_default("BSS_GATEWAY_LISTEN", value);
    set_default("BSS_CATALOG", BSS_DEFAULT_CATALOG);
    for (int i = 0; i < s->count; i++) {
        child *c = &s->children[i];
        if (c->port_offset == 0)
            continue;
        char key[64], name[32];
        snprintf(name, sizeof name, "%s", c->name);
        upper(name);
        snprintf(key, sizeof key, "BSS_%s_LISTEN", name);
        snprintf(value, sizeof value, "127.0.0.1:%d", s->port + c->port_offset);
        set_default(key, value);
        snprintf(key, sizeof key, "BSS_UPSTREAM_%s", name);
        snprintf(value, sizeof value, "http://127.0.0.1:%d", s->port + c->port_offset);
        set_default(key, value);
    }
    return 0;
}

static void find_binaries(supervisor *s)
{
    char dir[PATH_MAX];
    const char *bin_dir = getenv("BSS_BIN_DIR");
    if (bin_dir != NULL && bin_dir[0] != '\0') {
        snprintf(dir, sizeof dir, "%s", bin_dir);
    } else {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        dir[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, ".");
    }
    int kept = 0;
    for (int i = 0; i < s->count; i++) {
        child c = s->children[i];
        snprintf(c.path, sizeof c.path, "%s/bssiot-%s", dir, c.name);
        if (access(c.path, X_OK) != 0) {
            note("%s is not built yet: not started", c.name);
            continue;
        }
        s->children[kept++] = c;
    }
    s->count = kept;
}

static void write_pid(const supervisor *s, const child *c)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/run/%s.pid", s->data_dir, c->name);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%ld\n", (long)c->pid);
        fclose(f);
    }
}

static int start(supervisor *s, child *c)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &s->signals, NULL);
        execl(c->path, c->path, (char *)NULL);
        fprintf(stderr, "bssiot: exec %s: %s\n", c->path, strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    write_pid(s, c);
    note("started %s (pid %ld)", c->name, (long)pid);
    return 0;
}

static int64_t ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static void schedule_restart(child *c)
{
    long delay = 250L << (c->restarts < 6 ? c->restarts : 6); /* up to 16 s */
    clock_gettime(CLOCK_MONOTONIC, &c->next_start);
    c->next_start.tv_sec += delay / 1000;
    c->next_start.tv_nsec += (delay % 1000) * 1000000L;
    if (c->next_start.tv_nsec >= 1000000000L) {
        c->next_start.tv_sec++;
        c->next_start.tv_nsec -= 1000000000L;
    }
    c->restarts++;
}

static void reap(supervisor *s, int stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < s->count; i++) {
            child *c = &s->children[i];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            if (stopping)
                break;
            if (WIFSIGNALED(status))
                note("%s died of signal %d: restarting", c->name, WTERMSIG(status));
            else
                note("%s exited with status %d: restarting", c->name, WEXITSTATUS(status));
            schedule_restart(c);
        }
    }
}

static int running(const supervisor *s)
{
    int n = 0;
    for (int i = 0; i < s->count; i++)
        n += s->children[i].pid > 0;
    return n;
}

static void stop_all(supervisor *s)
{
    note("stopping %d services", running(s));
    for (int i = s->count - 1; i >= 0; i--) /* the gateway first */
        if (s->children[i].pid > 0)
            kill(s->children[i].pid, SIGTERM);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += s->stop_timeout_ms / 1000;
    deadline.tv_nsec += (s->stop_timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (running(s) > 0 && ms_until(&deadline) > 0) {
        struct timespec tick = {0, 20 * 1000000L};
        nanosleep(&tick, NULL);
        reap(s, 1);
    }
    for (int i = 0; i < s->count; i++) {
        if (s->children[i].pid > 0) {
            note("%s did not stop in time: killing it", s->children[i].name);
            kill(s->children[i].pid, SIGKILL);
            waitpid(s->children[i].pid, NULL, 0);
            s->children[i].pid = 0;
        }
    }
    note("stopped");
}

int main(void)
{
    supervisor s = {
        .children = {{.name = "customer", .port_offset = 1},
                     {.name = "rater", .port_offset = 2},
                     {.name = "billing", .port_offset = 3},
                     {.name = "settlement", .port_offset = 4},
                     {.name = "mypage", .port_offset = 5},
                     {.name = "gateway", .port_offset = 0}},
        .count = 6,
    };
    sigemptyset(&s.signals);
    sigaddset(&s.signals, SIGINT);
    sigaddset(&s.signals, SIGTERM);
    sigaddset(&s.signals, SIGCHLD);
    sigprocmask(SIG_BLOCK, &s.signals, NULL);
    if (configure(&s) != 0)
        return 1;
    find_binaries(&s);
    if (s.count == 0) {
        fprintf(stderr, "bssiot: no service binaries found\n");
        return 1;
    }
    note("data dir %s, gateway port %d", s.data_dir, s.port);
    for (int i = 0; i < s.count; i++)
        if (start(&s, &s.children[i]) != 0)
            schedule_restart(&s.children[i]);
    for (;;) {
        int64_t wait_ms = 1000;
        for (int i = 0; i < s.count; i++) {
            child *c = &s.children[i];
            if (c->pid == 0) {
                int64_t due = ms_until(&c->next_start);
                if (due <= 0) {
                    if (start(&s, c) != 0)
                        schedule_restart(c);
                } else if (due < wait_ms) {
                    wait_ms = due;
                }
            }
        }
        struct timespec timeout = {(time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(&s.signals, NULL, &timeout);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        reap(&s, 0);
    }
    stop_all(&s);
    return 0;
}
