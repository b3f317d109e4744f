/* The passthrough file system as the protocol room sees it: its functions in the table of fs.h. */
#include "fs/fs_internal.h"

const struct fs_ops fs_passthrough_ops = { FS_PASSTHROUGH_OPS_FIELDS };
