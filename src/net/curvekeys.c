/*
 * curvekeys.c - CurveZMQ keys in files: generate, write, read, list (see
 * curvekeys.h for the formats).
 */
#include "net/curvekeys.h"

#include "net/netutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

/* A key file is a few lines; a key list a few thousand. */
#define PAIR_FILE_BYTES_MAX 4096
#define LIST_LINE_MAX 512

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                ".-:+=^!/*?&<>()[]{}@%$#";

bool cw_curve_available(void)
{
    return zmq_has("curve") != 0;
}

bool cw_curve_decode(const char *s, uint8_t out[CW_CURVE_KEY_BYTES])
{
    if (s == NULL || strlen(s) != CW_CURVE_Z85_LEN)
        return false;
    for (size_t i = 0; i < CW_CURVE_Z85_LEN; i++)
        if (strchr(z85_chars, s[i]) == NULL)
            return false;
    return zmq_z85_decode(out, s) != NULL;
}

void cw_curve_encode(const uint8_t key[CW_CURVE_KEY_BYTES], char out[CW_CURVE_Z85_LEN + 1])
{
    zmq_z85_encode(out, key, CW_CURVE_KEY_BYTES);
}

int cw_curve_generate(char public_z85[CW_CURVE_Z85_LEN + 1], char secret_z85[CW_CURVE_Z85_LEN + 1],
                      char *err, size_t err_len)
{
    if (!cw_curve_available() || zmq_curve_keypair(public_z85, secret_z85) != 0) {
        cw_net_errf(err, err_len,
                    "this ZeroMQ library has no CURVE support; install a libzmq built with "
                    "libsodium (Debian's libzmq5 is)");
        return -1;
    }
    return 0;
}

/* Writes text to a new file at path with the given mode: a temporary file in the
 * same directory, flushed, then linked to path (which must not exist). */
