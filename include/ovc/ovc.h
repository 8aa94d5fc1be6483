/* SPDX-License-Identifier: MIT */
/* ovc: the whole public API. */
#ifndef OVC_OVC_H
#define OVC_OVC_H

#include <ovc/common.h>
#include <ovc/core.h>
#include <ovc/host.h>
#include <ovc/vcpu.h>
#include <ovc/virtio.h>
#include <ovc/balloon.h>
#include <ovc/pager.h>
#include <ovc/policy.h>
#include <ovc/stats.h>
#include <ovc/snapshot.h>
#include <ovc/dedup.h>
#include <ovc/memsched.h>
#include <ovc/export.h>
#include <ovc/ctl.h>
#include <ovc/cpusched.h>

#endif /* OVC_OVC_H */
