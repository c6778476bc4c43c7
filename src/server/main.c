/*
 * main.c - causewayd: one causeway region node.
 *
 *   causewayd --config FILE --region NAME
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <causeway/error.h>

#include "server/config.h"
#include "server/log.h"
#include "server/server.h"

static volatile sig_atomic_t stop_requested;

/* Exit statuses (--help and docs/operations.md, "Resource failures"). */
enum {
    EXIT_CLEAN = 0,
    EXIT_FAILED = 1,
    EXIT_USAGE = 2,
    EXIT_STORE_RESOURCE = 3,
    EXIT_STORE_FAILED = 4,
};

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: causewayd --config FILE --region NAME [--log-level LEVEL] [--check]\n"
            "                 [--rebuild-from REGION]\n"
            "\n"
            "Runs one causeway region: it accepts client writes and applies them at once,\n"
            "replicates them to the other regions in FILE with their causal dependencies,\n"
            "and applies remote writes once everything they depend on is visible here.\n"
            "\n"
            "  --config FILE      the cluster's INI file (see docs/configuration.md)\n"
            "  --region NAME      which [region NAME] of FILE this process is\n"
            "  --log-level LEVEL  debug, info, warn or error (default: the config's log_level)\n"
            "  --check            validate the config and exit (0 if valid)\n"
            "  --rebuild-from REGION\n"
            "                     start on an empty data directory and copy REGION's state\n"
            "                     first (a region whose disk was lost; docs/operations.md)\n"
            "  --help             this text\n"
            "\n"
            "Exit status:\n"
            "  0  stopped cleanly (SIGTERM or SIGINT), --help, or --check found the config valid\n"
            "  1  cannot start (the message says why), --check found an error, or the\n"
            "     transport kept failing\n"
            "  2  bad command line\n"
            "  3  stopped because the store ran out of a resource: disk space (\"No space\n"
            "     left on device\"), file descriptors or memory; fix it and start the\n"
            "     node again: it recovers every committed write from its log\n"
            "  4  stopped because the store failed otherwise (an I/O error, a Berkeley DB\n"
            "     panic); check the disk and start again: recovery runs at the start\n"
            "  (docs/operations.md, \"Resource failures\")\n"
            "\n"
            "Logs go to stderr. SIGTERM or SIGINT stops the node cleanly after committing\n"
            "what it has decided. At start it logs its random seed (it seeds the\n"
            "link jitter); CAUSEWAY_SEED=N in the environment reuses one. Example:\n"
            "  causewayd --config geo-configs/three-regions.ini --region us-east\n");
}

