/* SPDX-License-Identifier: MIT */
/* bench/scenarios.h: the scenarios ovc-bench runs, one bench/scn-<name>.c each. */
#ifndef OVC_BENCH_SCENARIOS_H
#define OVC_BENCH_SCENARIOS_H

#include "harness.h"

int ovcb_scn_fault_latency(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_fault_latency_help[];
int ovcb_scn_pager_latency(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_pager_latency_help[];
int ovcb_scn_pager_throughput(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_pager_throughput_help[];
int ovcb_scn_balloon_rate(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_balloon_rate_help[];
int ovcb_scn_cpu_fairness(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_cpu_fairness_help[];
int ovcb_scn_cpusched_sim(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_cpusched_sim_help[];
int ovcb_scn_memsched_sim(struct ovcb *b, int argc, char **argv);
extern const char ovcb_scn_memsched_sim_help[];

#endif
