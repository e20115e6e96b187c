/* debuginfod-lite migrate --data DIR --db URL --blobs URL: copy a
 * single-node data directory (DIR/index.sqlite, DIR/profiles.sqlite,
 * DIR/blobs/, DIR/profiles/) into the storage a cluster shares.
 *
 * Order makes it safe to stop at any moment and run again: every blob is
 * copied (and its SHA-256 checked against its name) before the rows that
 * name it, and every row goes in with "nothing if already there" (a
 * profile, its labels and its refs in one transaction, found again by its
 * raw blob's hash).  A second run copies nothing twice.  Scanned files
 * (origin 0) are imported into the blob store when they still exist. */
#include "debuginfod-lite/migrate.h"
#include "debuginfod-lite/blobs.h"
#include "debuginfod-lite/metadb.h"
#include "debuginfod-lite/store.h"
#include "debuginfod-lite/profiles.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct migration {
	struct blob_store *from_blobs, *to_blobs;
	struct db *from_index, *from_profiles, *to_index, *to_profiles;
	struct store *to_store;
	uint64_t blobs_copied, blobs_present, rows_copied, rows_present, scanned_imported,
		scanned_gone;
	struct err e;
};

struct copy_ctx {
	struct migration *m;
	const char *area;
	int rc;
};

