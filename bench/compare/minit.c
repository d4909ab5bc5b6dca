/* minit: the smallest init that reaps, used as the floor in the comparison. It runs its
 * command and reaps with a blocking waitpid(-1) loop: one syscall per zombie, no signal
 * handling, no forwarding. No real init can reap faster, so "time under INIT minus time
 * under minit" is what INIT's own machinery costs. Exits with the command's status when the
 * command exits (like tini).
 *
 *   minit [--] COMMAND [ARGS]...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int first = (argc > 1 && strcmp(argv[1], "--") == 0) ? 2 : 1;
    if (first >= argc)
        return 2;
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        execvp(argv[first], argv + first);
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p == child)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (p < 0 && errno == ECHILD)
            return 1;
    }
}
