/* Loading the lifecycle hooks (skeleton of lifecycle.bpf.c) and reading
 * their events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent-hooks/agent_hooks.h"
#include "agent-hooks/lifecycle.h"
#include "bpf/features.h"
#include "lifecycle.skel.h"

struct lifecycle {
	struct lifecycle_skel *skel;
	struct ring_buffer *rb;
	lifecycle_fn fn;
	void *arg;
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct lifecycle *lc = ctx;
	if (size < sizeof(struct lifecycle_event))
		return 0;
	lc->fn(lc->arg, data);
	return 0;
}

int lifecycle_open(struct lifecycle **out, bool follow_all, lifecycle_fn fn, void *arg,
		   struct err *e)
{
	/* What the hooks need, named, before anything is loaded. */
	int rc = bpf_features_lifecycle(e);
	if (rc < 0)
		return rc;
	struct lifecycle *lc = calloc(1, sizeof(*lc));
	if (!lc)
		return err_set(e, ENOMEM, "out of memory");
	lc->fn = fn;
	lc->arg = arg;
	lc->skel = lifecycle_skel__open();
	rc = lc->skel ? 0 : -errno;
	if (rc == 0) {
		lc->skel->rodata->follow_all = follow_all;
		rc = lifecycle_skel__load(lc->skel);
	}
	if (rc == 0)
		rc = lifecycle_skel__attach(lc->skel);
	if (rc == 0) {
		lc->rb = ring_buffer__new(bpf_map__fd(lc->skel->maps.events), on_event, lc, NULL);
		if (!lc->rb)
			rc = -errno;
	}
	if (rc < 0) {
		lifecycle_close(lc);
		return err_set(e, -rc,
			       "cannot load the exec/exit hooks: %s (needs root or CAP_BPF+CAP_PERFMON "
			       "and kernel BTF)",
			       strerror(-rc));
	}
	*out = lc;
	return 0;
}

int lifecycle_follow(struct lifecycle *lc, pid_t pid, struct err *e)
{
	__u32 key = (__u32)pid;
	__u8 one = 1;
	if (bpf_map_update_elem(bpf_map__fd(lc->skel->maps.followed), &key, &one, BPF_ANY) < 0)
		return err_set(e, errno, "following pid %d: %s", (int)pid, strerror(errno));
	return 0;
}

int lifecycle_poll(struct lifecycle *lc, int timeout_ms)
{
	int rc = ring_buffer__poll(lc->rb, timeout_ms);
	return rc == -EINTR ? 0 : rc;
}

void lifecycle_close(struct lifecycle *lc)
{
	if (!lc)
		return;
	ring_buffer__free(lc->rb);
	lifecycle_skel__destroy(lc->skel);
	free(lc);
}
