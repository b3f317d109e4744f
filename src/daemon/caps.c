#include "daemon/caps.h"

#include <cap-ng.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* What serving a guest as root needs: ownership, permission overrides for the guest's own checks, setuid and
 * setgid bits, per-thread fsuid/fsgid and groups, device nodes, file capabilities (as virtiofsd keeps). */
static const int kept[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETGID, CAP_SETUID,
                            CAP_MKNOD, CAP_SETFCAP, CAP_LEASE /* DAX: leases on guests' mapped files */ };

/* Applies "+cap,-cap" items to the pending libcap-ng state; apply=false only validates. */
static int apply_modcaps(const char *modcaps, bool apply)
{
	if (!modcaps || !*modcaps)
		return 0;
	char *copy = strdup(modcaps), *save = NULL;
	int rc = 0;
	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
		char sign = item[0];
		int cap = (sign == '+' || sign == '-') ? capng_name_to_capability(item + 1) : -1;
		if (cap < 0) {
			log_err("--modcaps: '%s' is not +capability or -capability", item);
			rc = -EINVAL;
		} else if (apply && capng_update(sign == '+' ? CAPNG_ADD : CAPNG_DROP,
		                                 CAPNG_EFFECTIVE | CAPNG_PERMITTED, (unsigned)cap) < 0) {
			rc = -EINVAL;
		}
	}
	free(copy);
	return rc;
}

int caps_check_modcaps(const char *modcaps)
{
	return apply_modcaps(modcaps, false);
}

int caps_drop(const char *modcaps, bool file_handles)
{
	/* Not root: nothing to drop, unless this is a user namespace, whose creator holds every capability in it
	 * whatever its uid there (when --uid-map maps no uid 0). */
	if (geteuid() != 0 && (capng_get_caps_process() < 0 || capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE))
		return 0;
	capng_clear(CAPNG_SELECT_BOTH);
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, (unsigned)kept[i]);
	if (file_handles)
		capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_DAC_READ_SEARCH);
	int rc = apply_modcaps(modcaps, true);
	if (rc < 0)
		return rc;
	if (capng_apply(CAPNG_SELECT_BOTH) < 0) {
		log_err("dropping capabilities failed");
		return -EPERM;
	}
	return 0;
}
