// Tests for data/corpus/metadata.c: the paper's metadata rows (paths, ids, speakers, header and comments, quoting,
// bad rows named by file and line, duplicate ids), avt embed's pairs list and index.csv, and the shared rules.
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus/metadata.h"
#include "tests/testutil.h"

static void fx_setup(void) { test_tmpdir(); }
TestSuite(metadata, .init = fx_setup, .fini = test_tmpdir_remove);

static const char *fx_text(const char *name, const char *text) {
    const char *p = test_path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "cannot create %s", p);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    return p;
}

static void expect_phrase(const char *msg, const char *phrase) {
    cr_expect_not_null(strstr(msg, phrase), "'%s' lacks '%s'", msg, phrase);
    cr_expect_null(strchr(msg, '\n'), "'%s' spans lines", msg);
}

Test(metadata, ids_and_voxceleb2_identities) {
    const char *cases[][2] = {{"a/b.csv", "a/b"},         {"./x/y.z.csv", "x/y.z"}, {"/abs/p.csv", "abs/p"},
                              {"dir.v1/file", "dir.v1/file"}, {".hidden", ".hidden"}, {"n.csv", "n"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *id = corpus_id(cases[i][0]);
        cr_expect_str_eq(id, cases[i][1], "id of %s", cases[i][0]);
        free(id);
    }
    cr_expect(corpus_is_voxceleb2_id("id00012", 7));
    cr_expect(corpus_is_voxceleb2_id("id1/x", 3));
    cr_expect(!corpus_is_voxceleb2_id("id", 2));
    cr_expect(!corpus_is_voxceleb2_id("id12a", 5));
    cr_expect(!corpus_is_voxceleb2_id("Id12", 4));
}

// Good rows: paths resolved against the metadata file's directory (absolute ones kept), ids as written, speakers
// from a VoxCeleb2 identity directory else the audio file's directory; a header, comments, blank lines, extra
// columns, CRLF and pandas' quotes are handled.
Test(metadata, good_rows) {
    const char *p = fx_text("meta.csv", "audio,video,seq_len,masking_list\n"
                                        "# a comment\n"
                                        "\n"
                                        "trill/id00012/vid/00001.csv,of/id00012/vid/00001.csv,50,[1 2]\r\n"
                                        "  ./spk7/u1.csv , spk7/u1_of.csv \n"
                                        "\"quoted/q.csv\",\"quoted/q_of.csv\"\n"
                                        "/abs/dir/u.npy,/abs/dir/u_of.npy\n"
                                        "top.npy,top_of.npy\n");
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 5);
    const char *dir = test_path("");
    struct {
        const char *audio, *video, *id, *speaker;
        long line;
    } want[] = {
        {"trill/id00012/vid/00001.csv", "of/id00012/vid/00001.csv", "trill/id00012/vid/00001", "id00012", 4},
        {"./spk7/u1.csv", "spk7/u1_of.csv", "spk7/u1", "spk7", 5},
        {"quoted/q.csv", "quoted/q_of.csv", "quoted/q", "quoted", 6},
        {"/abs/dir/u.npy", "/abs/dir/u_of.npy", "abs/dir/u", "dir", 7},
        {"top.npy", "top_of.npy", "top", "avt-test-", 8}, // the test directory's name
    };
    for (size_t i = 0; i < n; i++) {
        char audio[600], video[600];
        int abs = want[i].audio[0] == '/';
        snprintf(audio, sizeof audio, "%s%s", abs ? "" : dir, want[i].audio);
        snprintf(video, sizeof video, "%s%s", abs ? "" : dir, want[i].video);
        cr_expect_str_eq(rows[i].audio, audio);
        cr_expect_str_eq(rows[i].video, video);
        cr_expect_str_eq(rows[i].id, want[i].id);
        cr_expect(strncmp(rows[i].speaker, want[i].speaker, strlen(want[i].speaker)) == 0, "speaker '%s', want '%s'",
                  rows[i].speaker, want[i].speaker);
        cr_expect_eq(rows[i].line, want[i].line);
        cr_expect_null(rows[i].bad, "row %zu: %s", i, rows[i].bad);
        cr_expect_null(rows[i].labels);
    }
    corpus_rows_free(rows, n);
}

