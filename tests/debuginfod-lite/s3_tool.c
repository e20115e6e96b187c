/* A command-line front to the S3 client (debuginfod-lite/s3.h) for the
 * test scripts, which compare what it stores and fetches with files on disk.
 *
 *   s3_tool [options] mkbucket
 *   s3_tool [options] put KEY FILE | get KEY FILE | head KEY | delete KEY
 *   s3_tool [options] list [PREFIX]
 * options: --endpoint URL --region R --bucket B --credentials FILE
 *          --part-size N --threshold N --attempts N --idle-timeout S
 *          --page-keys N --caller-verifies (no ETag recomputation on GET)
 *          --stats (print the counters of every operation at the end)
 * Exit status: 0, or the errno of the failure (ENOENT for a missing key). */
#include "debuginfod-lite/s3.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int print_entry(void *arg, const struct s3_list_entry *ent)
{
	(void)arg;
	printf("%s %" PRIu64 " %s\n", ent->key, ent->size, ent->etag);
	return 0;
}

static void print_stats(struct s3_client *c)
{
	for (int op = 0; op < S3_OP_COUNT; op++) {
		struct s3_op_stats st;
		s3_stats(c, (enum s3_op)op, &st);
		if (!st.ops)
			continue;
		printf("stats %s ops=%" PRIu64 " errors=%" PRIu64 " requests=%" PRIu64
		       " retries=%" PRIu64 " bytes=%" PRIu64 " latency_sum_us=%" PRIu64 "\n",
		       s3_op_name((enum s3_op)op), st.ops, st.errors, st.requests, st.retries,
		       st.bytes, st.latency_sum_us);
	}
}

int main(int argc, char **argv)
{
	struct s3_config cfg = {.bucket = "test-bucket"};
	bool stats = false;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--stats") == 0) {
			stats = true;
			continue;
		}
		if (strcmp(o, "--caller-verifies") == 0) {
			cfg.caller_verifies_content = true;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "s3_tool: %s needs a value\n", o);
			return 2;
		}
		const char *v = argv[++i];
		if (strcmp(o, "--endpoint") == 0)
			cfg.endpoint = v;
		else if (strcmp(o, "--region") == 0)
			cfg.region = v;
		else if (strcmp(o, "--bucket") == 0)
			cfg.bucket = v;
		else if (strcmp(o, "--credentials") == 0)
			cfg.credentials_file = v;
		else if (strcmp(o, "--part-size") == 0)
			cfg.part_size = strtoull(v, NULL, 0);
		else if (strcmp(o, "--threshold") == 0)
			cfg.multipart_threshold = strtoull(v, NULL, 0);
		else if (strcmp(o, "--attempts") == 0)
			cfg.max_attempts = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(o, "--page-keys") == 0)
			cfg.list_page_keys = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(o, "--idle-timeout") == 0)
			cfg.idle_timeout_s = (unsigned)strtoul(v, NULL, 0);
		else {
			fprintf(stderr, "s3_tool: unknown option %s\n", o);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "usage: s3_tool [options] mkbucket|put|get|head|delete|list ...\n");
		return 2;
	}
	const char *cmd = argv[i++];
	struct err e;
	err_clear(&e);
	struct s3_client *c;
	int rc = s3_client_new(&cfg, &c, &e);
	if (rc < 0) {
		fprintf(stderr, "s3_tool: %s\n", e.msg);
		return -rc;
	}
	if (strcmp(cmd, "mkbucket") == 0) {
		rc = s3_ensure_bucket(c, &e);
	} else if (strcmp(cmd, "put") == 0 && i + 2 == argc) {
		int fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
		struct stat st;
		struct s3_object_info info;
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = err_set(&e, errno, "%s: %m", argv[i + 1]);
		} else {
			rc = s3_put_fd(c, argv[i], fd, (uint64_t)st.st_size, &info, &e);
			if (rc == 0)
				printf("%" PRIu64 " %s\n", info.size, info.etag);
		}
		if (fd >= 0)
			close(fd);
	} else if (strcmp(cmd, "get") == 0 && i + 2 == argc) {
		int fd = open(argv[i + 1], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		struct s3_object_info info;
		if (fd < 0) {
			rc = err_set(&e, errno, "%s: %m", argv[i + 1]);
		} else {
			rc = s3_get_fd(c, argv[i], fd, &info, &e);
			if (rc == 0)
				printf("%" PRIu64 " %s\n", info.size, info.etag);
			close(fd);
		}
	} else if (strcmp(cmd, "head") == 0 && i + 1 == argc) {
		struct s3_object_info info;
		rc = s3_head(c, argv[i], &info, &e);
		if (rc == 0)
			printf("%" PRIu64 " %s %" PRId64 "\n", info.size, info.etag, info.mtime);
	} else if (strcmp(cmd, "delete") == 0 && i + 1 == argc) {
		rc = s3_delete(c, argv[i], &e);
	} else if (strcmp(cmd, "list") == 0 && i + 1 >= argc) {
		rc = s3_list(c, i < argc ? argv[i] : NULL, print_entry, NULL, &e);
	} else {
		fprintf(stderr, "s3_tool: bad command line\n");
		rc = -EINVAL;
	}
	if (rc < 0)
		fprintf(stderr, "s3_tool: %s\n", e.msg[0] ? e.msg : strerror(-rc));
	if (stats)
		print_stats(c);
	s3_client_free(c);
	return rc < 0 ? -rc : 0;
}
