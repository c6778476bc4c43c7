/*
 * test_cli_escape.c - the CLI's escaper (tools/cli/escape.c): every byte string
 * becomes valid JSON (checked with a real parser, jansson), text stays text,
 * and nothing that could drive a terminal gets through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "escape.h"

static void check_escape(const void *in, size_t len, const char *want)
{
    char out[256];
    size_t need = cli_json_escape(out, sizeof(out), in, len);
    assert_int_equal(need, strlen(want));
    assert_string_equal(out, want);
    /* Measuring alone. */
    assert_int_equal(cli_json_escape(NULL, 0, in, len), need);
}

static void test_json_escape(void **state)
{
    (void)state;
    check_escape("hello", 5, "hello");
    check_escape("", 0, "");
    check_escape("a\"b\\c/d", 7, "a\\\"b\\\\c/d");
    check_escape("\n\t\r\b\f", 5, "\\n\\t\\r\\b\\f");
    check_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
    check_escape("a\0b", 3, "a\\u0000b");
    /* Well-formed UTF-8 passes through: 2, 3 and 4 byte sequences. */
    check_escape("caf\xc3\xa9", 5, "caf\xc3\xa9");
    check_escape("\xe2\x82\xac", 3, "\xe2\x82\xac");
    check_escape("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
    check_escape("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
    /* Everything else becomes \u00XX, byte by byte. */
    check_escape("\x80", 1, "\\u0080");
    check_escape("\xff\xfe", 2, "\\u00ff\\u00fe");
    check_escape("\xc3", 1, "\\u00c3");                                  /* truncated */
    check_escape("\xc3(", 2, "\\u00c3(");                                /* bad continuation */
    check_escape("\xc0\xaf", 2, "\\u00c0\\u00af");                       /* overlong '/' */
    check_escape("\xe0\x80\xaf", 3, "\\u00e0\\u0080\\u00af");            /* overlong */
    check_escape("\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080");            /* surrogate D800 */
    check_escape("\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080"); /* > U+10FFFF */
    check_escape("\xe2\x82", 2, "\\u00e2\\u0082");                       /* truncated 3-byte */

    /* snprintf semantics: truncated output, full length returned, always a NUL. */
    char small[5];
    assert_int_equal(cli_json_escape(small, sizeof(small), "a\"bcdef", 7), 8);
    assert_string_equal(small, "a\\\"b");
    char one[1];
    assert_int_equal(cli_json_escape(one, 1, "xyz", 3), 3);
    assert_string_equal(one, "");
}

/* The decoded JSON string of doc, with its length (jansson; strings may hold
 * NUL, which JSON_ALLOW_NUL lets through). */
static json_t *parse_string(const char *doc)
{
    json_error_t err;
    json_t *j = json_loads(doc, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("not valid JSON (%s): %.80s", err.text, doc);
    assert_true(json_is_string(j));
    return j;
}

static void test_json_escape_parses_back(void **state)
{
    (void)state;
    /* Every byte value, escaped and quoted, is valid JSON to a real parser; each
     * byte decodes to itself (ASCII) or to the code point of its value (\u00XX). */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    size_t need = cli_json_escape(NULL, 0, all, sizeof(all));
    char *doc = malloc(need + 3);
    assert_non_null(doc);
    doc[0] = '"';
    cli_json_escape(doc + 1, need + 1, all, sizeof(all));
    doc[need + 1] = '"';
    doc[need + 2] = '\0';
    json_t *j = parse_string(doc);
    const uint8_t *str = (const uint8_t *)json_string_value(j);
    assert_int_equal(json_string_length(j), 128 + 2 * 128);
    assert_memory_equal(str, all, 128);
    for (int i = 128; i < 256; i++) {
        const uint8_t *p = str + 128 + 2 * (i - 128);
        assert_int_equal(p[0], 0xc0 | (i >> 6));
        assert_int_equal(p[1], 0x80 | (i & 0x3f));
    }
    json_decref(j);
    free(doc);

    /* Text in UTF-8 survives exactly. */
    const char *text = "na\xc3\xafve \"caf\xc3\xa9\"\n\xf0\x9f\x98\x80 \\ end";
    need = cli_json_escape(NULL, 0, text, strlen(text));
    doc = malloc(need + 3);
    assert_non_null(doc);
    doc[0] = '"';
    cli_json_escape(doc + 1, need + 1, text, strlen(text));
    strcpy(doc + need + 1, "\"");
    j = parse_string(doc);
    assert_string_equal(json_string_value(j), text);
    json_decref(j);
    free(doc);
}

static void test_json_fput_string(void **state)
{
    (void)state;
    char *got = NULL;
    size_t got_len = 0;
    FILE *f = open_memstream(&got, &got_len);
    assert_non_null(f);
    /* Larger than the internal buffer, with escapes across its boundary. */
    size_t n = 10000;
    char *in = malloc(n);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = i % 7 == 0 ? '\n' : 'x';
    assert_int_equal(cli_json_fput_string(f, in, n), 0);
    assert_int_equal(fclose(f), 0);
    size_t need = cli_json_escape(NULL, 0, in, n);
    char *want = malloc(need + 3);
    assert_non_null(want);
    want[0] = '"';
    cli_json_escape(want + 1, need + 1, in, n);
    strcpy(want + need + 1, "\"");
    assert_string_equal(got, want);
    free(got);
    free(want);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_parses_back),
        cmocka_unit_test(test_json_fput_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