// Bad rows stay in the list, each with one line naming the file and line: a missing column, a duplicate id (the
// first row keeps it), an id longer than the store takes.
Test(metadata, bad_rows_name_file_and_line) {
    char long_id[200];
    memset(long_id, 'x', 140);
    snprintf(long_id + 140, sizeof long_id - 140, ".csv");
    char text[1024];
    snprintf(text, sizeof text, "a.csv,b.csv\n"
                                "only_audio.csv\n"
                                "c.csv,\n"
                                "a.csv,other.csv\n"
                                "%s,v.csv\n"
                                "d.csv,e.csv\n",
             long_id);
    const char *p = fx_text("m.csv", text);
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 6);
    char where[600];
    cr_expect_null(rows[0].bad);
    const char *why[] = {NULL,
                         "2: expected 'audio_csv,openface_csv[,seq_len[,masking_list]]'",
                         "3: expected 'audio_csv,openface_csv[,seq_len[,masking_list]]'",
                         "4: duplicate utterance id 'a' (first on line 1)",
                         "5: utterance id 'xxxx",
                         NULL};
    for (size_t i = 0; i < n; i++) {
        if (!why[i]) {
            cr_expect_null(rows[i].bad, "row %zu: %s", i, rows[i].bad);
            continue;
        }
        cr_assert_not_null(rows[i].bad, "row %zu is not bad", i);
        snprintf(where, sizeof where, "%s:%s", p, why[i]);
        expect_phrase(rows[i].bad, where);
    }
    expect_phrase(rows[4].bad, "is longer than 127 bytes");
    corpus_rows_free(rows, n);
}

Test(metadata, unreadable_or_empty_file) {
    CorpusRow *rows;
    size_t n;
    AvtErr err;
    cr_assert_eq(metadata_read(test_path("none.csv"), &rows, &n, &err), -1);
    expect_phrase(err.msg, "none.csv: cannot open: No such file or directory");
    cr_expect_null(rows);
    const char *p = fx_text("empty.csv", "audio,video\n# nothing\n\n");
    cr_assert_eq(metadata_read(p, &rows, &n, &err), -1);
    expect_phrase(err.msg, "empty.csv: no rows");
}

Test(metadata, csv_field_quotes_only_when_needed) {
    const char *p = test_path("f.csv");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    const char *fields[] = {"plain", "a,b", "say \"hi\"", "two\nlines", ""};
    for (size_t i = 0; i < 5; i++) {
        corpus_csv_field(f, fields[i]);
        fputc('|', f);
    }
    fclose(f);
    char *got = test_slurp(p, NULL);
    cr_expect_str_eq(got, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"||");
    free(got);
}

// ---- avt embed's pairs list ----

