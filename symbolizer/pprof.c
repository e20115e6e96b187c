/* `symbolize pprof`: not written yet (issue 5, priority 4). */
#include "symbolizer/cli.h"

int symz_pprof_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "symbolize pprof: not implemented yet\n");
	return 2;
}
