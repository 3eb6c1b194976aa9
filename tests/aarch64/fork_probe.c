/*
 * fork_probe.c - can a forked child of a threaded process start a thread?
 *
 * qemu-user 7.2 (Debian 12) cannot: the child dies in an assertion of
 * qemu's own (qemu_plugin_vcpu_init_hook). tests/aarch64/run.sh runs this
 * first and, only when it fails, leaves out the few core tests that do
 * exactly that. Exits 0 when the child could start and join its thread.
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *idle(void *arg)
{
    (void)arg;
    pause();
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, idle, NULL) != 0)
        return 2;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        pthread_t child_th;
        if (pthread_create(&child_th, NULL, nothing, NULL) != 0)
            _exit(1);
        _exit(pthread_join(child_th, NULL) == 0 ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return 2;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
