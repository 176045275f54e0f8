/*
 * admin/filerctl_main.c: main() of filerctl, the administration CLI
 * (filerctl(8)); everything is in admin/cli.c.
 */
#include "admin/adm_impl.h"

int main(int argc, char **argv)
{
	return adm_cli_main(argc, argv);
}
