/*
 * avbench: the guest side of bench/run. A static program that runs inside the Linux guest (as root, from
 * /init) and measures with the guest's own clock (CLOCK_MONOTONIC):
 *
 *   cpu     an integer checksum, a sort and a memcpy/strlen mix (glibc's SSE2 string functions);
 *   io      ns per `in`/`out` on the COM1 scratch register (0x3FF) and per MMIO read/write of an HPET
 *           register, through ioperm() and an mmap of /dev/mem;
 *   irq     wake-ups per second of a short clock_nanosleep loop (each one a LAPIC one-shot timer
 *           interrupt) with the local-timer count of /proc/interrupts over the same interval, and the
 *           overshoot of a 1 ms clock_nanosleep (the latency from timer expiry to the task running);
 *   blk     virtio-blk: busybox dd of 256 MiB to /dev/null, O_DIRECT sequential read and write MB/s,
 *           O_DIRECT 4 KiB random read IOPS.
 *
 * Every result is one line "AVB key value unit". Before and after each measured section it prints
 * "AVB-SYNC label" and waits for a line on stdin, so the host can read its own counters (instructions,
 * device accesses) at exactly the section's bounds; a host that only wants the numbers answers at once.
 *
 * Usage: avbench SCALE [case...]   (SCALE multiplies the CPU work; cases default to all four)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void sync_point(const char *label)
{
    char line[64];
    printf("AVB-SYNC %s\n", label);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin)) { /* no host: go on */ }
}

static void result(const char *key, double value, const char *unit)
{
    printf("AVB %s %.6g %s\n", key, value, unit);
    fflush(stdout);
}

/* Keeps a computed value alive so the compiler cannot drop the work. */
static volatile uint64_t sink;

/* ---- cpu ---- */

static uint64_t checksum(const uint32_t *a, size_t n, int rounds)
{
    uint64_t s1 = 1, s2 = 0, x = 88172645463325252ull;
    for (int r = 0; r < rounds; r++)
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            s1 = (s1 + (a[i] ^ (uint32_t)x)) % 4294967291u;
            s2 = (s2 + s1) % 4294967291u;
        }
    return (s2 << 32) | s1;
}

static void sift(uint32_t *a, size_t root, size_t n)
{
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n) return;
        if (c + 1 < n && a[c + 1] > a[c]) c++;
        if (a[root] >= a[c]) return;
        uint32_t t = a[root]; a[root] = a[c]; a[c] = t;
        root = c;
    }
}

/* Heapsort: data-dependent loads over the whole array (memory-bound once it outgrows the caches). */
static void heapsort32(uint32_t *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n);
    for (size_t end = n; end-- > 1;) {
        uint32_t t = a[0]; a[0] = a[end]; a[end] = t;
        sift(a, 0, end);
    }
}

static void fill(uint32_t *a, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; a[i] = seed; }
}

static void case_cpu(int scale)
{
    size_t n = 1 << 16;
    uint32_t *a = malloc(n * sizeof *a);
    fill(a, n, 1);

    sync_point("cpu.checksum:begin");
    double t = now();
    sink = checksum(a, n, 16 * scale);
    t = now() - t;
    sync_point("cpu.checksum:end");
    result("cpu.checksum.ms", t * 1e3, "ms");
    free(a);

    n = 1 << 17;
    a = malloc(n * sizeof *a);
    sync_point("cpu.sort:begin");
    t = now();
    for (int r = 0; r < scale; r++) { fill(a, n, r + 7); heapsort32(a, n); }
    t = now() - t;
    sync_point("cpu.sort:end");
    for (size_t i = 1; i < n; i++) if (a[i - 1] > a[i]) { result("cpu.sort.unsorted", i, "index"); break; }
    result("cpu.sort.ms", t * 1e3, "ms");
    free(a);

    /* Strings of 1..4096 bytes copied and measured: glibc picks its SSE2 memcpy/strlen. */
    size_t size = 1 << 20;
    char *src = malloc(size + 4096), *dst = malloc(size + 4096);
    for (size_t i = 0; i < size + 4096; i++) src[i] = 'a' + (char)(i % 26);
    for (size_t i = 4095; i < size + 4096; i += 4096 + (i % 61)) src[i] = 0;
    sync_point("cpu.memstr:begin");
    t = now();
    uint64_t total = 0;
    for (int r = 0; r < 48 * scale; r++) {
        memcpy(dst, src, size);
        for (size_t off = r; off < size; off += 977) total += strlen(dst + off) & 0xFFF;
    }
    t = now() - t;
    sync_point("cpu.memstr:end");
    sink = total;
    result("cpu.memstr.ms", t * 1e3, "ms");
    free(src); free(dst);
}

