/*
 * fuzz_token.c - cw_token_parse on arbitrary text (a context token a user
 * pastes on the command line). The input is copied and NUL-terminated, as a
 * command-line argument would be. Properties: no crash or sanitizer report; a
 * token that parses formats to a token that parses to the same vector.
 */
#include <string.h>

#include <causeway/error.h>

#include "core/session.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *token = malloc(size + 1);
    if (token == NULL)
        return 0;
    if (size)
        memcpy(token, data, size);
    token[size] = '\0';
    struct cw_vclock v;
    int rc = cw_token_parse(token, &v);
    FUZZ_CHECK(rc == CW_OK || rc == CW_ECONTEXT);
    if (rc == CW_OK) {
        char text[CW_TOKEN_MAX];
        cw_token_format(&v, text);
        FUZZ_CHECK(strlen(text) < CW_TOKEN_MAX);
        struct cw_vclock again;
        FUZZ_CHECK(cw_token_parse(text, &again) == CW_OK);
        FUZZ_CHECK(memcmp(&v, &again, sizeof(v)) == 0);
    }
    free(token);
    return 0;
}
