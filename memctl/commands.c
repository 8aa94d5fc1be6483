// SPDX-License-Identifier: MIT
/* memctl/commands.c: the table of commands; one line per cmd-NAME.c. */
#include <string.h>

#include "memctl.h"

const struct mc_cmd mc_cmds[] = {
	{ "status", mc_cmd_status, "",
	  "the host: memory, free-memory state, totals over the VMs",
	  "Host memory (total, available, swap), its free-memory state (high, soft,\n"
	  "hard, low: as ESX, by the share of memory available), PSI memory\n"
	  "pressure, and what the VMs hold in all." },
	{ "vm", mc_cmd_vm, "list | show NAME",
	  "list the VMs, or show one VM in full",
	  "vm list: one row per VM: memory by state, working set, vCPUs, %USED, %RDY.\n"
	  "vm show NAME: every statistic of one VM, its tunables and its vCPUs." },
	{ "get", mc_cmd_get, "NAME [KEY...]",
	  "print a VM's tunables (all, or the KEYs)",
	  "Keys are listed by \"memctl tunables\"." },
	{ "set", mc_cmd_set, "[NAME] KEY=VALUE...",
	  "change tunables of VM NAME (or host-wide ones without NAME)",
	  "All the KEY=VALUE pairs are checked before any is applied: a refused\n"
	  "request changes nothing. Sizes take K, M, G, T suffixes (512M, 1.5G).\n"
	  "Example: memctl set web mem.shares=2000 mem.limit=1G cpu.limit=1.5\n"
	  "Keys are listed by \"memctl tunables\"." },
	{ "balloon", mc_cmd_balloon, "NAME SIZE",
	  "ask VM NAME's balloon to hold SIZE (0 to deflate)",
	  "The same as \"memctl set NAME balloon.target=SIZE\"." },
	{ "tunables", mc_cmd_tunables, "",
	  "list every tunable: key, type, range, what it does", NULL },
	{ "metrics", mc_cmd_metrics, "",
	  "print the statistics in Prometheus text format",
	  "Names follow Prometheus conventions: _bytes, _seconds, _total for\n"
	  "counters; VMs are labelled vm=\"NAME\", vCPUs vcpu=\"N\"." },
	{ "top", mc_cmd_top, "[-d SECS] [-n N] [-b] [-e] [-o COL]",
	  "watch the VMs live (esxtop's memory and CPU columns)",
	  "  -d SECS        seconds between updates (default 2)\n"
	  "  -n ITERATIONS  stop after this many updates\n"
	  "  -b             batch mode: CSV on stdout, one row per VM per update\n"
	  "  -o COLUMN      sort by COLUMN (default RESID)\n"
	  "Keys: q quit, < > sort column, r reverse, e expand vCPUs, space update.\n"
	  "Columns: MEMSZ guest RAM, TARGET the schedulers' memory target, RESID\n"
	  "resident, WSS working-set estimate, MCTLSZ ballooned, SHRD shared, ZERO\n"
	  "zero, ZIP compressed, SWCUR swapped, SWR/s SWW/s MB/s read from and\n"
	  "written to the stores, FLT/s faults served per second, %USED %RDY\n"
	  "%MLMTD CPU used, ready, held back by the CPU limit (100 = one CPU)." },
	{ "help", mc_cmd_help, "[COMMAND]", "this list, or one command in full", NULL },
};

const unsigned int mc_ncmds = sizeof(mc_cmds) / sizeof(mc_cmds[0]);

const struct mc_cmd *mc_find(const char *name)
{
	unsigned int i;

	for (i = 0; i < mc_ncmds; i++) {
		if (!strcmp(mc_cmds[i].name, name))
			return &mc_cmds[i];
	}
	return NULL;
}