/* ---- io ---- */

#define UART_SCRATCH 0x3FF
#define HPET_BASE 0xFED00000ul
#define HPET_COUNTER 0xF0
#define HPET_T2_COMPARATOR 0x148   /* timer 2 is unused by Linux: writing its comparator is harmless */

static void case_io(int n)
{
    if (ioperm(0x3F8, 8, 1) != 0) { perror("avbench: ioperm"); result("io.error", 1, "ioperm"); return; }
    uint32_t v = 0;
    sync_point("io.in:begin");
    double t = now();
    for (int i = 0; i < n; i++) v += inb(UART_SCRATCH);
    t = now() - t;
    sync_point("io.in:end");
    result("io.in.ns", t * 1e9 / n, "ns");

    sync_point("io.out:begin");
    t = now();
    for (int i = 0; i < n; i++) outb((uint8_t)i, UART_SCRATCH);
    t = now() - t;
    sync_point("io.out:end");
    result("io.out.ns", t * 1e9 / n, "ns");
    sink = v;

    int fd = open("/dev/mem", O_RDWR | O_SYNC);
    void *map = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, HPET_BASE);
    if (map == MAP_FAILED) { perror("avbench: /dev/mem HPET"); result("io.error", 2, "devmem"); return; }
    volatile uint32_t *counter = (volatile uint32_t *)((char *)map + HPET_COUNTER);
    volatile uint32_t *comparator = (volatile uint32_t *)((char *)map + HPET_T2_COMPARATOR);
    uint32_t first = *counter, last = 0;
    sync_point("io.mmio-read:begin");
    t = now();
    for (int i = 0; i < n; i++) last = *counter;
    t = now() - t;
    sync_point("io.mmio-read:end");
    result("io.mmio-read.ns", t * 1e9 / n, "ns");
    result("io.hpet-ticks", (double)(uint32_t)(last - first), "ticks");

    sync_point("io.mmio-write:begin");
    t = now();
    for (int i = 0; i < n; i++) *comparator = 0xFFFFFFF0u - (uint32_t)i;
    t = now() - t;
    sync_point("io.mmio-write:end");
    result("io.mmio-write.ns", t * 1e9 / n, "ns");
    munmap(map, 4096);
    close(fd);
}

/* ---- irq ---- */

/* The "LOC" (local APIC timer) line of /proc/interrupts, summed over CPUs. */
static long local_timer_interrupts(void)
{
    FILE *f = fopen("/proc/interrupts", "r");
    char line[1024];
    long sum = -1;
    while (f && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ') p++;
        if (strncmp(p, "LOC:", 4) != 0) continue;
        p += 4;
        sum = 0;
        for (;;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            sum += v;
            p = end;
        }
    }
    if (f) fclose(f);
    return sum;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void case_irq(double seconds, int samples)
{
    struct timespec short_sleep = { 0, 20000 };   /* 20 µs: each sleep arms the LAPIC one-shot timer */
    long loc0 = local_timer_interrupts();
    sync_point("irq.rate:begin");
    double t0 = now(), t = t0;
    long wakeups = 0;
    while ((t = now()) - t0 < seconds) { clock_nanosleep(CLOCK_MONOTONIC, 0, &short_sleep, NULL); wakeups++; }
    sync_point("irq.rate:end");
    long loc1 = local_timer_interrupts();
    result("irq.wakeups-per-s", wakeups / (t - t0), "1/s");
    result("irq.local-timer-per-s", (loc1 - loc0) / (t - t0), "1/s");

    double *lat = malloc(samples * sizeof *lat);
    struct timespec ms = { 0, 1000000 };
    sync_point("irq.latency:begin");
    for (int i = 0; i < samples; i++) {
        double s = now();
        clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL);
        lat[i] = (now() - s - 1e-3) * 1e6;
    }
    sync_point("irq.latency:end");
    qsort(lat, samples, sizeof *lat, cmp_double);
    result("irq.sleep-overshoot-median.us", lat[samples / 2], "us");
    result("irq.sleep-overshoot-p90.us", lat[samples * 9 / 10], "us");
    free(lat);
}

