/* A closed-loop request/response load generator for the index-server benchmarks.
 *
 * Opens C connections to 127.0.0.1:PORT; each sends one request and waits until
 * RESPLEN response bytes arrived, then sends the next (no pipelining), for SECONDS
 * seconds or at most MAXREQ requests in all. Requests are read from a file, one per
 * request, separated by a NUL byte, and used round-robin. Prints one line:
 *   requests=N seconds=S rps=R p50_us=X p99_us=Y errors=E
 * Written in C so that the client is never the bottleneck of a Python server on 2 cores.
 *
 * With a seventh argument "perconn", connection i always sends request i % N instead
 * (each connection its own request: an ADD of a peer only that connection may own).
 *
 * Usage: loadgen PORT CONNECTIONS SECONDS MAXREQ RESPLEN REQUESTS_FILE [perconn]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"

typedef struct { int fd; long got; double sent_at; int req; } conn_t;

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: loadgen PORT C SECONDS MAXREQ RESPLEN FILE [perconn]\n");
        return 2;
    }
    int perconn = argc == 8 && strcmp(argv[7], "perconn") == 0;
    int port = atoi(argv[1]), nconn = atoi(argv[2]);
    double seconds = atof(argv[3]);
    long maxreq = atol(argv[4]), resplen = atol(argv[5]);
    FILE *f = fopen(argv[6], "rb");
    if (!f) { perror("requests"); return 2; }
    static char reqbuf[1 << 24];
    size_t total = fread(reqbuf, 1, sizeof reqbuf, f); fclose(f);
    int nreq = 0; char *starts[65536]; size_t lens[65536];
    for (size_t i = 0, s = 0; i < total && nreq < 65536; i++)
        if (reqbuf[i] == 0) { starts[nreq] = reqbuf + s; lens[nreq++] = i - s; s = i + 1; }
    if (!nreq) { fprintf(stderr, "no requests\n"); return 2; }
    struct rlimit rl = {nconn + 64, nconn + 64}; setrlimit(RLIMIT_NOFILE, &rl);
    int ep = epoll_create1(0);
    conn_t *c = calloc(nconn, sizeof *c);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    long cap = maxreq < 20000000 ? maxreq : 20000000;
    float *lat = malloc(sizeof(float) * cap);
    long done = 0, errors = 0, sent = 0;
    double start = now(), end = start + seconds;
    for (int i = 0; i < nconn; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c[i].fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        int one = 1; setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
    }
    start = now(); end = start + seconds;
    for (int i = 0; i < nconn && sent < maxreq; i++) {
        c[i].req = perconn ? i % nreq : (int)(sent % nreq); c[i].sent_at = now();
        if (write(c[i].fd, starts[c[i].req], lens[c[i].req]) < 0) errors++;
        sent++;
    }
    struct epoll_event evs[1024]; static char rbuf[1 << 16];
    int active = nconn;
    while (active > 0) {
        int n = epoll_wait(ep, evs, 1024, 1000);
        double t = now();
        for (int k = 0; k < n; k++) {
            conn_t *x = &c[evs[k].data.u32];
            ssize_t r = read(x->fd, rbuf, sizeof rbuf);
            if (r <= 0) { errors++; close(x->fd); active--; continue; }
            x->got += r;
            if (x->got < resplen) continue;
            if (x->got > resplen) errors++;
            if (done < cap) lat[done] = (float)((t - x->sent_at) * 1e6);
            done++; x->got = 0;
            if (t >= end || sent >= maxreq) { close(x->fd); active--; continue; }
            if (!perconn) x->req = (int)(sent % nreq);
            x->sent_at = t;
            if (write(x->fd, starts[x->req], lens[x->req]) < 0) errors++;
            sent++;
        }
    }
    double took = now() - start;
    long m = done < cap ? done : cap;
    qsort(lat, m, sizeof(float), cmp);
    printf("requests=%ld seconds=%.3f rps=%.0f p50_us=%.0f p99_us=%.0f errors=%ld\n", done, took,
           done / took, m ? lat[m / 2] : 0.0, m ? lat[(long)(m * 0.99)] : 0.0, errors);
    return 0;
}
