/* util/: errors, rng, UTF-8, sha256, line and JSONL reading. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/err.h"
#include "util/lines.h"
#include "util/rng.h"
#include "util/sys.h"
#include "util/text.h"
#include "util/words.h"
#include "tests/unit/files.h"

Test(err, prefix_and_codes) {
    Err e = {0};
    cr_assert_eq(err_set(&e, RLHF_EFORMAT, "bad %d", 3), RLHF_EFORMAT);
    err_prefix(&e, "%s:%d: ", "f.jsonl", 7);
    cr_assert_str_eq(e.msg, "f.jsonl:7: bad 3");
    cr_assert_eq(err_set(NULL, RLHF_EIO, "x"), RLHF_EIO);
}

Test(rng, reproducible_and_uniform) {
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) cr_assert_eq(rng_u64(&a), rng_u64(&b));
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) counts[rng_below(&a, 10)]++;
    for (int i = 0; i < 10; i++) cr_assert(counts[i] > 9500 && counts[i] < 10500, "bucket %d: %d", i, counts[i]);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) {
        double x = rng_normal(&a);
        s += x, s2 += x * x;
    }
    cr_assert(fabs(s / 100000) < 0.02 && fabs(s2 / 100000 - 1) < 0.03);
    int v[5] = {1, 2, 3, 4, 5};
    rng_shuffle(&a, v, 5, sizeof v[0]);
    int sum = 0;
    for (int i = 0; i < 5; i++) sum += v[i];
    cr_assert_eq(sum, 15);
}

Test(text, utf8_validation) {
    cr_assert_eq(utf8_invalid_at("hello", 5), -1);
    cr_assert_eq(utf8_invalid_at("\xe4\xbd\xa0\xe5\xa5\xbd", 6), -1);     /* 你好 */
    cr_assert_eq(utf8_invalid_at("\xf0\x9f\x98\x80", 4), -1);             /* emoji */
    cr_assert_eq(utf8_invalid_at("ab\xff", 3), 2);                        /* invalid byte */
    cr_assert_eq(utf8_invalid_at("\xc0\xaf", 2), 0);                      /* overlong */
    cr_assert_eq(utf8_invalid_at("\xed\xa0\x80", 3), 0);                  /* surrogate */
    cr_assert_eq(utf8_invalid_at("x\xe4\xbd", 3), 1);                     /* truncated */
}

Test(text, utf8_sanitize_replaces_invalid_bytes) {
    char *s = utf8_sanitize("a\xff" "b\xe4\xbd", 5);
    cr_assert_str_eq(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
    free(s);
    s = utf8_sanitize("\xe4\xbd\xa0ok", 5);
    cr_assert_str_eq(s, "\xe4\xbd\xa0ok");
    free(s);
    s = utf8_sanitize("", 0);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(text, sha256_known_vectors) {
    char hex[65];
    sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char big[1000];
    memset(big, 'a', sizeof big);
    sha256_hex(big, sizeof big, hex);
    cr_assert_str_eq(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

Test(text, strbuf) {
    StrBuf b = {0};
    for (int i = 0; i < 1000; i++) sb_printf(&b, "%d,", i);
    cr_assert(strncmp(b.s, "0,1,2,", 6) == 0);
    cr_assert_eq(b.len, strlen(b.s));
    sb_free(&b);
}

/* A reader of a new file holding the n bytes at data; the file's path is
 * returned for close_tmp, which closes the reader and removes the file. */
static char *open_tmp(LineReader *r, const void *data, size_t n) {
    char *path = write_tmp(data, n);
    Err e = {0};
    cr_assert_eq(lines_open(r, path, &e), 0, "%s", e.msg);
    return path;
}

static void close_tmp(LineReader *r, char *path) {
    lines_close(r);
    unlink(path);
    free(path);
}

Test(lines, crlf_bom_blank_and_places) {
    const char data[] = "\xEF\xBB\xBF{\"a\":1}\r\n\r\n   \n{\"a\":2}\n";
    LineReader r;
    char *path = open_tmp(&r, data, sizeof data - 1);
    Err e = {0};
    cJSON *j;
    cr_assert_eq(jsonl_next(&r, &j, &e), 0);
    cr_assert_not_null(j);
    cr_assert_eq(r.line, 1);
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), 0);
    cr_assert_eq(r.line, 4);
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), 0);
    cr_assert_null(j);
    close_tmp(&r, path);
}

Test(lines, errors_name_file_and_line) {
    const char data[] = "{\"prompt\":\"ok\"}\n{\"prompt\": \n";
    LineReader r;
    char *path = open_tmp(&r, data, sizeof data - 1);
    Err e = {0};
    cJSON *j;
    cr_assert_eq(jsonl_next(&r, &j, &e), 0);
    const char *s;
    cr_assert_eq(jsonl_string(&r, j, "prompt", 1, &s, &e), 0);
    cr_assert_str_eq(s, "ok");
    cr_assert_neq(jsonl_string(&r, j, "missing", 1, &s, &e), 0);
    cr_assert(strstr(e.msg, ":1: missing field \"missing\""), "%s", e.msg);
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ":2: invalid JSON"), "%s", e.msg);
    close_tmp(&r, path);
}

