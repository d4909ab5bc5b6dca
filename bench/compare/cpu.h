/* cpu.h: the CPU time a process has used, shared by siglat and orphans. Summed over all its
 * threads from /proc/PID/task/TID/schedstat (field 1: time on CPU in ns; sched-stats(7)),
 * which is exact where /proc/PID/stat's utime+stime count 10 ms ticks. */
#ifndef BENCH_CPU_H
#define BENCH_CPU_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>

/* `pid` as the /proc entry name: "1234", or "1" for the namespace's init. 0 if unreadable. */
static uint64_t task_cpu_ns(const char *pid) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%s/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long v = 0;
        if (f && fscanf(f, "%llu", &v) == 1)
            sum += v;
        if (f)
            fclose(f);
    }
    closedir(d);
    return sum;
}

#endif
