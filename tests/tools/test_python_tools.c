// The Python tools need Debian's numpy and torch. With another python3 first on PATH (here a venv without them,
// as a pyenv or conda interpreter would be) they run themselves again under /usr/bin/python3, or, when that is not
// possible, say in one line which module is missing and which interpreter to use.
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "tests/testutil.h"

static const char *dir;

static void setup(void) {
    dir = test_tmpdir();
    cr_assert_eq(test_run("%s -m venv --without-pip %s/venv", test_python(), dir), 0, "cannot make a venv");
    cr_assert_neq(test_run("%s/venv/bin/python3 -c 'import numpy' 2>/dev/null", dir), 0,
                  "the venv must lack numpy for this test to mean anything");
}
TestSuite(python_tools, .init = setup, .fini = test_tmpdir_remove, .timeout = 120);

Test(python_tools, foreign_python3_first_on_path_still_works) {
    cr_assert_eq(test_run("PATH=%s/venv/bin:$PATH python3 tools/make_corpus.py --out %s/corpus --utterances 2 "
                          "--speakers 1 >/dev/null 2>%s/err.txt", dir, dir, dir), 0, "make_corpus.py failed");
    cr_expect_eq(test_run("test -s %s/corpus/metadata.csv", dir), 0, "no metadata.csv written");
}

Test(python_tools, missing_module_is_one_line) {
    // AVT_PYTHON_RERUN marks a run that already is the second try: nothing is left but to explain.
    int rc = test_run("AVT_PYTHON_RERUN=1 PATH=%s/venv/bin:$PATH python3 tools/make_corpus.py --out %s/c "
                      ">/dev/null 2>%s/err.txt", dir, dir, dir);
    cr_expect_eq(rc, 1);
    char line[1024] = "", extra[16];
    FILE *f = fopen(test_path("err.txt"), "r");
    cr_assert(f);
    cr_expect(fgets(line, sizeof line, f) != NULL);
    cr_expect(fgets(extra, sizeof extra, f) == NULL, "more than one line: %s", line);
    fclose(f);
    cr_expect(strstr(line, "numpy") && strstr(line, "python3-numpy") && strstr(line, "/usr/bin/python3"),
              "the line must name the module, the package and the interpreter: %s", line);
}
