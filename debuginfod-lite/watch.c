/* Rescan on change: inotify watches on every directory under --scan, so a
 * file copied or moved in is indexed within moments instead of at the next
 * periodic rescan (which still runs: inotify misses network filesystems and
 * overflows under bursts — an overflow triggers a full pass). */
#include "debuginfod-lite/server_internal.h"
#include "debuginfod-lite/log.h"
#include "debuginfod-lite/scan.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
		    IN_DELETE_SELF | IN_ONLYDIR)
/* Below the kernel's default max_user_watches (8192 on small machines). */
#define WATCH_MAX 8000

struct watcher {
	int fd;
	char **paths; /* by watch descriptor */
	int cap, count;
};

static void watch_add(struct watcher *w, const char *dir, int depth)
{
	if (w->count >= WATCH_MAX || depth > 64)
		return;
	int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
	if (wd < 0)
		return;
	if (wd >= w->cap) {
		int cap = wd * 2 + 16;
		char **np = realloc(w->paths, (size_t)cap * sizeof(*np));
		if (!np)
			return;
		memset(np + w->cap, 0, (size_t)(cap - w->cap) * sizeof(*np));
		w->paths = np;
		w->cap = cap;
	}
	if (!w->paths[wd]) {
		w->paths[wd] = strdup(dir);
		w->count++;
	}
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		char sub[PATH_MAX];
		struct stat st;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >= (int)sizeof(sub) ||
		    lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		watch_add(w, sub, depth + 1);
	}
	closedir(d);
}

static void handle_event(struct server *s, struct watcher *w, const struct inotify_event *ev,
			 bool *full_rescan)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		*full_rescan = true;
		return;
	}
	if (ev->wd < 0 || ev->wd >= w->cap || !w->paths[ev->wd])
		return;
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF)) {
		if (ev->mask & IN_IGNORED) {
			free(w->paths[ev->wd]);
			w->paths[ev->wd] = NULL;
			w->count--;
		}
		return;
	}
	if (!ev->len)
		return;
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", w->paths[ev->wd], ev->name) >= (int)sizeof(path))
		return;
	struct err e = { { 0 } };
	if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
		store_forget_external(s->core->store, path, &e);
		return;
	}
	struct stat st;
	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode))
		watch_add(w, path, 0); /* and index what is already in it */
	else if ((ev->mask & IN_CREATE) && !S_ISLNK(st.st_mode))
		return; /* a new regular file: wait for IN_CLOSE_WRITE */
	struct scan_counts c = { 0 };
	if (scan_tree(s->core->store, path, &c, &e) < 0)
		return;
	s->scan_indexed += c.indexed;
	if (c.indexed && s->cfg.verbose)
		log_info("msg=\"indexed on change\" path=\"%s\" indexed=%llu", path,
			 (unsigned long long)c.indexed);
}

void *watcher_main(void *arg)
{
	struct server *s = arg;
	struct watcher w = { .fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC) };
	if (w.fd < 0) {
		log_warn("msg=\"inotify unavailable (%s): periodic rescans only\"", strerror(errno));
		return NULL;
	}
	for (int i = 0; i < s->cfg.n_scan; i++) {
		char real[PATH_MAX];
		struct stat st;
		if (realpath(s->cfg.scan_dirs[i], real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode))
			watch_add(&w, real, 0);
	}
	if (w.count >= WATCH_MAX)
		log_warn("msg=\"inotify: watching the first %d directories only\"", WATCH_MAX);
	/* Events are aligned records; this buffer holds many. */
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool stop = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		struct pollfd pfd = { .fd = w.fd, .events = POLLIN };
		if (poll(&pfd, 1, 250) <= 0)
			continue;
		ssize_t n = read(w.fd, buf, sizeof(buf));
		bool full = false;
		for (ssize_t off = 0; n > 0 && off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
			handle_event(s, &w, ev, &full);
			off += (ssize_t)sizeof(*ev) + ev->len;
		}
		if (full) {
			pthread_mutex_lock(&s->lock);
			s->rescan_now = true;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
		}
	}
	for (int i = 0; i < w.cap; i++)
		free(w.paths[i]);
	free(w.paths);
	close(w.fd);
	return NULL;
}
