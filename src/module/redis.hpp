// Includes redismodule.h for the glue's translation units. module.cpp defines the module API's
// function pointers (SHIELD_DEFINES_MODULE_API); every other unit only declares them.
#pragma once

#ifndef SHIELD_DEFINES_MODULE_API
#define REDISMODULE_API extern
#endif
#include "redismodule.h"