Test(lines, invalid_utf8_and_nul_refused) {
    const char bad[] = "fine\nbad \xff byte\n";
    LineReader r;
    char *path = open_tmp(&r, bad, sizeof bad - 1);
    Err e = {0};
    char *l;
    size_t n;
    cr_assert_eq(lines_next(&r, &l, &n, &e), 0);
    cr_assert_eq(lines_next(&r, &l, &n, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ":2: invalid UTF-8 at byte 5"), "%s", e.msg);
    close_tmp(&r, path);
    const char nul[] = "a\0b\n";
    path = open_tmp(&r, nul, 4);
    cr_assert_eq(lines_next(&r, &l, &n, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, "NUL byte"), "%s", e.msg);
    close_tmp(&r, path);
}

Test(lines, ten_megabyte_line) {
    size_t n = 10 * 1024 * 1024;
    char *big = malloc(n + 32);
    strcpy(big, "{\"prompt\":\"");
    size_t off = strlen(big);
    memset(big + off, 'x', n);
    strcpy(big + off + n, "\"}\n");
    LineReader r;
    char *path = open_tmp(&r, big, strlen(big));
    Err e = {0};
    cJSON *j;
    cr_assert_eq(jsonl_next(&r, &j, &e), 0, "%s", e.msg);
    const char *s;
    cr_assert_eq(jsonl_string(&r, j, "prompt", 1, &s, &e), 0);
    cr_assert_eq(strlen(s), n);
    cJSON_Delete(j);
    close_tmp(&r, path);
    free(big);
}

Test(sys, atomic_file_replaces_whole_or_nothing) {
    char path[] = "/tmp/rlhf-atomic-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(write(fd, "old", 3) == 3);
    close(fd);
    AtomicFile a;
    Err e = {0};
    cr_assert_eq(atomic_open(&a, path, &e), 0);
    fputs("new contents", a.f);
    atomic_abort(&a);
    char *got;
    size_t n;
    cr_assert_eq(sys_read_file(path, &got, &n, &e), 0);
    cr_assert_str_eq(got, "old");
    free(got);
    cr_assert_eq(access(a.tmp, F_OK), -1);
    cr_assert_eq(atomic_open(&a, path, &e), 0);
    fputs("new contents", a.f);
    cr_assert_eq(atomic_commit(&a, &e), 0);
    cr_assert_eq(sys_read_file(path, &got, &n, &e), 0);
    cr_assert_str_eq(got, "new contents");
    free(got);
    unlink(path);
}

/* A path that is not a regular file (a pipe here; /dev/null or /dev/stdout
 * for a user) is written in place: a renamed temporary would replace it, and
 * for root that replaces the device itself. */
Test(sys, atomic_file_writes_a_pipe_in_place) {
    char dir[] = "/tmp/rlhf-fifo-XXXXXX", path[64];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pipe", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    int rd = open(path, O_RDWR | O_NONBLOCK); /* a reader, so the writer does not block */
    cr_assert(rd >= 0);
    AtomicFile a;
    Err e = {0};
    cr_assert_eq(atomic_open(&a, path, &e), 0, "%s", e.msg);
    fputs("through", a.f);
    cr_assert_eq(atomic_commit(&a, &e), 0, "%s", e.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISFIFO(st.st_mode), "the pipe was replaced by a file");
    char buf[16] = {0};
    cr_assert_eq(read(rd, buf, sizeof buf), 7);
    cr_assert_str_eq(buf, "through");
    close(rd);
    unlink(path);
    rmdir(dir);
}

/* The temporary is made with O_EXCL (mkstemp): a symlink planted at the old,
 * guessable PATH.tmp.PID is neither followed nor replaced; a dead writer's
 * leftovers (old and new names) are removed, live ones kept. */
Test(text, control_characters) {
    cr_assert_eq(text_control_at("\033[2J"), 1);
    cr_assert_eq(text_control_at("\n"), 1);
    cr_assert_eq(text_control_at("\x7f"), 1);
    cr_assert_eq(text_control_at("\xc2\x9b" "2J"), 2); /* C1 CSI */
    cr_assert_eq(text_control_at("\xc2\xa0"), 0);      /* no-break space */
    cr_assert_eq(text_control_at("\xc3\xa9"), 0);
    cr_assert_eq(text_control_at("a"), 0);
    cr_assert_eq(text_control_at(""), 0);
}

