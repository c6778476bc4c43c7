/*
 * fuzz.h - what every fuzz target in tests/fuzz shares: the libFuzzer entry
 * point (also driven by replay_main.c without a fuzzing engine) and a check
 * that stops the process when a property of the code under test fails, so
 * libFuzzer and the replay test both report it as a crash.
 */
#ifndef CW_TESTS_FUZZ_H
#define CW_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input through the target. Returns 0 (libFuzzer's convention). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Unlike assert, stays on in every build type: it is the whole point. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
