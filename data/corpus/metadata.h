// Utterance lists: the rows `avt prepare` packs into a store (here from the paper's pretraining metadata CSV;
// data/corpus/layouts.h makes them from a dataset tree), avt embed's pairs list and its index.csv, and the rules
// they share: an utterance's id and speaker, and CSV quoting.
#ifndef AVT_METADATA_H
#define AVT_METADATA_H

#include <stddef.h>
#include <stdio.h>
#include "base/common.h"
#include "data/corpus/store.h"

// One utterance to prepare.
typedef struct {
    char *audio, *video; // resolved paths (a layout: the media file in audio, video NULL)
    char *id, *speaker;
    char *labels;        // a layout's or a metadata header's label fields, CSV fields comma-joined (a labels.csv
                         // row after id,speaker), else NULL
    char *wav;           // a layout: the media's separate original audio (CREMA-D's AudioWAV/NAME.wav), or NULL
    long line;           // in the metadata file (0 for a layout)
    char *bad;           // why the row is skipped before reading (malformed, duplicate id): one line naming the file
                         // (and line), else NULL
    int stored;          // set by the caller once the utterance is in the store: labels.csv lists those rows
} CorpusRow;
void corpus_rows_free(CorpusRow *rows, size_t n);

// A path as an utterance id: without leading "/" or "./" and without the file's extension.
char *corpus_id(const char *path);
// A VoxCeleb2 identity: "id" and one or more digits, the whole of s[0, len).
int corpus_is_voxceleb2_id(const char *s, size_t len);
// s as a CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
void corpus_csv_field(FILE *f, const char *s);
// Reading what corpus_csv_field writes (and pandas): one record of f into *buf (getline's buffer, reallocated as
// needed; free it when done), without its line ending: a line, joined with the next ones while a quoted field is
// open. *lineno advances by the lines read. -1 at the end of the file or on a read error (check ferror).
int corpus_csv_read(FILE *f, char **buf, size_t *cap, long *lineno);
// A record's fields, split in place (free v when done).
typedef struct {
    char **v;
    size_t n, cap;
} CsvFields;
// Splits rec (overwriting it) at the commas outside quotes. Each field is trimmed of blanks; one that starts with
// '"' is quoted: up to the closing quote, "" standing for one quote. -1 when a quote is left open or anything but
// blanks follows a closing one.
int corpus_csv_split(char *rec, CsvFields *f);

// The paper's metadata rows: audio_csv,openface_csv[,seq_len[,masking_list]] (seq_len and masking_list ignored:
// pretraining crops and masks on the fly). Blank lines and lines starting with '#' are passed over; fields may be
// quoted (pandas quotes those holding commas). Relative paths are relative to the metadata file's directory. Id: the
// audio path as written, as corpus_id. Speaker: the first directory of the audio path that is a VoxCeleb2 identity,
// else the audio file's directory.
// A first row with a column named "audio" or "video" is a header, which must name both: every row then has its
// fields; a column "id" or "speaker" gives those (instead of the rules above), and each row's further fields are its
// labels (CSV fields, comma-joined, as labels.csv takes them after id,speaker). *columns gets the further columns'
// names the same way ("" when there are none; free it), or NULL without such a header. Otherwise a first row whose
// two paths hold no '.' is a header and is passed over (the paper's "audio_csv,openface_csv,...").
// Every row is returned: a malformed one (quoting, field count, an empty path, id or speaker), a duplicate id (the
// first row keeps it) or an id longer than STORE_ID_MAX has bad set to "PATH:LINE: why". -1 (err naming the file,
// and the line for a bad header) when it cannot be read, its header lacks audio or video or names a column twice or
// leaves one unnamed, or it holds no row.
int metadata_read(const char *path, CorpusRow **rows, size_t *n, char **columns, AvtErr *err);
// The same, as `avt prepare --help` says it.
#define METADATA_HELP                                                                                                  \
    "METADATA rows are the paper's: audio_csv,openface_csv[,seq_len[,masking_list]]; seq_len and masking_list are\n"   \
    "ignored (pretraining crops and masks on the fly). Lines starting with '#' are comments; a first row whose two\n"  \
    "paths hold no '.' is a header. Relative paths are relative to METADATA's directory.\n"                            \
    "Or a first row naming columns audio and video (the paths) is a header: columns id and speaker then give those,\n" \
    "and any further columns go to DIR/labels.csv (id,speaker,<further columns>; one row per stored utterance).\n"     \
    "Audio: headerless CSV (one 200 ms step per row) or .npy; video: OpenFace 2.x CSV (every 6th row, the 17\n"        \
    "AU*_r columns) or .npy. NaN rows are dropped per stream, then both are cut to the common length.\n"               \
    "Utterance id: the audio path relative to METADATA's directory, without its extension. Speaker: the first\n"       \
    "path component of the audio path that is a VoxCeleb2 identity (id + digits), else the audio file's directory.\n"

// labels.csv, written atomically: "id,speaker[,columns]", then "id,speaker[,labels]" for each stored row, in order
// (columns and each row's labels: CSV fields, comma-joined; "" or NULL columns: none).
int corpus_write_labels(const char *path, const char *columns, const CorpusRow *rows, size_t n, AvtErr *err);

// avt embed --list: one pair a line, audio,video[,name] (paths as written); '#' lines are comments and a first
// line "audio,video" or "audio,video,name" is a header. name (default: the audio file's name without its
// extension) must be a plain file name, and unique: two pairs would write one DIR/name.npy. -1 with err naming
// the file and line otherwise.
typedef struct {
    char *audio, *video, *name;
} EmbedPair;
int embed_pairs_read(const char *path, EmbedPair **pairs, size_t *n, AvtErr *err);
void embed_pairs_free(EmbedPair *pairs, size_t n);

// avt embed --data: utterance i's output name, its id with '/' as '_' (a plain file name), for every utterance of
// the store; NULL with err naming store_dir when two ids give one name. Free each name and the array.
char **embed_store_names(const Store *s, const char *store_dir, AvtErr *err);
// DIR/index.csv: "file,id,speaker,steps", one row per utterance (file = name.npy), written atomically.
int embed_index_write(const char *path, const Store *s, char *const *names, AvtErr *err);

#endif
