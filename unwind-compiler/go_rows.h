/* Unwind rows for Go code, from .gopclntab instead of DWARF CFI.  Private
 * to unwind-compiler/ (compile.c merges them with the CFI rows).
 *
 * Go's linker emits no .eh_frame, and `-ldflags=-w` drops .debug_frame, but
 * every Go binary keeps .gopclntab: for each function, a pc-value table
 * (pcsp) giving the bytes the function has pushed at every PC.  That is all
 * an x86-64 walker needs:  CFA = RSP + pcsp + 8, return address at CFA - 8.
 * RBP is left unknown: Go's rows never use it, and nothing below Go code in
 * a Go stack does either.
 *
 * Ends of stack, as Go's own traceback (runtime/traceback.go) sees them:
 * functions flagged TOPFRAME (runtime.goexit at the bottom of every
 * goroutine, runtime.mstart and runtime.rt0_go at the bottom of g0 stacks,
 * runtime.sigtramp) and SPWRITE (systemstack, mcall, morestack, gogo: they
 * move SP to another stack, so pcsp cannot describe them) get an
 * "outermost frame" row: the walk stops there as complete, never with a
 * frame read from the wrong stack. */
#ifndef UNWIND_GO_ROWS_H
#define UNWIND_GO_ROWS_H

#include "common/gopclntab.h"
#include "unwind-compiler/cfi.h"
#include "unwind-compiler/unwind_table.h"

/* Remove from fdes (struct fde) every CFI FDE that overlaps a Go function
 * (Go's own .debug_frame says the same thing, with no end-of-stack marks),
 * then append one pseudo-FDE per Go function, with go_func set.
 * *go_funcs receives how many were added. */
int go_add_funcs(const struct go_pclntab *t, struct vec *fdes, size_t *go_funcs, struct err *e);

typedef int (*go_emit_fn)(void *arg, uint64_t pc, const struct unwind_rule *r);

/* Emit the rows of function idx (its pseudo-FDE's go_func - 1), in address
 * order; *rows counts the pcsp runs read. */
int go_func_rows(const struct go_pclntab *t, uint32_t idx, go_emit_fn emit, void *arg,
		 uint64_t *rows, struct err *e);

#endif
