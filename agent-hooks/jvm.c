/* Perf maps of HotSpot JVMs (docs/profiler-agent.md, "The JVM").  A JVM
 * writes /tmp/perf-<pid>.map only when asked: `jcmd <pid> Compiler.perfmap`.
 * The agent asks the same way jcmd does, through HotSpot's attach socket,
 * without starting a JVM of its own (jcmd takes ~0.9 s here; this takes
 * milliseconds once the socket is up):
 *   1. /tmp/.java_pid<nspid> in the JVM's mount namespace is the socket; if
 *      it is not there, create .attach_pid<nspid> and send SIGQUIT, which
 *      makes the JVM start its attach listener (only when the JVM catches
 *      SIGQUIT: under -Xrs the signal would kill it);
 *   2. send "1\0jcmd\0Compiler.perfmap\0\0\0" (protocol 1, three arguments);
 *   3. the answer starts with "0" on success.
 * The JVM accepts only a peer with its own effective uid and gid: the agent
 * takes them for the connection (seteuid/setegid), then returns to root. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent-hooks/agent_hooks.h"

bool jvm_is_hotspot(pid_t pid)
{
	char path[64], line[4096 + 256];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libjvm.so") != NULL;
	if (f)
		fclose(f);
	return found;
}

/* Does pid catch SIGQUIT (SigCgt of /proc/PID/status)? */
static bool catches_sigquit(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	bool yes = false;
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "SigCgt:", 7)) {
			unsigned long long mask = strtoull(line + 7, NULL, 16);
			yes = mask & (1ull << (SIGQUIT - 1));
			break;
		}
	if (f)
		fclose(f);
	return yes;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int attach_connect(const char *sock_path, const struct stat *owner, int timeout_ms,
			  struct err *e)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "socket: %s", strerror(errno));
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(sock_path) >= sizeof(sa.sun_path)) {
		close(fd);
		return err_set(e, ENAMETOOLONG, "%s: path too long for a socket", sock_path);
	}
	strcpy(sa.sun_path, sock_path);
	/* The JVM checks the peer's credentials: be its owner while connecting. */
	uid_t uid = geteuid();
	gid_t gid = getegid();
	bool switched = uid == 0 && (owner->st_uid != 0 || owner->st_gid != 0);
	if (switched && (setegid(owner->st_gid) < 0 || seteuid(owner->st_uid) < 0)) {
		int err = errno;
		if (setegid(gid) < 0) { /* back to ours; cannot fail for root */ }
		close(fd);
		return err_set(e, err, "cannot take the JVM's uid/gid: %s", strerror(err));
	}
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	if (switched && (seteuid(uid) < 0 || setegid(gid) < 0))
		abort(); /* cannot go back to root: never continue as another user */
	if (rc < 0) {
		close(fd);
		return err_set(e, err, "connect %s: %s", sock_path, strerror(err));
	}
	return fd;
}

int jvm_write_perf_map(pid_t pid, int timeout_ms, struct err *e)
{
	pid_t ns = jit_ns_pid(pid);
	char sock_path[128], trigger[128], proc[64];
	snprintf(proc, sizeof(proc), "/proc/%d", (int)pid);
	snprintf(sock_path, sizeof(sock_path), "/proc/%d/root/tmp/.java_pid%d", (int)pid, (int)ns);
	struct stat st, owner;
	if (stat(proc, &owner) < 0)
		return err_set(e, errno, "pid %d: %s", (int)pid, strerror(errno));
	if (stat(sock_path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		if (!catches_sigquit(pid))
			return err_set(e, ENOTSUP, "pid %d does not catch SIGQUIT (-Xrs?): not attaching",
				       (int)pid);
		snprintf(trigger, sizeof(trigger), "/proc/%d/root/tmp/.attach_pid%d", (int)pid, (int)ns);
		int tfd = open(trigger, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (tfd < 0)
			return err_set(e, errno, "%s: %s", trigger, strerror(errno));
		if (fchown(tfd, owner.st_uid, owner.st_gid) < 0) { /* the JVM checks only presence */ }
		close(tfd);
		if (kill(pid, SIGQUIT) < 0) {
			int err = errno;
			unlink(trigger);
			return err_set(e, err, "pid %d: SIGQUIT: %s", (int)pid, strerror(err));
		}
		int waited = 0;
		while ((stat(sock_path, &st) < 0 || !S_ISSOCK(st.st_mode)) && waited < timeout_ms) {
			sleep_ms(20);
			waited += 20;
		}
		unlink(trigger);
		if (waited >= timeout_ms)
			return err_set(e, ETIMEDOUT, "pid %d: no attach socket after %d ms", (int)pid,
				       timeout_ms);
	}
	int fd = attach_connect(sock_path, &owner, timeout_ms, e);
	if (fd < 0)
		return fd;
	static const char req[] = "1\0jcmd\0Compiler.perfmap\0\0\0";
	int rc = 0;
	if (write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
		rc = err_set(e, EIO, "pid %d: writing the attach request: %s", (int)pid,
			     strerror(errno));
	} else {
		char reply[512];
		size_t got = 0;
		ssize_t n;
		while (got < sizeof(reply) - 1 && (n = read(fd, reply + got, sizeof(reply) - 1 - got)) > 0)
			got += (size_t)n;
		reply[got] = 0;
		if (got == 0 || reply[0] != '0')
			rc = err_set(e, EPROTO, "pid %d: Compiler.perfmap answered '%.80s'", (int)pid,
				     got ? reply : "nothing");
	}
	close(fd);
	return rc;
}