static int copy_blob(void *arg, const char *hash, uint64_t size, int64_t mtime)
{
	(void)mtime;
	struct copy_ctx *cc = arg;
	struct migration *m = cc->m;
	uint64_t have;
	int64_t when;
	struct err ignored = { { 0 } };
	if (blob_stat(m->to_blobs, cc->area, hash, &have, &when, &ignored) == 0 && have == size) {
		m->blobs_present++;
		return 0;
	}
	int fd;
	struct stat st;
	int rc = blob_open(m->from_blobs, cc->area, hash, &fd, &st, NULL, 0, &m->e);
	if (rc < 0)
		return cc->rc = rc;
	struct blob_tmp t;
	rc = blob_tmp_begin(m->to_blobs, &t, &m->e);
	char buf[1 << 16];
	ssize_t n = 0;
	while (rc == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		rc = blob_tmp_write(&t, buf, (size_t)n, &m->e);
	close(fd);
	if (rc == 0 && n < 0)
		rc = err_set(&m->e, EIO, "%s/%s: read error", cc->area, hash);
	if (rc < 0) {
		if (t.fd >= 0)
			blob_tmp_abort(&t);
		return cc->rc = rc;
	}
	char got[SHA256_HEX_LEN + 1];
	rc = blob_tmp_commit(m->to_blobs, &t, cc->area, got, &m->e);
	if (rc == 0 && strcmp(got, hash) != 0)
		rc = err_set(&m->e, EBADMSG, "%s/%s: its content hashes to %s (damaged source)",
			     cc->area, hash, got);
	if (rc < 0)
		return cc->rc = rc;
	m->blobs_copied++;
	return 0;
}

static int copy_area(struct migration *m, const char *area)
{
	struct copy_ctx cc = { m, area, 0 };
	int rc = blob_list(m->from_blobs, area, copy_blob, &cc, &m->e);
	return rc < 0 ? rc : cc.rc;
}

/* Releases conns[0..n) to pools[0..n), last first. */
static void put_conns(struct db *const *pools, struct db_conn **conns, int n)
{
	while (n-- > 0)
		db_put(pools[n], conns[n]);
}

/* A connection from each of pools[0..n): all of them, or none. */
static int get_conns(struct migration *m, struct db *const *pools, struct db_conn **conns, int n)
{
	for (int i = 0; i < n; i++) {
		int rc = db_get(pools[i], &conns[i], &m->e);
		if (rc < 0) {
			put_conns(pools, conns, i);
			return rc;
		}
	}
	return 0;
}

/* The artifact index: candidates (scanned files imported), nothing else
 * (misses and the scan bookkeeping are caches). */
static int copy_candidates(struct migration *m)
{
	struct db *pools[] = { m->from_index, m->to_index };
	struct db_conn *conns[2];
	int rc = get_conns(m, pools, conns, 2);
	if (rc < 0)
		return rc;
	struct db_conn *from = conns[0], *to = conns[1];
	struct db_rows *q = NULL;
	rc = db_query(from, &q, &m->e,
		      "SELECT build_id, kind, name, loc, origin, quality, file, size, mtime, expires"
		      " FROM candidates", "");
	int step = 0;
	while (rc == 0 && (step = db_next(q)) == 1) {
		struct artifact a;
		artifact_init(&a, db_text(q, 0), (enum artifact_kind)db_int(q, 1), db_text(q, 2),
			      (enum artifact_origin)db_int(q, 4), (int)db_int(q, 5));
		snprintf(a.file, sizeof(a.file), "%s", db_text(q, 6));
		a.size = (uint64_t)db_int(q, 7);
		a.mtime = db_int(q, 8);
		a.expires = db_int(q, 9);
		if (a.origin == ORIGIN_SCAN) {
			snprintf(a.path, sizeof(a.path), "%s", db_text(q, 3));
			int64_t one;
			bool there = false;
			rc = db_query_int(to, &one, &there, &m->e,
					  "SELECT 1 FROM candidates WHERE build_id=? AND kind=? AND"
					  " name=? AND origin=? AND size=? LIMIT 1", "titiI", a.build_id,
					  (int)a.kind, a.name, (int)ORIGIN_IMPORTED, (int64_t)a.size);
			if (rc < 0)
				break;
			if (there) {
				m->rows_present++;
				continue;
			}
			struct stat st;
			if (stat(a.path, &st) < 0 || (uint64_t)st.st_size != a.size) {
				m->scanned_gone++;
				continue;
			}
			struct err ie = { { 0 } };
			if (store_add_external(m->to_store, &a, &ie) == 0)
				m->scanned_imported++;
			else
				m->scanned_gone++;
			continue;
		}
		int64_t added = 0;
		rc = db_exec(to, &added, &m->e,
			     "INSERT INTO candidates(build_id, kind, name, loc, origin, quality, file,"
			     " size, mtime, expires) VALUES(?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
			     "tittiitIII", a.build_id, (int)a.kind, a.name, db_text(q, 3),
			     (int)a.origin, a.quality, a.file, (int64_t)a.size, a.mtime, a.expires);
		if (added)
			m->rows_copied++;
		else
			m->rows_present++;
	}
	if (rc == 0 && step < 0)
		rc = err_set(&m->e, -step, "reading candidates failed");
	db_done(q);
	put_conns(pools, conns, 2);
	return rc;
}

/* One profile with its labels and refs, in one transaction. */
static int copy_profile(struct migration *m, struct db_conn *from, struct db_conn *to,
			struct db_rows *p)
{
	int64_t old_id = db_int(p, 0), id = 0;
	const char *raw = db_text(p, 1);
	bool found = false;
	int rc = db_query_int(to, &id, &found, &m->e, "SELECT id FROM profiles WHERE raw=?", "t",
			      raw);
	if (rc < 0 || found) {
		m->rows_present += rc == 0;
		return rc;
	}
	rc = db_begin(to, &m->e);
	if (rc == 0)
		rc = db_query_int(to, &id, &found, &m->e,
				  "INSERT INTO profiles(raw, raw_size, sym, sym_size, received, t_start,"
				  " t_end, samples, sample_types, state) VALUES(?,?,?,?,?,?,?,?,?,?)"
				  " RETURNING id", "tItIIIIIti", raw, db_int(p, 2), db_text(p, 3),
				  db_int(p, 4), db_int(p, 5), db_int(p, 6), db_int(p, 7), db_int(p, 8),
				  db_text(p, 9), (int)db_int(p, 10));
	struct db_rows *q = NULL;
	if (rc == 0)
		rc = db_query(from, &q, &m->e,
			      "SELECT key, value FROM profile_labels WHERE profile=?", "I", old_id);
	while (rc == 0 && db_next(q) == 1)
		rc = db_exec(to, NULL, &m->e, "INSERT INTO profile_labels(profile, key, value)"
			     " VALUES(?,?,?) ON CONFLICT DO NOTHING", "Itt", id, db_text(q, 0),
			     db_text(q, 1));
	db_done(q);
	q = NULL;
	if (rc == 0)
		rc = db_query(from, &q, &m->e,
			      "SELECT ref, missing FROM profile_refs WHERE profile=?", "I", old_id);
	while (rc == 0 && db_next(q) == 1)
		rc = db_exec(to, NULL, &m->e, "INSERT INTO profile_refs(profile, ref, missing)"
			     " VALUES(?,?,?) ON CONFLICT DO NOTHING", "Iti", id, db_text(q, 0),
			     (int)db_int(q, 1));
	db_done(q);
	if (rc == 0)
		rc = db_commit(to, &m->e);
	if (rc < 0) {
		db_rollback(to);
		return rc;
	}
	m->rows_copied++;
	return 0;
}

static int copy_profiles(struct migration *m)
{
	/* Two from the source: profiles are read on one while each one's
	 * labels and refs are read on the other. */
	struct db *pools[] = { m->from_profiles, m->from_profiles, m->to_profiles };
	struct db_conn *conns[3];
	int rc = get_conns(m, pools, conns, 3);
	if (rc < 0)
		return rc;
	struct db_conn *from = conns[0], *from2 = conns[1], *to = conns[2];
	struct db_rows *p = NULL;
	rc = db_query(from, &p, &m->e,
		      "SELECT id, raw, raw_size, sym, sym_size, received, t_start, t_end, samples,"
		      " sample_types, state FROM profiles ORDER BY id", "");
	while (rc == 0 && db_next(p) == 1)
		rc = copy_profile(m, from2, to, p);
	db_done(p);
	p = NULL;
	if (rc == 0)
		rc = db_query(from, &p, &m->e, "SELECT sha256, size, received FROM perf_maps", "");
	while (rc == 0 && db_next(p) == 1) {
		int64_t added = 0;
		rc = db_exec(to, &added, &m->e, "INSERT INTO perf_maps(sha256, size, received)"
			     " VALUES(?,?,?) ON CONFLICT DO NOTHING", "tII", db_text(p, 0),
			     db_int(p, 1), db_int(p, 2));
		m->rows_copied += added > 0;
		m->rows_present += added == 0;
	}
	db_done(p);
	put_conns(pools, conns, 3);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: debuginfod-lite migrate --data DIR --db URL --blobs URL\n"
		     "       [--s3-endpoint URL] [--s3-region NAME] [--s3-credentials FILE]\n"
		     "Copy a single-node data directory into a cluster's database and blob\n"
		     "store.  Safe to stop and run again (idempotent, resumable).\n");
}

