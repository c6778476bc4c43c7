/*
 * test_error.c - cw_strerror: every code has a real message, unknown codes do not
 * crash and say so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <causeway/error.h>

static void test_every_code_has_a_message(void **state)
{
    (void)state;
    for (int code = 0; code < CW_ERR_COUNT_; code++) {
        const char *msg = cw_strerror(code);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        /* A defined code must not fall back to the unknown-code text. */
        assert_string_not_equal(msg, "unknown error");
    }
}

static void test_messages_are_distinct(void **state)
{
    (void)state;
    for (int a = 0; a < CW_ERR_COUNT_; a++)
        for (int b = a + 1; b < CW_ERR_COUNT_; b++)
            assert_string_not_equal(cw_strerror(a), cw_strerror(b));
}

static void test_out_of_range_codes(void **state)
{
    (void)state;
    const int bad[] = {-1, -1000, CW_ERR_COUNT_, CW_ERR_COUNT_ + 1, 1 << 30, INT32_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_string_equal(cw_strerror(bad[i]), "unknown error");
}

static void test_known_messages_say_what_to_do(void **state)
{
    (void)state;
    assert_string_equal(cw_strerror(CW_OK), "success");
    /* The bucket message names the allowed alphabet; the siblings one says how to
     * resolve; the not-ready one says to retry. */
    assert_non_null(strstr(cw_strerror(CW_EBUCKET), "[a-z0-9_-]"));
    assert_non_null(strstr(cw_strerror(CW_ESIBLINGS), "merge"));
    assert_non_null(strstr(cw_strerror(CW_ENOTREADY), "retry"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_message),
        cmocka_unit_test(test_messages_are_distinct),
        cmocka_unit_test(test_out_of_range_codes),
        cmocka_unit_test(test_known_messages_say_what_to_do),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