/* ---- blk ---- */

static int run_dd(const char *device, int mib)
{
    char ifarg[128], countarg[32];
    snprintf(ifarg, sizeof ifarg, "if=%s", device);
    snprintf(countarg, sizeof countarg, "count=%d", mib);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);   /* dd's own summary line would interleave with ours */
        execl("/bin/dd", "dd", ifarg, "of=/dev/null", "bs=1M", countarg, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void case_blk(const char *device, int read_mib, int write_mib, int random_reads)
{
    const size_t chunk = 1 << 20;
    sync_point("blk.dd:begin");
    double t = now();
    int rc = run_dd(device, read_mib);
    t = now() - t;
    sync_point("blk.dd:end");
    if (rc != 0) { result("blk.error", rc, "dd"); return; }
    result("blk.dd-read.MBps", read_mib * 1.048576 / t, "MB/s");

    int fd = open(device, O_RDWR | O_DIRECT);
    if (fd < 0) { perror("avbench: open disk"); result("blk.error", 1, "open"); return; }
    char *buf;
    if (posix_memalign((void **)&buf, 4096, chunk) != 0) return;
    sync_point("blk.seqread:begin");
    t = now();
    for (int i = 0; i < read_mib; i++)
        if (pread(fd, buf, chunk, (off_t)i * chunk) != (ssize_t)chunk) { result("blk.error", 2, "read"); return; }
    t = now() - t;
    sync_point("blk.seqread:end");
    result("blk.seqread.MBps", read_mib * 1.048576 / t, "MB/s");

    /* Writes go after the read area, so the image's first read_mib MiB stay as the host made them. */
    memset(buf, 0x5A, chunk);
    sync_point("blk.seqwrite:begin");
    t = now();
    for (int i = 0; i < write_mib; i++)
        if (pwrite(fd, buf, chunk, (off_t)(read_mib + i) * chunk) != (ssize_t)chunk) { result("blk.error", 3, "write"); return; }
    fdatasync(fd);
    t = now() - t;
    sync_point("blk.seqwrite:end");
    result("blk.seqwrite.MBps", write_mib * 1.048576 / t, "MB/s");

    uint32_t seed = 12345;
    long blocks = (long)read_mib * 256;
    sync_point("blk.randread:begin");
    t = now();
    for (int i = 0; i < random_reads; i++) {
        seed = seed * 1664525u + 1013904223u;
        if (pread(fd, buf, 4096, (off_t)(seed % blocks) * 4096) != 4096) { result("blk.error", 4, "randread"); return; }
    }
    t = now() - t;
    sync_point("blk.randread:end");
    result("blk.randread.iops", random_reads / t, "1/s");
    free(buf);
    close(fd);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int scale = argc > 1 ? atoi(argv[1]) : 1;
    if (scale < 1) scale = 1;
    static char *every[] = { "cpu", "io", "irq", "blk" };
    char **cases = argc > 2 ? argv + 2 : every;
    int count = argc > 2 ? argc - 2 : 4;
    for (int i = 0; i < count; i++) {
        if (!strcmp(cases[i], "cpu")) case_cpu(scale);
        else if (!strcmp(cases[i], "io")) case_io(4000);
        else if (!strcmp(cases[i], "irq")) case_irq(1.0, 100);
        else if (!strcmp(cases[i], "blk")) case_blk("/dev/vda", 256, 64, 1000);
        else fprintf(stderr, "avbench: unknown case %s\n", cases[i]);
    }
    printf("AVB-DONE\n");
    fflush(stdout);
    return 0;
}
