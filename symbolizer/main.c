/* symbolize: addresses on stdin -> functions, files, lines (docs/symbolizer.md).
 * Thin: the work is in the library (symbolizer.h) and cli.c. */
#include "symbolizer/cli.h"

int main(int argc, char **argv)
{
	return symz_cli_main(argc, argv);
}
