/* Preloaded into redis-server by bench/instructions.py: reads of /dev/urandom return the same
 * bytes in every run. The server seeds its hash tables' hash function from /dev/urandom at
 * start, and where a key or command name lands in its table's chains changes the instructions a
 * lookup runs; with a fixed seed, two runs of the same calls count the same instructions. Only for
 * measuring: never load it into a server that serves anything. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static FILE *FixedBytes(void) {
  static char bytes[4096];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (char)(i * 131 + 7);
  return fmemopen(bytes, sizeof bytes, "r");
}

static FILE *Open(const char *name, const char *path, const char *mode) {
  if (path != NULL && strcmp(path, "/dev/urandom") == 0) return FixedBytes();
  FILE *(*real)(const char *, const char *) = (FILE * (*)(const char *, const char *)) dlsym(RTLD_NEXT, name);
  return real(path, mode);
}

FILE *fopen(const char *path, const char *mode) { return Open("fopen", path, mode); }
FILE *fopen64(const char *path, const char *mode) { return Open("fopen64", path, mode); }