Test(metadata, pairs_list) {
    const char *p = fx_text("pairs.csv", "audio,video,name\n"
                                         "# comment\n"
                                         "dir/a.npy , dir/a_v.npy\n"
                                         "b.csv,b_v.csv,named\n"
                                         "\n"
                                         "c.x.npy,c_v.npy\n");
    EmbedPair *pairs;
    size_t n;
    AvtErr err;
    cr_assert_eq(embed_pairs_read(p, &pairs, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    const char *want[][3] = {{"dir/a.npy", "dir/a_v.npy", "a"}, {"b.csv", "b_v.csv", "named"},
                             {"c.x.npy", "c_v.npy", "c.x"}};
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(pairs[i].audio, want[i][0]);
        cr_expect_str_eq(pairs[i].video, want[i][1]);
        cr_expect_str_eq(pairs[i].name, want[i][2]);
    }
    embed_pairs_free(pairs, n);
}

Test(metadata, pairs_list_errors) {
    const char *cases[][2] = {
        {"a.npy\n", "bad1.csv:1: expected 'audio,video[,name]'"},
        {"a.npy,v.npy\nb.npy,v.npy,x,y\n", "bad2.csv:2: expected 'audio,video[,name]'"},
        {"a.npy,v.npy,\n", "bad3.csv:1: expected 'audio,video[,name]'"},
        {"a.npy,v.npy,sub/name\n", "bad4.csv:1: name 'sub/name' must be a plain file name"},
        {"a.npy,v.npy,..\n", "bad5.csv:1: name '..' must be a plain file name"},
        {"x/a.npy,v.npy\ny/a.csv,w.csv\n", "bad6.csv: two pairs write 'a.npy'"},
        {"audio,video\n# only a header\n", "bad7.csv: no pairs listed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.csv", i + 1);
        const char *p = fx_text(name, cases[i][0]);
        EmbedPair *pairs;
        size_t n;
        AvtErr err;
        cr_assert_eq(embed_pairs_read(p, &pairs, &n, &err), -1, "%s: accepted", name);
        cr_expect_null(pairs);
        expect_phrase(err.msg, cases[i][1]);
    }
    AvtErr err;
    EmbedPair *pairs;
    size_t n;
    cr_assert_eq(embed_pairs_read(test_path("none.csv"), &pairs, &n, &err), -1);
    expect_phrase(err.msg, "none.csv: cannot open");
}

// ---- avt embed --data: output names and index.csv ----

// A store in the test directory holding one 2-step utterance per id.
static Store *make_store(const char *name, const char *const *ids, const char *const *speakers, size_t n) {
    StoreWriter *w;
    AvtErr err;
    const char *dir = test_path(name);
    cr_assert_eq(store_writer_open(&w, dir, STORE_F32, 2, 1, 8, &err), 0, "%s", err.msg);
    const float a[4] = {1, 2, 3, 4}, v[2] = {5, 6};
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(store_writer_add(w, ids[i], speakers[i], 2, a, v, &err), 0, "%s", err.msg);
    cr_assert_eq(store_writer_finish(w, &err), 0, "%s", err.msg);
    Store *s;
    cr_assert_eq(store_open(&s, dir, &err), 0, "%s", err.msg);
    return s;
}

Test(metadata, embed_names_and_index) {
    const char *ids[] = {"dev/id1/x", "plain", "with,comma"}, *spk[] = {"id1", "s,2", "s3"};
    Store *s = make_store("st", ids, spk, 3);
    AvtErr err;
    char **names = embed_store_names(s, "st", &err);
    cr_assert_not_null(names, "%s", err.msg);
    cr_expect_str_eq(names[0], "dev_id1_x");
    cr_expect_str_eq(names[1], "plain");
    cr_expect_str_eq(names[2], "with,comma");
    const char *p = test_path("index.csv");
    cr_assert_eq(embed_index_write(p, s, names, &err), 0, "%s", err.msg);
    char *got = test_slurp(p, NULL);
    cr_expect_str_eq(got, "file,id,speaker,steps\n"
                          "dev_id1_x.npy,dev/id1/x,id1,2\n"
                          "plain.npy,plain,\"s,2\",2\n"
                          "\"with,comma.npy\",\"with,comma\",s3,2\n");
    free(got);
    for (size_t i = 0; i < 3; i++) free(names[i]);
    free(names);
    store_close(s);

    const char *clash[] = {"a/b", "a_b"}, *spk2[] = {"x", "y"};
    s = make_store("clash", clash, spk2, 2);
    cr_expect_null(embed_store_names(s, "clash", &err));
    expect_phrase(err.msg, "clash: two utterance ids give the file name 'a_b.npy'");
    store_close(s);
}
