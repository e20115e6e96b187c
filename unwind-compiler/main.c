/* unwind-compile: the command-line face of the unwind-compiler library. */
#include "unwind-compiler/unwind_compiler.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TABLE_FILE (1u << 30)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: unwind-compile ELF -o TABLE     compile ELF's CFI into an unwind table\n"
		"       unwind-compile --dump ELF|TABLE print the table, one row per line\n"
		"       unwind-compile --stats ELF      print compile statistics as JSON\n"
		"       unwind-compile --verify ELF     compare every row with libdw\n"
		"options:\n"
		"  --no-debug-frame   use .eh_frame only\n"
		"  --max-report N     with --verify: differences to print (default 20)\n"
		"  -h, --help         this text\n"
		"The table format and the dump notation: docs/unwind-table-format.md\n");
}

static int fail(const char *path, const struct err *e)
{
	fprintf(stderr, "unwind-compile: %s: %s\n", path, e->msg[0] ? e->msg : "failed");
	return 1;
}

static bool is_table_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint32_t magic = 0;
	if (!f)
		return false;
	bool ok = fread(&magic, 4, 1, f) == 1 && magic == UNWIND_TABLE_MAGIC;
	fclose(f);
	return ok;
}

static void print_stats(const char *path, const struct elf_object *o, const struct unwind_table *t)
{
	const struct unwind_stats *s = &t->stats;
	char hex[BUILD_ID_HEX_MAX];
	build_id_to_hex(o->build_id, o->build_id_len, hex);
	printf("{\"object\":\"");
	for (const char *p = path; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	printf("\",\"build_id\":%s%s%s,\"identity\":\"%s\",\"fdes\":%llu,\"fde_gaps\":%llu,\"cfi_rows\":%llu,\"unsupported_rows\":%llu,"
	       "\"entries\":%llu,\"rules\":%llu,\"pages\":%llu,\"table_bytes\":%llu,"
	       "\"bytes_per_row\":%.3f,\"compile_ms\":%.3f}\n",
	       o->build_id_len ? "\"" : "", o->build_id_len ? hex : "null", o->build_id_len ? "\"" : "",
	       elf_id_kind_name(o->id_kind),
	       (unsigned long long)s->fdes, (unsigned long long)s->fde_gaps,
	       (unsigned long long)s->cfi_rows,
	       (unsigned long long)s->unsupported_rows, (unsigned long long)s->entries,
	       (unsigned long long)s->rules, (unsigned long long)s->pages,
	       (unsigned long long)s->table_bytes,
	       s->cfi_rows ? (double)s->table_bytes / (double)s->cfi_rows : 0.0, s->compile_ms);
}

int main(int argc, char **argv)
{
	enum { COMPILE, DUMP, STATS, VERIFY } mode = COMPILE;
	struct unwind_compile_options opt = {0};
	const char *output = NULL;
	unsigned max_report = 20;
	static const struct option longopts[] = {
		{"dump", no_argument, NULL, 'd'},   {"stats", no_argument, NULL, 's'},
		{"verify", no_argument, NULL, 'v'}, {"output", required_argument, NULL, 'o'},
		{"no-debug-frame", no_argument, NULL, 'n'},
		{"max-report", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},   {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': mode = DUMP; break;
		case 's': mode = STATS; break;
		case 'v': mode = VERIFY; break;
		case 'o': output = optarg; break;
		case 'n': opt.no_debug_frame = true; break;
		case 'm': max_report = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "unwind-compile: expected exactly one input file (see --help)\n");
		return 2;
	}
	const char *path = argv[optind];
	if (mode == COMPILE && !output) {
		fprintf(stderr, "unwind-compile: -o TABLE is required to compile (or use --dump/--stats/--verify)\n");
		return 2;
	}
	struct err e = {0};

	if (mode == DUMP && is_table_file(path)) {
		uint8_t *buf;
		size_t size;
		struct unwind_view v;
		if (read_file(path, MAX_TABLE_FILE, &buf, &size, &e) ||
		    unwind_table_open(&v, buf, size, &e))
			return fail(path, &e);
		unwind_table_dump(&v, stdout);
		free(buf);
		return ferror(stdout) ? 1 : 0;
	}

	struct elf_object o;
	if (elf_object_open(&o, path, &e))
		return fail(path, &e);
	struct unwind_table t;
	if (unwind_compile(&o, &opt, &t, &e)) {
		elf_object_close(&o);
		return fail(path, &e);
	}
	int status = 0;
	struct unwind_view v;
	if (unwind_table_open(&v, t.data, t.size, &e)) {
		status = fail(path, &e); /* our own output failed validation: a bug */
	} else if (mode == COMPILE) {
		if (write_file_atomic(output, t.data, t.size, 0644, &e))
			status = fail(output, &e);
	} else if (mode == DUMP) {
		unwind_table_dump(&v, stdout);
	} else if (mode == STATS) {
		print_stats(path, &o, &t);
	} else {
		uint64_t checked = 0;
		long diffs = unwind_verify(&o, &v, stdout, max_report, &checked, &e);
		if (diffs < 0) {
			status = fail(path, &e);
		} else {
			printf("%s: %llu rows checked against libdw, %ld differ\n", path,
			       (unsigned long long)checked, diffs);
			status = diffs ? 1 : 0;
		}
	}
	unwind_table_free(&t);
	elf_object_close(&o);
	return status;
}