Test(sys, atomic_temporary_is_exclusive_and_stale_ones_removed) {
    char dir[] = "/tmp/rlhf-atomic-dir-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256], victim[256], trap[300], stale[2][300], live[300];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(trap, sizeof trap, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(victim, "w");
    fputs("precious", f);
    fclose(f);
    cr_assert_eq(symlink(victim, trap), 0);
    AtomicFile a;
    Err e = {0};
    cr_assert_eq(atomic_open(&a, path, &e), 0, "%s", e.msg);
    cr_assert_str_neq(a.tmp, trap);
    fputs("new", a.f);
    cr_assert_eq(atomic_commit(&a, &e), 0, "%s", e.msg);
    char *got;
    size_t n;
    cr_assert_eq(sys_read_file(victim, &got, &n, &e), 0);
    cr_assert_str_eq(got, "precious");
    free(got);
    struct stat st;
    mode_t mask = umask(0);
    umask(mask);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0666 & ~mask, "mode %o", st.st_mode & 0777);
    snprintf(stale[0], sizeof stale[0], "%s.tmp.999999999", path);
    snprintf(stale[1], sizeof stale[1], "%s.tmp.999999999.a1B2c3", path);
    snprintf(live, sizeof live, "%s.tmp.%ld.zzzzzz", path, (long)getppid());
    for (int i = 0; i < 2; i++) fclose(fopen(stale[i], "w"));
    fclose(fopen(live, "w"));
    atomic_remove_stale(path);
    cr_assert_eq(access(stale[0], F_OK), -1);
    cr_assert_eq(access(stale[1], F_OK), -1);
    cr_assert_eq(access(live, F_OK), 0);
    cr_assert_eq(access(path, F_OK), 0);
    unlink(live), unlink(trap), unlink(victim), unlink(path);
    rmdir(dir);
}

Test(lines, escaped_nul_refused_not_truncated) {
    const char data[] = "{\"prompt\":\"a\\\\u0000b\"}\n{\"prompt\":\"a\\u0000b\"}\n";
    LineReader r;
    char *path = open_tmp(&r, data, sizeof data - 1);
    Err e = {0};
    cJSON *j;
    cr_assert_eq(jsonl_next(&r, &j, &e), 0, "%s", e.msg); /* an escaped backslash is text */
    cr_assert_str_eq(cJSON_GetObjectItem(j, "prompt")->valuestring, "a\\u0000b");
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ":2: \\u0000 (NUL) in a string at column 13"), "%s", e.msg);
    close_tmp(&r, path);
}

Test(lines, gzip_read_directly) {
    char *path = write_tmp("", 0);
    gzFile g = gzopen(path, "wb");
    cr_assert_not_null(g);
    gzputs(g, "{\"prompt\":\"one\"}\n\n{\"prompt\":\"two\"}\n");
    gzclose(g);
    LineReader r;
    Err e = {0};
    cJSON *j;
    cr_assert_eq(lines_open(&r, path, &e), 0, "%s", e.msg);
    cr_assert_eq(jsonl_next(&r, &j, &e), 0, "%s", e.msg);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "prompt")->valuestring, "one");
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), 0, "%s", e.msg);
    cr_assert_str_eq(cJSON_GetObjectItem(j, "prompt")->valuestring, "two");
    cr_assert_eq(r.line, 3);
    cJSON_Delete(j);
    cr_assert_eq(jsonl_next(&r, &j, &e), 0);
    cr_assert_null(j);
    close_tmp(&r, path);
}

/* Words: runs of letters, case folded, a byte >= 0x80 a letter; a file read
 * in pieces keeps a word cut at a piece's end whole. */
Test(words, set_file_and_first_unknown) {
    WordSet s = {0};
    const char *t = "Paris is the capital; caf\xc3\xa9 2x3 don't";
    cr_assert_eq(wordset_add_text(&s, t, strlen(t)), 0);
    cr_assert(wordset_has(&s, "PARIS", 5));
    cr_assert(wordset_has(&s, "caf\xc3\xa9", 5));
    cr_assert(wordset_has(&s, "x", 1), "digits separate words");
    cr_assert(wordset_has(&s, "don", 3) && wordset_has(&s, "t", 1));
    cr_assert_not(wordset_has(&s, "pari", 4));
    cr_assert_eq(s.n, 8, "%zu words", s.n);
    size_t n;
    const char *u = wordset_first_unknown(&s, "The capital is Lyon, Paris.", &n);
    cr_assert(u && n == 4 && strncmp(u, "Lyon", 4) == 0);
    cr_assert_null(wordset_first_unknown(&s, "paris! THE 42 capital", &n));
    wordset_free(&s);
    /* 30,000 four-letter words (over 64 KiB): each one whole, no halves */
    StrBuf b = {0};
    for (int i = 0; i < 30000; i++) {
        char w[6] = {(char)('a' + i % 26), (char)('a' + i / 26 % 26), (char)('a' + i / 676 % 26),
                     (char)('a' + i / 17576), ' ', 0};
        cr_assert_eq(sb_puts(&b, w), 0);
    }
    char *path = write_tmp(b.s, b.len);
    Err e = {0};
    cr_assert_eq(wordset_add_file(&s, path, &e), 0, "%s", e.msg);
    cr_assert_eq(s.n, 30000, "%zu words", s.n);
    cr_assert(wordset_has(&s, "zzza", 4) && wordset_has(&s, "bbbb", 4) && !wordset_has(&s, "zz", 2));
    wordset_free(&s);
    unlink(path);
    free(path);
    sb_free(&b);
    cr_assert_neq(wordset_add_file(&s, "/nonexistent/words.txt", &e), 0);
    cr_assert(strstr(e.msg, "/nonexistent/words.txt"), "%s", e.msg);
    wordset_free(&s);
}
