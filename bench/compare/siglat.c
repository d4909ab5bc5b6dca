/* siglat: the sender side of the signal benchmarks. It signals an init from outside its PID
 * namespace and reads the records that sigrecv (the init's child) writes back through a pipe.
 *
 *   siglat latency SAMPLES GAP_US NAME:PID:FD...
 *       SAMPLES rounds; in each round every init gets one SIGUSR1 (the order rotates per round,
 *       so machine noise falls on all inits alike). Latency = the receiver's CLOCK_MONOTONIC
 *       time in its handler minus ours just before kill(2). Between samples a random pause of
 *       GAP_US/2..GAP_US*3/2 lets the init go back to sleep, as a real signal finds it.
 *       Prints "lat NAME ROUND NS" or "lost NAME ROUND" (no record within 1 s).
 *   siglat storm COUNT NAME:PID:FD
 *       COUNT SIGUSR1 as fast as kill(2) goes, then waits until the receiver is quiet, then 5
 *       probes that must each arrive within 2 s. Prints one "storm" line: the init's CPU time
 *       during the storm (schedstat ns, summed over its threads, and utime+stime ticks), how many
 *       handler runs the storm caused (standard signals coalesce, so fewer than COUNT is
 *       correct), whether the init is alive, and how many probes got through.
 *
 * FD is a descriptor inherited from the driver: the read end of the receiver's stdout.
 * Written in C so that nothing but a clock read sits between the send time and kill(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

#define MAX_INITS 16

struct target {
    const char *name;
    pid_t pid;
    int fd;
    uint64_t last_seq; /* highest seq seen from this receiver */
    uint64_t last_ts;  /* its timestamp */
    unsigned char carry[16];
    size_t ncarry;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Read every record available now; keep the newest. Returns how many were read. */
static int drain(struct target *t) {
    unsigned char buf[16 * 512];
    int n = 0;
    for (;;) {
        memcpy(buf, t->carry, t->ncarry);
        ssize_t r = read(t->fd, buf + t->ncarry, sizeof buf - t->ncarry);
        if (r <= 0)
            return n;
        size_t have = t->ncarry + (size_t)r, off = 0;
        for (; off + 16 <= have; off += 16) {
            uint64_t rec[2];
            memcpy(rec, buf + off, 16);
            if (rec[0] >= t->last_seq) {
                t->last_seq = rec[0];
                t->last_ts = rec[1];
            }
            n++;
        }
        t->ncarry = have - off;
        memcpy(t->carry, buf + off, t->ncarry);
    }
}

/* Wait up to timeout_ms for a record with seq > after. Returns 1 if one came. */
static int await_seq(struct target *t, uint64_t after, int timeout_ms) {
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        drain(t);
        if (t->last_seq > after)
            return 1;
        uint64_t now = now_ns();
        if (now >= deadline)
            return 0;
        struct pollfd p = {t->fd, POLLIN, 0};
        poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
    }
}

/* One SIGUSR1 and its record; returns latency in ns, or -1 if none came in time. */
static int64_t one_sample(struct target *t, int timeout_ms) {
    drain(t);
    uint64_t before = t->last_seq;
    uint64_t t0 = now_ns();
    if (kill(t->pid, SIGUSR1) < 0)
        return -1;
    if (!await_seq(t, before, timeout_ms))
        return -1;
    return (int64_t)(t->last_ts - t0);
}

static uint64_t cpu_ns(pid_t pid) {
    char name[16];
    snprintf(name, sizeof name, "%d", pid);
    return task_cpu_ns(name);
}

/* utime+stime (clock ticks) and the state letter, from /proc/PID/stat (after the last ')'). */
static long stat_ticks(pid_t pid, char *state) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    *state = '?';
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields from 3 on: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime */
    char st;
    unsigned long ut, stt;
    if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &st, &ut, &stt) != 3)
        return -1;
    *state = st;
    return (long)(ut + stt);
}