int migrate_main(int argc, char **argv)
{
	const char *data = NULL, *db_url = NULL;
	struct blob_options to = { .s3_region = "us-east-1" };
	enum { O_DATA = 256, O_DB, O_BLOBS, O_S3END, O_S3REGION, O_S3CRED, O_HELP };
	static const struct option opts[] = {
		{ "data", required_argument, NULL, O_DATA },
		{ "db", required_argument, NULL, O_DB },
		{ "blobs", required_argument, NULL, O_BLOBS },
		{ "s3-endpoint", required_argument, NULL, O_S3END },
		{ "s3-region", required_argument, NULL, O_S3REGION },
		{ "s3-credentials", required_argument, NULL, O_S3CRED },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_DATA: data = optarg; break;
		case O_DB: db_url = optarg; break;
		case O_BLOBS: to.url = optarg; break;
		case O_S3END: to.s3_endpoint = optarg; break;
		case O_S3REGION: to.s3_region = optarg; break;
		case O_S3CRED: to.s3_credentials = optarg; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!data || !db_url || !to.url || optind < argc) {
		usage(stderr);
		return 2;
	}
	struct migration m = { 0 };
	char index_url[PATH_MAX + 16], profiles_url[PATH_MAX + 16], work[PATH_MAX];
	snprintf(index_url, sizeof(index_url), "sqlite:%s/index.sqlite", data);
	snprintf(profiles_url, sizeof(profiles_url), "sqlite:%s/profiles.sqlite", data);
	/* The target store's own working area (tmp/, cache/), not the
	 * source's: a server may still run on DIR. */
	snprintf(work, sizeof(work), "%s/migrate-work", data);
	struct blob_options from = { .url = NULL, .data_dir = work };
	to.data_dir = work;
	char from_url[PATH_MAX + 8];
	snprintf(from_url, sizeof(from_url), "file:%s", data);
	from.url = from_url;
	int rc = 0;
	if (access(data, R_OK) < 0)
		rc = err_set(&m.e, errno, "--data %s: %s", data, strerror(errno));
	if (rc == 0)
		rc = blobs_open(&m.from_blobs, &from, &m.e);
	if (rc == 0)
		rc = blobs_open(&m.to_blobs, &to, &m.e);
	if (rc == 0)
		rc = db_open(&m.from_index, index_url, 0, &m.e);
	if (rc == 0)
		rc = db_open(&m.from_profiles, profiles_url, 0, &m.e);
	if (rc == 0)
		rc = db_open(&m.to_index, db_url, 0, &m.e);
	if (rc == 0)
		rc = db_open(&m.to_profiles, db_url, 0, &m.e);
	if (rc == 0)
		rc = store_open(&m.to_store, m.to_index, m.to_blobs, &m.e);
	if (rc == 0)
		rc = profiles_schema(m.to_profiles, &m.e);
	if (rc == 0)
		rc = copy_area(&m, BLOB_AREA_ARTIFACTS);
	if (rc == 0)
		rc = copy_area(&m, BLOB_AREA_PROFILES);
	if (rc == 0)
		rc = copy_candidates(&m);
	if (rc == 0)
		rc = copy_profiles(&m);
	printf("migrate: blobs copied %llu, already there %llu; rows copied %llu, already there"
	       " %llu; scanned files imported %llu, gone %llu\n",
	       (unsigned long long)m.blobs_copied, (unsigned long long)m.blobs_present,
	       (unsigned long long)m.rows_copied, (unsigned long long)m.rows_present,
	       (unsigned long long)m.scanned_imported, (unsigned long long)m.scanned_gone);
	if (rc < 0)
		fprintf(stderr, "debuginfod-lite migrate: %s (run it again to resume)\n", m.e.msg);
	store_close(m.to_store);
	db_close(m.to_profiles);
	db_close(m.to_index);
	db_close(m.from_profiles);
	db_close(m.from_index);
	blobs_close(m.to_blobs);
	blobs_close(m.from_blobs);
	return rc < 0 ? 1 : 0;
}
