/* debuginfod-lite migrate (migrate.c): a single-node data directory into
 * a cluster's storage.  Returns the exit status. */
#ifndef DEBUGINFOD_LITE_MIGRATE_H
#define DEBUGINFOD_LITE_MIGRATE_H

int migrate_main(int argc, char **argv);

#endif
