// Tests for data/corpus/metadata.c: the paper's metadata rows (paths, ids, speakers, header and comments, quoting,
// bad rows named by file and line, duplicate ids), a metadata header naming its columns (id, speaker, labels), the
// CSV reader, labels.csv, avt embed's pairs list and index.csv, and the shared rules.
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
// from a VoxCeleb2 identity directory else the audio file's directory; the paper's header, comments, blank lines,
// extra columns, CRLF and pandas' quotes are handled.
Test(metadata, good_rows) {
    const char *p = fx_text("meta.csv", "audio_csv,openface_csv,seq_len,masking_list\n"
                                        "# a comment\n"
                                        "\n"
                                        "trill/id00012/vid/00001.csv,of/id00012/vid/00001.csv,50,[1 2]\r\n"
                                        "  ./spk7/u1.csv , spk7/u1_of.csv \n"
                                        "\"quoted/q.csv\",\"quoted/q_of.csv\"\n"
                                        "/abs/dir/u.npy,/abs/dir/u_of.npy\n"
                                        "top.npy,top_of.npy\n");
    CorpusRow *rows;
    size_t n;
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
    cr_expect_null(columns, "the paper's rows carry no labels");
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
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
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
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(test_path("none.csv"), &rows, &n, &columns, &err), -1);
    expect_phrase(err.msg, "none.csv: cannot open: No such file or directory");
    cr_expect_null(rows);
    cr_expect_null(columns);
    const char *p = fx_text("empty.csv", "audio,video,emotion\n# nothing\n\n");
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), -1);
    expect_phrase(err.msg, "empty.csv: no rows");
    cr_expect_null(columns);
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

// ---- a header naming its columns ----

// id and speaker from their columns, the further columns as labels (re-quoted as labels.csv takes them), quoted
// fields holding commas, quotes and a line break, blanks around fields, a comment before the header.
Test(metadata, header_with_id_speaker_and_label_columns) {
    const char *p = fx_text("hm.csv", "# labels of a small corpus\n"
                                      "id,audio,speaker,video,emotion,\"note, free\"\n"
                                      "u1,a/x.npy,spk1,a/x_v.npy,ANG,\"said \"\"hi\"\", then left\"\n"
                                      " u2 , \"dir,1/y.npy\" , \"s,2\" ,dir/y_v.npy,HAP,\r\n"
                                      "u3,/abs/z.npy,spk1,/abs/z_v.npy,,\"two\n"
                                      "lines\"\n"
                                      "u4,b.npy,spk3,b_v.npy,SAD,ok\n");
    CorpusRow *rows;
    size_t n;
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
    cr_expect_str_eq(columns, "emotion,\"note, free\"");
    cr_assert_eq(n, 4);
    const char *dir = test_path("");
    struct {
        const char *audio, *video, *id, *speaker, *labels;
        long line;
    } want[] = {
        {"a/x.npy", "a/x_v.npy", "u1", "spk1", "ANG,\"said \"\"hi\"\", then left\"", 3},
        {"dir,1/y.npy", "dir/y_v.npy", "u2", "s,2", "HAP,", 4},
        {"/abs/z.npy", "/abs/z_v.npy", "u3", "spk1", ",\"two\nlines\"", 5},
        {"b.npy", "b_v.npy", "u4", "spk3", "SAD,ok", 7},
    };
    for (size_t i = 0; i < n; i++) {
        char audio[600], video[600];
        int abs = want[i].audio[0] == '/';
        snprintf(audio, sizeof audio, "%s%s", abs ? "" : dir, want[i].audio);
        snprintf(video, sizeof video, "%s%s", abs ? "" : dir, want[i].video);
        cr_expect_null(rows[i].bad, "row %zu: %s", i, rows[i].bad);
        cr_expect_str_eq(rows[i].audio, audio);
        cr_expect_str_eq(rows[i].video, video);
        cr_expect_str_eq(rows[i].id, want[i].id);
        cr_expect_str_eq(rows[i].speaker, want[i].speaker);
        cr_expect_str_eq(rows[i].labels, want[i].labels);
        cr_expect_eq(rows[i].line, want[i].line, "row %zu: line %ld", i, rows[i].line);
    }
    corpus_rows_free(rows, n);
    free(columns);
}