static int write_new_file(const char *path, const char *text, mode_t mode, char *err,
                          size_t err_len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (tmp == NULL) {
        cw_net_errf(err, err_len, "out of memory writing %s", path);
        return -1;
    }
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    /* mkstemp creates the file with mode 0600: the secret is never readable by
     * others, not even for a moment. */
    int fd = mkstemp(tmp);
    if (fd < 0) {
        cw_net_errf(err, err_len,
                    "cannot create a file next to %s: %s; choose a directory you "
                    "can write to",
                    path, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t len = strlen(text);
    int rc = -1;
    if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        cw_net_errf(err, err_len, "cannot write %s: %s", tmp, strerror(errno));
        goto done;
    }
    if (link(tmp, path) != 0) {
        if (errno == EEXIST)
            cw_net_errf(err, err_len,
                        "%s already exists; remove it first (keygen never replaces a key)", path);
        else
            cw_net_errf(err, err_len, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

int cw_curve_write_pair(const char *path, const char *public_z85, const char *secret_z85, char *err,
                        size_t err_len)
{
    char text[512];
    snprintf(text, sizeof(text),
             "# causeway CURVE key pair (causeway keygen). Keep this file secret: mode 0600.\n"
             "public-key = %s\n"
             "secret-key = %s\n",
             public_z85, secret_z85);
    size_t plen = strlen(path);
    char *pub = malloc(plen + 5);
    if (pub == NULL) {
        cw_net_errf(err, err_len, "out of memory writing %s", path);
        return -1;
    }
    snprintf(pub, plen + 5, "%s.pub", path);
    if (access(pub, F_OK) == 0) {
        cw_net_errf(err, err_len,
                    "%s already exists; remove it first (keygen never replaces a key)", pub);
        free(pub);
        return -1;
    }
    int rc = write_new_file(path, text, 0600, err, err_len);
    if (rc == 0) {
        snprintf(text, sizeof(text),
                 "# causeway CURVE public key (causeway keygen); it may be shared.\n"
                 "public-key = %s\n",
                 public_z85);
        rc = write_new_file(pub, text, 0644, err, err_len);
    }
    free(pub);
    return rc;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

int cw_curve_read_pair(const char *path, struct cw_curve_pair *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cw_net_errf(err, err_len,
                    "cannot open the key file %s: %s; create it with 'causeway keygen --out %s' "
                    "or fix the path",
                    path, strerror(errno), path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cw_net_errf(err, err_len,
                    "the key file %s is not a regular file; give the file that "
                    "'causeway keygen --out' wrote",
                    path);
        close(fd);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        cw_net_errf(err, err_len,
                    "the secret key file %s is accessible to group or others (mode %04o); run "
                    "'chmod 600 %s' (and, since others could read it, consider making a new key)",
                    path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return -1;
    }
    char buf[PAIR_FILE_BYTES_MAX + 1];
    ssize_t n = read(fd, buf, PAIR_FILE_BYTES_MAX + 1);
    int e = errno;
    close(fd);
    if (n < 0 || n > PAIR_FILE_BYTES_MAX) {
        cw_net_errf(err, err_len,
                    "cannot read the key file %s: %s; give the file that "
                    "'causeway keygen --out' wrote",
                    path, n < 0 ? strerror(e) : "it is too large");
        return -1;
    }
    buf[n] = '\0';
    char pub[CW_CURVE_Z85_LEN + 8] = "", sec[CW_CURVE_Z85_LEN + 8] = "";
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *t = trim(line);
        if (*t == '\0' || *t == '#')
            continue;
        char *eq = strchr(t, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *name = trim(t), *value = trim(eq + 1);
        if (strcmp(name, "public-key") == 0)
            snprintf(pub, sizeof(pub), "%s", value);
        else if (strcmp(name, "secret-key") == 0)
            snprintf(sec, sizeof(sec), "%s", value);
    }
    memset(buf, 0, sizeof(buf));
    if (sec[0] == '\0' || pub[0] == '\0') {
        cw_net_errf(err, err_len,
                    "the key file %s has no %s line; give the key pair file that 'causeway "
                    "keygen --out FILE' wrote (FILE, not FILE.pub)",
                    path, sec[0] == '\0' ? "secret-key" : "public-key");
        return -1;
    }
    if (!cw_curve_decode(pub, out->public_key) || !cw_curve_decode(sec, out->secret_key)) {
        cw_net_errf(err, err_len,
                    "the %s key in %s does not decode (40 Z85 characters expected); make a new "
                    "pair with 'causeway keygen --out FILE'",
                    cw_curve_decode(pub, out->public_key) ? "secret" : "public", path);
        memset(sec, 0, sizeof(sec));
        memset(out, 0, sizeof(*out));
        return -1;
    }
    char derived[CW_CURVE_Z85_LEN + 1];
    if (cw_curve_available() && zmq_curve_public(derived, sec) == 0 && strcmp(derived, pub) != 0) {
        cw_net_errf(err, err_len,
                    "the public key in %s is not the public key of its secret key; make a new "
                    "pair with 'causeway keygen --out FILE'",
                    path);
        memset(sec, 0, sizeof(sec));
        memset(out, 0, sizeof(*out));
        return -1;
    }
    memset(sec, 0, sizeof(sec));
    return 0;
}

static bool holder_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '@' || c == '-';
}

int cw_curve_read_list(const char *path, struct cw_curve_entry **out, size_t *n, char *err,
                       size_t err_len)
{
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        cw_net_errf(err, err_len, "cannot open the key list %s: %s; fix the path in the config",
                    path, strerror(errno));
        return -1;
    }
    struct cw_curve_entry *list = NULL;
    size_t count = 0, cap = 0;
    char line[LIST_LINE_MAX + 2];
    unsigned lineno = 0;
    int rc = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            cw_net_errf(err, err_len,
                        "%s:%u: the line is longer than %d characters; expected "
                        "'KEY HOLDER  # comment'",
                        path, lineno, LIST_LINE_MAX);
            goto done;
        }
        /* '#' is a Z85 character: a comment starts at a '#' that begins the line
         * or follows a blank. */
        for (char *h = line; (h = strchr(h, '#')) != NULL; h++) {
            if (h == line || h[-1] == ' ' || h[-1] == '\t') {
                *h = '\0';
                break;
            }
        }
        char *t = trim(line);
        if (*t == '\0')
            continue;
        char *sp = t + strcspn(t, " \t");
        char *holder = *sp != '\0' ? trim(sp + 1) : sp;
        *sp = '\0';
        uint8_t key[CW_CURVE_KEY_BYTES];
        if (!cw_curve_decode(t, key)) {
            cw_net_errf(err, err_len,
                        "%s:%u: '%.48s' is not a CURVE public key (40 Z85 characters); copy "
                        "the line 'causeway keygen' printed",
                        path, lineno, t);
            goto done;
        }
        size_t hl = strlen(holder);
        bool ok = hl > 0 && hl <= CW_CURVE_HOLDER_MAX;
        for (size_t i = 0; ok && i < hl; i++)
            ok = holder_char(holder[i]);
        if (!ok) {
            cw_net_errf(err, err_len,
                        "%s:%u: the key needs the name of its holder after it, 1 to %d "
                        "characters from A-Z a-z 0-9 . _ @ - (e.g. 'KEY alice  # laptop')",
                        path, lineno, CW_CURVE_HOLDER_MAX);
            goto done;
        }
        for (size_t i = 0; i < count; i++) {
            if (memcmp(list[i].key, key, sizeof(key)) == 0) {
                cw_net_errf(err, err_len,
                            "%s:%u: this key is already listed for %s; list each key once", path,
                            lineno, list[i].holder);
                goto done;
            }
        }
        if (count == CW_CURVE_LIST_MAX) {
            cw_net_errf(err, err_len, "%s:%u: more than %d keys; split the holders' access", path,
                        lineno, CW_CURVE_LIST_MAX);
            goto done;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct cw_curve_entry *grown = realloc(list, ncap * sizeof(*grown));
            if (grown == NULL) {
                cw_net_errf(err, err_len, "out of memory reading %s", path);
                goto done;
            }
            list = grown;
            cap = ncap;
        }
        memcpy(list[count].key, key, sizeof(key));
        memcpy(list[count].holder, holder, hl + 1);
        count++;
    }
    if (ferror(f)) {
        cw_net_errf(err, err_len, "cannot read the key list %s: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    fclose(f);
    if (rc != 0) {
        free(list);
        return -1;
    }
    *out = list;
    *n = count;
    return 0;
}