static int parse_target(const char *arg, struct target *t) {
    char *copy = strdup(arg);
    char *a = strtok(copy, ":"), *b = strtok(NULL, ":"), *c = strtok(NULL, ":");
    if (!a || !b || !c)
        return -1;
    memset(t, 0, sizeof *t);
    t->name = a;
    t->pid = (pid_t)atoi(b);
    t->fd = atoi(c);
    int fl = fcntl(t->fd, F_GETFL);
    if (fl < 0 || fcntl(t->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

static int latency(int samples, long gap_us, struct target *ts, int n) {
    srand(12345);
    for (int round = 0; round < samples; round++) {
        for (int k = 0; k < n; k++) {
            struct target *t = &ts[(round + k) % n];
            int64_t lat = one_sample(t, 1000);
            if (lat < 0)
                printf("lost %s %d\n", t->name, round);
            else
                printf("lat %s %d %lld\n", t->name, round, (long long)lat);
            sleep_us(gap_us / 2 + (gap_us > 0 ? rand() % gap_us : 0));
        }
    }
    return 0;
}

static int storm(long count, struct target *t) {
    /* Where the receiver's count stands before the storm. */
    if (one_sample(t, 2000) < 0) {
        printf("storm %s error=no_baseline_record\n", t->name);
        return 0;
    }
    uint64_t seq0 = t->last_seq;
    char state;
    uint64_t cpu0 = cpu_ns(t->pid);
    long ticks0 = stat_ticks(t->pid, &state);
    uint64_t t0 = now_ns();
    long sent = 0, errors = 0;
    for (long i = 0; i < count; i++) {
        if (kill(t->pid, SIGUSR1) == 0) {
            sent++;
        } else {
            errors++;
            if (errno == ESRCH)
                break;
        }
    }
    uint64_t send_ns = now_ns() - t0;
    /* Let the init and the receiver work off the backlog: quiet = no record for 300 ms. */
    uint64_t give_up = now_ns() + 10000000000u;
    for (;;) {
        struct pollfd p = {t->fd, POLLIN, 0};
        int r = poll(&p, 1, 300);
        drain(t);
        if (r == 0 || now_ns() > give_up)
            break;
    }
    uint64_t busy_ns = now_ns() - t0;
    uint64_t cpu1 = cpu_ns(t->pid);
    long ticks1 = stat_ticks(t->pid, &state);
    /* Probes: forwarding still works? The first probe's seq also tells the storm's count,
     * even if records were dropped while the pipe was full. */
    int ok = 0;
    uint64_t delivered = 0;
    for (int k = 0; k < 5; k++) {
        drain(t);
        uint64_t before = t->last_seq;
        if (kill(t->pid, SIGUSR1) == 0 && await_seq(t, before, 2000)) {
            if (ok == 0)
                delivered = t->last_seq - 1 - seq0;
            ok++;
        }
        sleep_us(20000);
    }
    stat_ticks(t->pid, &state);
    int alive = kill(t->pid, 0) == 0 && state != 'Z' && state != '?';
    printf("storm %s sent=%ld errors=%ld send_ns=%llu busy_ns=%llu cpu_ns=%llu ticks=%ld "
           "delivered=%llu alive=%d probes_ok=%d\n",
           t->name, sent, errors, (unsigned long long)send_ns, (unsigned long long)busy_ns,
           (unsigned long long)(cpu1 - cpu0), ticks1 - ticks0, (unsigned long long)delivered,
           alive, ok);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct target ts[MAX_INITS];
    if (argc >= 5 && strcmp(argv[1], "latency") == 0) {
        int n = 0;
        for (int i = 4; i < argc && n < MAX_INITS; i++)
            if (parse_target(argv[i], &ts[n++]) < 0)
                return 2;
        return latency(atoi(argv[2]), atol(argv[3]), ts, n);
    }
    if (argc == 4 && strcmp(argv[1], "storm") == 0) {
        if (parse_target(argv[3], &ts[0]) < 0)
            return 2;
        return storm(atol(argv[2]), &ts[0]);
    }
    fprintf(stderr, "usage: siglat latency SAMPLES GAP_US NAME:PID:FD... | "
                    "siglat storm COUNT NAME:PID:FD\n");
    return 2;
}
