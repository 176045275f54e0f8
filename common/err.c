#include "common/err.h"

#include <string.h>

#include "common/log.h"

static const char *const module_errs[] = {
	[FL_ECORRUPT - FL_EBASE] = "on-disk data is corrupt",
	[FL_EPROTO - FL_EBASE] = "protocol error",
	[FL_ELABEL - FL_EBASE] = "disk label refused",
	[FL_ESTALEDISK - FL_EBASE] = "disk is stale",
	[FL_EDEGRADED - FL_EBASE] = "too many failed disks",
	[FL_EREADONLY - FL_EBASE] = "volume is read-only",
	[FL_ECRASHED - FL_EBASE] = "simulated crash",
};

const char *fl_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err > FL_EBASE && err < FL_ELAST)
		return module_errs[err - FL_EBASE];
	return strerror(err);
}

int fl_err_origin(int err, const char *file, int line, const char *func)
{
	if (err != 0 && fl_log_get_level() >= FL_LOG_DEBUG)
		fl_log(FL_LOG_DEBUG, "err", "%s (%d) at %s:%d %s()",
		    fl_strerror(err), err, file, line, func);
	return err;
}
