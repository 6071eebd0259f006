// An LD_PRELOAD shim for the sanitizer runs: servers that load modules with RTLD_DEEPBIND (Redis
// 7.2+, Valkey) make AddressSanitizer abort at MODULE LOAD ("dlopen ... with RTLD_DEEPBIND flag
// which is incompatible with sanitizer runtime"). This dlopen drops that flag and calls the next
// dlopen, ASan's. Shield's module exports only RedisModule_OnLoad, so binding its symbols without
// DEEPBIND changes nothing. Preload it before libasan, with ASAN_OPTIONS=verify_asan_link_order=0:
//   gcc -shared -fPIC -o nodeepbind.so tests/support/nodeepbind.c -ldl
//   LD_PRELOAD=nodeepbind.so:$(gcc -print-file-name=libasan.so)
#define _GNU_SOURCE
#include <dlfcn.h>

typedef void* (*DlopenFn)(const char*, int);

void* dlopen(const char* file, int mode) {
  static DlopenFn next = 0;
  if (!next) next = (DlopenFn)dlsym(RTLD_NEXT, "dlopen");
  return next(file, mode & ~RTLD_DEEPBIND);
}
