/* What the C load generators of bench/ share: a monotonic clock and the order that sorts
 * latencies for their percentiles. */
#ifndef BENCH_LATENCY_H
#define BENCH_LATENCY_H
#include <time.h>

static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
#endif
