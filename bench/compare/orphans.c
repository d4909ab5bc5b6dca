/* orphans: the child under test for reaping. It makes N orphans of the init at once and times
 * how long the init takes to reap them all.
 *
 *   orphans N [--backlog]
 *
 * 1. A middle process forks N grandchildren and exits, so the N become orphans: the kernel
 *    re-parents them to the init (PID 1 of the namespace). Each grandchild says "up" on a
 *    ready pipe, then blocks reading a "go" pipe.
 * 2. Once all N are up, we take the time and close the go pipe: all N read EOF and _exit(0)
 *    together, leaving N zombies whose parent is the init.
 * 3. We wait until every one of the N has been reaped: a pidfd (pidfd_open(2)) reports POLLHUP
 *    once its process is reaped, so we sleep in poll(2) on each in turn. No busy polling: an
 *    earlier version polled kill(pid, 0) every 100 us and that slowed the reaping it measured.
 * The interval includes the N exits themselves (kernel work, the same under every init), so the
 * report also shows the same run under minit, a blocking waitpid loop, the fastest reaper there
 * is. We also report the init's CPU time over the interval (/proc/1/task/<tid>/schedstat: the
 * namespace's /proc is ours thanks to unshare --mount-proc).
 * Prints: "reap n=N ns=ELAPSED init_cpu_ns=CPU t1=END".
 *
 * With --backlog the interval is the init's reaping alone, without the N exits: we print "up"
 * when the N are ready and wait for a line on stdin; the driver, outside the namespace, stops
 * the init (SIGSTOP) and sends that line; we release the N and wait until all N have exited
 * (their pidfds turn readable), print "zombies" and wait for the reaping at once; the driver
 * takes its start time and continues the init (SIGCONT). ELAPSED is then t1 minus the driver's
 * start time (CLOCK_MONOTONIC is one clock for all namespaces). We never read /proc/PID of the
 * N: /proc dentries of a process make its release slower, and that is not the init's cost.
 * Needs root (or a high hard RLIMIT_NOFILE): N pidfds are open at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu.h"

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Block until each pidfd reports `events` (POLLIN: exited; 0: only POLLHUP, i.e. reaped). */
static void await_all(const int *fds, int n, short events) {
    for (int i = 0; i < n; i++) {
        struct pollfd p = {fds[i], events, 0};
        while (poll(&p, 1, -1) < 0 && errno == EINTR) {
        }
    }
}

static void await_line(void) {
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        exit(1);
}

int main(int argc, char **argv) {
    int backlog = argc == 3 && strcmp(argv[2], "--backlog") == 0;
    if (argc != 2 && !backlog) {
        fprintf(stderr, "usage: orphans N [--backlog]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n = atoi(argv[1]);
    pid_t *pids = mmap(NULL, sizeof(pid_t) * (size_t)n, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int go[2], ready[2];
    if (pids == MAP_FAILED || pipe(go) < 0 || pipe(ready) < 0)
        return 1;
    pid_t mid = fork();
    if (mid < 0)
        return 1;
    if (mid == 0) {
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p < 0) {
                pids[i] = -1;
                continue;
            }
            if (p == 0) {
                char c;
                close(go[1]);
                close(ready[0]);
                if (write(ready[1], "x", 1) != 1)
                    _exit(1);
                close(ready[1]);
                ssize_t r = read(go[0], &c, 1);
                (void)r;
                _exit(0);
            }
            pids[i] = p;
        }
        _exit(0);
    }
    close(ready[1]);
    close(go[0]);
    int st;
    waitpid(mid, &st, 0);
    int up = 0;
    char buf[4096];
    ssize_t r;
    while (up < n && (r = read(ready[0], buf, sizeof buf)) > 0)
        up += (int)r;
    if (up != n) {
        fprintf(stderr, "orphans: only %d of %d grandchildren started\n", up, n);
        return 1;
    }
    struct rlimit nofile = {(rlim_t)n + 64, (rlim_t)n + 64};
    int *fds = malloc(sizeof(int) * (size_t)n);
    if (!fds || setrlimit(RLIMIT_NOFILE, &nofile) < 0) {
        perror("orphans: RLIMIT_NOFILE");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        fds[i] = (int)syscall(SYS_pidfd_open, pids[i], 0);
        if (fds[i] < 0) {
            perror("orphans: pidfd_open");
            return 1;
        }
    }
    if (backlog) {
        printf("up\n");
        await_line();
    }
    uint64_t cpu0 = task_cpu_ns("1");
    uint64_t t0 = now_ns();
    close(go[1]);
    if (backlog) {
        await_all(fds, n, POLLIN);
        cpu0 = task_cpu_ns("1");
        printf("zombies\n");
    }
    await_all(fds, n, 0);
    uint64_t t1 = now_ns();
    uint64_t cpu1 = task_cpu_ns("1");
    printf("reap n=%d ns=%llu init_cpu_ns=%llu t1=%llu\n", n, (unsigned long long)(t1 - t0),
           (unsigned long long)(cpu1 - cpu0), (unsigned long long)t1);
    return 0;
}