// Without id and speaker columns the paper's rules give them; a header of audio and video alone has no labels.
Test(metadata, header_without_id_or_speaker) {
    const char *p = fx_text("hr.csv", "audio,video,emotion\n"
                                      "trill/id00012/v/00001.csv,of/id00012/v/00001.csv,ANG\n");
    CorpusRow *rows;
    size_t n;
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(columns, "emotion");
    cr_expect_str_eq(rows[0].id, "trill/id00012/v/00001");
    cr_expect_str_eq(rows[0].speaker, "id00012");
    cr_expect_str_eq(rows[0].labels, "ANG");
    corpus_rows_free(rows, n);
    free(columns);

    p = fx_text("hv.csv", "video,audio\nv.npy,a.npy\n");
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(columns, "");
    cr_expect_str_eq(rows[0].id, "a");
    cr_expect(strstr(rows[0].audio, "/a.npy") && strstr(rows[0].video, "/v.npy"), "columns swapped");
    cr_expect_str_eq(rows[0].labels, "");
    corpus_rows_free(rows, n);
    free(columns);
}

// A header naming audio or video must name both, each column once: the whole file is refused in one line.
Test(metadata, header_errors_are_one_line) {
    const char *cases[][2] = {
        {"audio,vid,emotion\na.npy,v.npy,ANG\n", "h1.csv:1: the header names 'audio' but no 'video' column"},
        {"# c\nid,video\nu,v.npy\n", "h2.csv:2: the header names 'video' but no 'audio' column"},
        {"audio,video,x,x\na,b,c,d\n", "h3.csv:1: the header names column 'x' twice"},
        {"audio,video,,x\na,b,c,d\n", "h4.csv:1: header column 3 has no name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[16];
        snprintf(name, sizeof name, "h%zu.csv", i + 1);
        const char *p = fx_text(name, cases[i][0]);
        CorpusRow *rows;
        size_t n;
        char *columns;
        AvtErr err;
        cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), -1, "%s accepted", name);
        cr_expect_null(rows);
        cr_expect_null(columns);
        expect_phrase(err.msg, cases[i][1]);
    }
}

