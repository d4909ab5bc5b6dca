/* sigrecv: the child under test for signal forwarding (latency and storm).
 *
 * Runs under an init, installs a SIGUSR1 handler and then sleeps in pause(). Each time the
 * handler runs it writes one 16-byte record {seq, CLOCK_MONOTONIC ns} to stdout, which is a
 * pipe back to the sender (siglat). seq counts every handler run since start, so a dropped
 * record (the pipe is non-blocking: a full pipe must never stall the handler during a storm)
 * still shows up as a gap in seq. A record {0, now} at start says "handler installed".
 * CLOCK_MONOTONIC is one clock for the whole machine, PID namespaces included, so the sender's
 * send time and this receive time are directly comparable.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t seq;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(uint64_t n) {
    uint64_t rec[2] = {n, now_ns()};
    /* A short or failed write (EAGAIN when the sender is not reading) drops this record
     * only; the next one carries the count. */
    ssize_t r = write(STDOUT_FILENO, rec, sizeof rec);
    (void)r;
}

static void on_usr1(int sig) {
    (void)sig;
    /* Time first: everything after the handler starts is not the init's latency. */
    uint64_t t = now_ns();
    seq++;
    uint64_t rec[2] = {seq, t};
    ssize_t r = write(STDOUT_FILENO, rec, sizeof rec);
    (void)r;
}

int main(void) {
    int fl = fcntl(STDOUT_FILENO, F_GETFL);
    if (fl < 0 || fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) < 0)
        return 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) < 0)
        return 1;
    /* The init may have started us with signals blocked; unblock what we measure. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    report(0);
    for (;;)
        pause();
}