/* Client connections, peer links, Berkeley DB's log and database files all need
 * descriptors; the common soft limit of 1024 lets a connection flood starve the
 * store (a checkpoint that cannot open a log file panics Berkeley DB). Raise the
 * soft limit as far as the hard limit allows, and say what it is. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        cw_warn("cannot read the open-file limit: %s", strerror(errno));
        return;
    }
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            cw_warn("cannot raise the open-file limit from %llu to %llu: %s",
                    (unsigned long long)before, (unsigned long long)rl.rlim_max, strerror(errno));
            return;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        cw_info("open-file limit: unlimited");
    else if (rl.rlim_cur != before)
        cw_info("open-file limit raised from %llu to %llu", (unsigned long long)before,
                (unsigned long long)rl.rlim_cur);
    else
        cw_info("open-file limit: %llu (the hard limit)", (unsigned long long)rl.rlim_cur);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 4096)
        cw_warn("open-file limit %llu is low for many client connections; raise the hard "
                "limit (ulimit -Hn, or LimitNOFILE= in a systemd unit)",
                (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *region_name = NULL, *level_arg = NULL, *rebuild_arg = NULL;
    int check_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--check") == 0) {
            check_only = 1;
        } else if ((strcmp(a, "--config") == 0 || strcmp(a, "--region") == 0 ||
                    strcmp(a, "--log-level") == 0 || strcmp(a, "--rebuild-from") == 0) &&
                   i + 1 < argc) {
            const char *v = argv[++i];
            if (strcmp(a, "--rebuild-from") == 0)
                rebuild_arg = v;
            else if (strcmp(a, "--config") == 0)
                config_path = v;
            else if (strcmp(a, "--region") == 0)
                region_name = v;
            else
                level_arg = v;
        } else {
            fprintf(stderr, "causewayd: %s '%s' (see --help)\n",
                    a[0] == '-' ? "missing value or unknown option" : "unexpected argument", a);
            return 2;
        }
    }
    if (config_path == NULL || (region_name == NULL && !check_only)) {
        fprintf(stderr, "causewayd: --config FILE and --region NAME are required (see --help)\n");
        return 2;
    }
    struct cw_config cfg;
    char err[1024];
    int rc = cw_config_load(config_path, &cfg, err, sizeof(err));
    if (rc != CW_OK) {
        fprintf(stderr, "causewayd: %s\n", err);
        return 1;
    }
    /* Deprecated keys: --check prints them, a node logs them once logging is set. */
    if (check_only)
        for (unsigned i = 0; i < cfg.n_warnings; i++)
            fprintf(stderr, "causewayd: warning: %s\n", cfg.warnings[i]);
    /* security = curve needs every region's public key: --check says so too. */
    if (check_only && cw_config_check_security(&cfg, err, sizeof(err)) != CW_OK) {
        fprintf(stderr, "causewayd: %s\n", err);
        cw_config_free(&cfg);
        return 1;
    }
    if (check_only && region_name == NULL) {
        printf("causewayd: %s is valid: %u regions, %u buckets\n", config_path, cfg.n_regions,
               cfg.n_buckets);
        cw_config_free(&cfg);
        return 0;
    }
    const struct cw_region_config *region = cw_config_region(&cfg, region_name);
    if (region == NULL) {
        fprintf(stderr, "causewayd: %s has no [region %s]; it names:", config_path, region_name);
        for (unsigned i = 0; i < cfg.n_regions; i++)
            fprintf(stderr, " %s", cfg.regions[i].name);
        fprintf(stderr, "\n");
        cw_config_free(&cfg);
        return 1;
    }
    if (check_only) {
        printf("causewayd: %s is valid; region %s has id %u\n", config_path, region_name,
               region->id);
        cw_config_free(&cfg);
        return 0;
    }
    int rebuild_from = -1;
    if (rebuild_arg != NULL) {
        const struct cw_region_config *donor = cw_config_region(&cfg, rebuild_arg);
        if (donor == NULL || donor->id == region->id) {
            fprintf(stderr, "causewayd: --rebuild-from %s: name another region of %s\n",
                    rebuild_arg, config_path);
            cw_config_free(&cfg);
            return 2;
        }
        rebuild_from = (int)donor->id;
    }
    int level = cw_log_level_parse(level_arg ? level_arg : cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "causewayd: bad log level '%s'; use debug, info, warn or error\n",
                level_arg);
        cw_config_free(&cfg);
        return 2;
    }
    cw_log_setup((enum cw_log_level)level, region->name);
    for (unsigned i = 0; i < cfg.n_warnings; i++)
        cw_warn("%s", cfg.warnings[i]);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    raise_fd_limit();

    struct cw_server *server = NULL;
    rc = cw_server_open_rebuild(&cfg, region->id, rebuild_from, &server, err, sizeof(err));
    if (rc != CW_OK) {
        cw_error("cannot start: %s", err);
        cw_config_free(&cfg);
        return 1;
    }
    rc = cw_server_run(server, &stop_requested);
    enum cw_server_stop why = cw_server_stop_reason(server);
    bool panicked = cw_server_store_panicked(server);
    cw_server_destroy(&server);
    cw_config_free(&cfg);
    int status = rc == CW_OK                               ? EXIT_CLEAN
                 : why == CW_SERVER_STOP_STORE_RESOURCE ? EXIT_STORE_RESOURCE
                 : why == CW_SERVER_STOP_STORE_FAILED   ? EXIT_STORE_FAILED
                                                        : EXIT_FAILED;
    if (status != EXIT_CLEAN)
        cw_error("stopped after a failure; exit status %d (causewayd --help lists them)", status);
    if (panicked) {
        /* Berkeley DB drops part of its memory when it panics; exit handlers
         * (a leak checker's among them) would only report that. Everything
         * committed is in the log already, and the replies went out when the
         * transport closed. */
        fflush(NULL);
        _exit(status);
    }
    return status;
}
