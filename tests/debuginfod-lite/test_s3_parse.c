/* The S3 client's readers of untrusted text (debuginfod-lite/s3.h):
 * ListObjectsV2 pages, error documents, credentials files.  The network
 * side is tested against Ceph RGW (tests/cluster/test_s3_rgw.sh) and a
 * fault-injecting fake (tests/debuginfod-lite/test_s3_faults.sh). */
#include "debuginfod-lite/s3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/check.h"

struct seen {
	int n;
	char keys[4][64];
	uint64_t sizes[4];
	char etags[4][80];
	int64_t mtimes[4];
	int stop_after;
};

static int on_entry(void *arg, const struct s3_list_entry *ent)
{
	struct seen *s = arg;
	if (s->n < 4) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", ent->key);
		s->sizes[s->n] = ent->size;
		snprintf(s->etags[s->n], sizeof(s->etags[0]), "%s", ent->etag);
		s->mtimes[s->n] = ent->mtime;
	}
	s->n++;
	return s->stop_after && s->n >= s->stop_after ? 1 : 0;
}

static int parse(const char *xml, struct seen *s, bool *truncated, char *token, size_t cap)
{
	memset(s, 0, sizeof(*s));
	return s3_list_parse(xml, strlen(xml), on_entry, s, truncated, token, cap);
}

int main(void)
{
	struct seen s;
	bool truncated;
	char token[128];

	const char *page =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>tok/+=</NextContinuationToken>"
		"<Contents><Key>blobs/a&amp;b</Key><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag>"
		"<Size>35000</Size><LastModified>2026-11-30T12:00:01.000Z</LastModified></Contents>"
		"<Contents><Key>blobs/c</Key><ETag>\"ffffffffffffffffffffffffffffffff-3\"</ETag>"
		"<Size>18446744073709551615</Size><Owner><ID>x</ID></Owner></Contents>"
		"</ListBucketResult>";
	int rc = parse(page, &s, &truncated, token, sizeof(token));
	CHECK(rc == 0 && s.n == 2, "s3_list_parse_two_entries", "rc %d n %d", rc, s.n);
	CHECK(strcmp(s.keys[0], "blobs/a&b") == 0 && s.sizes[0] == 35000 &&
		      strcmp(s.etags[0], "0123456789abcdef0123456789abcdef") == 0,
	      "s3_list_parse_entities_and_quotes", "key '%s' size %llu etag '%s'", s.keys[0],
	      (unsigned long long)s.sizes[0], s.etags[0]);
	CHECK(s.sizes[1] == UINT64_MAX && strcmp(s.etags[1], "ffffffffffffffffffffffffffffffff-3") == 0,
	      "s3_list_parse_multipart_etag_and_max_size", "size %llu etag '%s'",
	      (unsigned long long)s.sizes[1], s.etags[1]);
	CHECK(s.mtimes[0] == 1796040001 && s.mtimes[1] == 0, "s3_list_parse_last_modified",
	      "%lld %lld", (long long)s.mtimes[0], (long long)s.mtimes[1]);
	CHECK(truncated && strcmp(token, "tok/+=") == 0, "s3_list_parse_continuation",
	      "truncated %d token '%s'", truncated, token);

	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	rc = s3_list_parse(page, strlen(page), on_entry, &s, &truncated, token, sizeof(token));
	CHECK(rc == 1 && s.n == 1, "s3_list_parse_callback_stops", "rc %d n %d", rc, s.n);

	rc = parse("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>"
		   "0123456789</NextContinuationToken></ListBucketResult>",
		   &s, &truncated, token, 8);
	CHECK(rc == -EPROTO, "s3_list_parse_token_too_long", "rc %d", rc);

	rc = parse("<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListBucketResult><Contents><Key>&a;</Key>"
		   "<Size>1</Size></Contents></ListBucketResult>",
		   &s, &truncated, token, sizeof(token));
	CHECK(rc == -EPROTO && s.n == 0, "s3_list_parse_refuses_doctype", "rc %d n %d", rc, s.n);

	char *big = malloc(3000);
	strcpy(big, "<ListBucketResult><Contents><Key>");
	memset(big + strlen(big), 'k', 1100);
	strcpy(big + 33 + 1100, "</Key><Size>1</Size></Contents></ListBucketResult>");
	rc = parse(big, &s, &truncated, token, sizeof(token));
	CHECK(rc == -EPROTO && s.n == 0, "s3_list_parse_key_too_long", "rc %d n %d", rc, s.n);
	free(big);

	rc = parse("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
		   "</ListBucketResult>",
		   &s, &truncated, token, sizeof(token));
	CHECK(rc == -EPROTO, "s3_list_parse_negative_size", "rc %d", rc);
	rc = parse("<ListBucketResult><Contents><Key>k</Key>", &s, &truncated, token,
		   sizeof(token));
	CHECK(rc == -EPROTO && s.n == 0, "s3_list_parse_unclosed", "rc %d n %d", rc, s.n);

	char code[32];
	const char *slow = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
			   "<Message>Please reduce your request rate.</Message></Error>";
	s3_error_code_parse(slow, strlen(slow), code, sizeof(code));
	CHECK(strcmp(code, "SlowDown") == 0, "s3_error_code", "'%s'", code);
	s3_error_code_parse("<html>", 6, code, sizeof(code));
	CHECK(code[0] == '\0', "s3_error_code_absent", "'%s'", code);

	char *k, *sec, *tok;
	const char *creds = "# shared credentials\n[other]\naws_access_key_id = NOPE\n"
			    "[default]\naws_access_key_id = AKIAEXAMPLE\n"
			    "aws_secret_access_key=s3cr3t/with=signs\n";
	rc = s3_credentials_parse(creds, strlen(creds), "default", &k, &sec, &tok);
	CHECK(rc == 0 && strcmp(k, "AKIAEXAMPLE") == 0 && strcmp(sec, "s3cr3t/with=signs") == 0 &&
		      !tok,
	      "s3_credentials_default_profile", "rc %d", rc);
	if (rc == 0) {
		free(k);
		free(sec);
	}
	rc = s3_credentials_parse(creds, strlen(creds), "other", &k, &sec, &tok);
	CHECK(rc == -ENOENT, "s3_credentials_incomplete_profile", "rc %d", rc);
	rc = s3_credentials_parse(creds, strlen(creds), "missing", &k, &sec, &tok);
	CHECK(rc == -ENOENT, "s3_credentials_missing_profile", "rc %d", rc);

	CHECK(s3_unavailable(-EAGAIN) && s3_unavailable(-ETIMEDOUT) && !s3_unavailable(-ENOENT) &&
		      !s3_unavailable(-EACCES),
	      "s3_unavailable", "classification");
	CHECK_EXIT();
}
