/* The frame JSON of `symbolize --json` and of POST /symbolize, written in
 * one place so the two cannot drift apart (docs/symbolizer.md). */
#include "symbolizer/symbolizer.h"

#include <stdio.h>
#include <string.h>

static void put(symz_write_fn w, void *ctx, const char *s)
{
	w(ctx, s, strlen(s));
}

static void put_u64(symz_write_fn w, void *ctx, uint64_t v, bool hex)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = hex ? "0123456789abcdef"[v & 15] : (char)('0' + v % 10);
		v = hex ? v >> 4 : v / 10;
	} while (v);
	w(ctx, tmp + sizeof(tmp) - n, (size_t)n);
}

/* Names come from DWARF and symbol tables, which may hold any bytes: a
 * byte that starts no well-formed UTF-8 sequence is written as \ufffd, so
 * every answer parses (docs/symbolizer.md "JSON output"). */
void symz_write_json_string(symz_write_fn w, void *ctx, const char *s)
{
	if (!s) {
		w(ctx, "null", 4);
		return;
	}
	w(ctx, "\"", 1);
	const char *run = s;
	size_t left = strlen(s);
	while (left) {
		unsigned char c = (unsigned char)*s;
		size_t seq = c < 0x80 ? 1 : utf8_sequence((const unsigned char *)s, left);
		if (seq > 1 || (seq == 1 && c >= 0x20 && c != '"' && c != '\\')) {
			s += seq;
			left -= seq;
			continue;
		}
		w(ctx, run, (size_t)(s - run));
		char esc[8];
		if (seq == 0) {
			w(ctx, "\\ufffd", 6);
		} else if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			w(ctx, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			w(ctx, esc, 6);
		}
		s++;
		left--;
		run = s;
	}
	w(ctx, run, (size_t)(s - run));
	w(ctx, "\"", 1);
}

static const char *basename_of(const char *p)
{
	const char *s = p ? strrchr(p, '/') : NULL;
	return s ? s + 1 : p;
}

void symz_write_frames_json(symz_write_fn w, void *ctx, const struct symz_frame *fr, size_t n,
			    unsigned flags)
{
	w(ctx, "[", 1);
	for (size_t i = 0; i < n; i++) {
		const struct symz_frame *f = &fr[i];
		put(w, ctx, i ? ",{\"function\":" : "{\"function\":");
		symz_write_json_string(w, ctx, f->function);
		put(w, ctx, ",\"file\":");
		symz_write_json_string(w, ctx, f->file && (flags & SYMZ_JSON_BASENAMES) ? basename_of(f->file)
										 : f->file);
		put(w, ctx, ",\"line\":");
		if (f->line)
			put_u64(w, ctx, f->line, false);
		else
			put(w, ctx, "null");
		put(w, ctx, ",\"column\":");
		if (f->column)
			put_u64(w, ctx, f->column, false);
		else
			put(w, ctx, "null");
		put(w, ctx, f->inlined ? ",\"inlined\":true" : ",\"inlined\":false");
		if (flags & SYMZ_JSON_VERBOSE) {
			put(w, ctx, ",\"linkage_name\":");
			symz_write_json_string(w, ctx, f->linkage_name);
			put(w, ctx, ",\"start_address\":");
			if (f->entry) {
				w(ctx, "\"0x", 3);
				put_u64(w, ctx, f->entry, true);
				w(ctx, "\"", 1);
			} else {
				put(w, ctx, "null");
			}
			put(w, ctx, ",\"decl_line\":");
			if (f->decl_line)
				put_u64(w, ctx, f->decl_line, false);
			else
				put(w, ctx, "null");
			put(w, ctx, f->from_symtab ? ",\"from_symtab\":true" : ",\"from_symtab\":false");
		}
		w(ctx, "}", 1);
	}
	w(ctx, "]", 1);
}
