/*
 * pause is the sandbox ("infra") process of husk's test pods: the first
 * process of a pod, holding its namespaces open while the pod's containers
 * come and go. It does what Kubernetes' pause does and nothing else:
 *
 *   - it reaps every child it is given, so that when the pod shares one PID
 *     namespace (pause is then its PID 1) orphans do not stay zombies;
 *   - it sleeps until SIGTERM or SIGINT and then exits 0 (the status the CRI
 *     expects of a sandbox stopped on purpose); it ignores everything else a
 *     PID 1 does not get by default.
 *
 * test/devenv builds it with `gcc -static` and packs it as an OCI image
 * (devenv.PauseRef), so that the CRI never pulls registry.k8s.io/pause.
 * Only async-signal-safe calls happen in the handlers.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "husk-pause 3.10"

static void say(const char *s)
{
	ssize_t n = write(STDERR_FILENO, s, strlen(s));
	(void)n;
}

static void on_down(int sig)
{
	say(sig == SIGTERM ? "pause: SIGTERM, exiting\n" : "pause: SIGINT, exiting\n");
	_exit(0);
}

static void on_child(int sig)
{
	int saved = errno;
	(void)sig;
	/* One SIGCHLD may stand for several exits: reap until none is left. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	struct sigaction down = {.sa_handler = on_down};
	struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		say(VERSION "\n");
		return 0;
	}
	if (getpid() != 1)
		say("pause: warning: not PID 1; only its own children are reaped\n");
	sigemptyset(&down.sa_mask);
	sigemptyset(&child.sa_mask);
	if (sigaction(SIGINT, &down, NULL) < 0 || sigaction(SIGTERM, &down, NULL) < 0)
		return 1;
	if (sigaction(SIGCHLD, &child, NULL) < 0)
		return 2;
	/* Children that exited before the handler was installed. */
	on_child(SIGCHLD);
	for (;;)
		pause();
}