// Under a header each row is checked against it; bad rows stay in the list with "PATH:LINE: why".
Test(metadata, header_bad_rows_name_file_and_line) {
    const char *p = fx_text("hb.csv", "id,audio,video,speaker,emotion\n"
                                      "u1,a.npy,b.npy,s1,ANG\n"
                                      "u2,a2.npy,b2.npy,s1\n"
                                      "u3,a3.npy,b3.npy,s1,ANG,extra\n"
                                      "u4,,b4.npy,s1,HAP\n"
                                      ",a5.npy,b5.npy,s1,HAP\n"
                                      "u6,a6.npy,b6.npy,,HAP\n"
                                      "u7,\"a7\".npy,b7.npy,s1,HAP\n"
                                      "u1,a8.npy,b8.npy,s2,SAD\n"
                                      "u9,a9.npy,b9.npy,s1,SAD\n"
                                      "u10,\"a10.npy,b10.npy,s1,SAD\n");
    CorpusRow *rows;
    size_t n;
    char *columns;
    AvtErr err;
    cr_assert_eq(metadata_read(p, &rows, &n, &columns, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 10);
    const char *why[] = {NULL,
                         "3: expected 5 fields as the header, got 4",
                         "4: expected 5 fields as the header, got 6",
                         "5: empty audio path",
                         "6: empty id",
                         "7: empty speaker",
                         "8: malformed quoting",
                         "9: duplicate utterance id 'u1' (first on line 2)",
                         NULL,
                         "11: malformed quoting"};
    char where[600];
    for (size_t i = 0; i < n; i++) {
        if (!why[i]) {
            cr_expect_null(rows[i].bad, "row %zu: %s", i, rows[i].bad);
            continue;
        }
        cr_assert_not_null(rows[i].bad, "row %zu is not bad", i);
        snprintf(where, sizeof where, "%s:%s", p, why[i]);
        expect_phrase(rows[i].bad, where);
    }
    corpus_rows_free(rows, n);
    free(columns);
}

// What corpus_csv_field writes, corpus_csv_read and corpus_csv_split read back (a line break inside quotes joins
// the lines of one record).
Test(metadata, csv_reader_reads_what_the_writer_writes) {
    const char *fields[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "", " padded "};
    const size_t nf = sizeof fields / sizeof *fields;
    const char *p = test_path("rt.csv");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    for (int rec = 0; rec < 2; rec++) {
        for (size_t k = 0; k < nf; k++) {
            if (k) fputc(',', f);
            corpus_csv_field(f, fields[k]);
        }
        fputs("\r\n", f);
    }
    fclose(f);
    f = fopen(p, "r");
    cr_assert_not_null(f);
    char *rec = NULL;
    size_t cap = 0;
    long lineno = 0;
    CsvFields fl = {0};
    for (long want_line = 2; want_line <= 4; want_line += 2) {
        cr_assert_eq(corpus_csv_read(f, &rec, &cap, &lineno), 0);
        cr_expect_eq(lineno, want_line);
        cr_assert_eq(corpus_csv_split(rec, &fl), 0);
        cr_assert_eq(fl.n, nf);
        for (size_t k = 0; k + 1 < nf; k++) cr_expect_str_eq(fl.v[k], fields[k]);
        cr_expect_str_eq(fl.v[nf - 1], "padded", "unquoted fields are trimmed");
    }
    cr_expect_eq(corpus_csv_read(f, &rec, &cap, &lineno), -1);
    fclose(f);
    char bad1[] = "\"open,b", bad2[] = "\"a\"x,b", ok[] = "x\"y\",\"\"";
    cr_expect_eq(corpus_csv_split(bad1, &fl), -1);
    cr_expect_eq(corpus_csv_split(bad2, &fl), -1);
    cr_assert_eq(corpus_csv_split(ok, &fl), 0);
    cr_assert_eq(fl.n, 2);
    cr_expect_str_eq(fl.v[0], "x\"y\"", "a quote inside an unquoted field is text");
    cr_expect_str_eq(fl.v[1], "");
    free(rec);
    free(fl.v);
}

// labels.csv: "id,speaker[,columns]" and the stored rows only, with or without label columns.
Test(metadata, labels_csv_writer) {
    CorpusRow rows[3] = {{.id = "u1", .speaker = "s1", .labels = "ANG,\"a, b\"", .stored = 1},
                         {.id = "u2", .speaker = "s1", .labels = "HAP,x"},
                         {.id = "u,3", .speaker = "s2", .labels = ",", .stored = 1}};
    AvtErr err;
    const char *p = test_path("labels.csv");
    cr_assert_eq(corpus_write_labels(p, "emotion,note", rows, 3, &err), 0, "%s", err.msg);
    char *got = test_slurp(p, NULL);
    cr_expect_str_eq(got, "id,speaker,emotion,note\nu1,s1,ANG,\"a, b\"\n\"u,3\",s2,,\n");
    free(got);
    cr_assert_eq(corpus_write_labels(p, "", rows, 3, &err), 0, "%s", err.msg);
    got = test_slurp(p, NULL);
    cr_expect_str_eq(got, "id,speaker\nu1,s1\n\"u,3\",s2\n");
    free(got);
    cr_expect_eq(corpus_write_labels(test_path("none/labels.csv"), NULL, rows, 3, &err), -1);
    expect_phrase(err.msg, "none/labels.csv: cannot create");
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
