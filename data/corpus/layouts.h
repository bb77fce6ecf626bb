// Dataset trees as the rows `avt prepare --layout` packs into a store: per layout, the media files taken, each
// one's speaker and the label fields its name (and, for MSP-IMPROV, ROOT/Evaluation.txt) carries, and labels.csv.
// Utterance id: the file's path relative to ROOT without its extension.
#ifndef AVT_LAYOUTS_H
#define AVT_LAYOUTS_H

#include <stddef.h>
#include "base/common.h"
#include "data/corpus/metadata.h"

// The layouts, as `avt prepare --help` describes them.
#define LAYOUTS_HELP                                                                                                \
    "Per layout: the files taken, the speaker, and the label fields the names carry, written to DIR/labels.csv\n"   \
    "(header id,speaker,<fields>; one row per stored utterance, in store order):\n"                                 \
    "  voxceleb2  ROOT/{dev,test}/mp4/idNNNNN/VIDEOID/NNNNN.mp4; speaker idNNNNN; fields split,video\n"             \
    "  cremad     ROOT/VideoFlash/ActorID_Sentence_Emotion_Level.flv (e.g. 1001_DFA_ANG_XX); speaker ActorID;\n"    \
    "             fields sentence,emotion (ANG DIS FEA HAP NEU SAD),level (LO MD HI XX); the audio is the\n"        \
    "             16 kHz original ROOT/AudioWAV/NAME.wav when present, else the FLV's own\n"                        \
    "  ravdess    ROOT/Actor_NN/MM-VV-EE-II-SS-RR-NN.mp4 (NN: the directory's actor), full-AV files only\n"         \
    "             (modality 01; video-only 02 and audio-only 03 are passed over); speaker Actor_NN; fields\n"       \
    "             channel (speech song),emotion (neutral calm happy sad angry fearful disgust surprised),\n"        \
    "             intensity (normal strong),statement (1 2),repetition (1 2)\n"                                     \
    "  mspimprov  ROOT/**/MSP-IMPROV-S01A-F01-P-FM01.avi (any folder layout), audio from the .wav beside it when\n" \
    "             present; speaker F01 (gender + session); fields session,sentence,emotion (target A H S N),\n"     \
    "             condition (P R S T),turn, and from ROOT/Evaluation.txt when present category (A H S N O X),\n"    \
    "             arousal,valence,dominance (means of the raters, 1-5)\n"                                           \
    "Utterance id: the path relative to ROOT without its extension.\n"

typedef struct Layout Layout;

// voxceleb2, cremad, ravdess or mspimprov; NULL for another name.
const Layout *layout_find(const char *name);

// The layout's files under root (regular files, symbolic links followed, dot files passed over), sorted by path
// (the store's order): one row each, audio = the media file, wav = its separate original audio when the layout
// has one and it exists. A file whose name breaks the layout's pattern, or whose id is longer than STORE_ID_MAX,
// is a row with bad = "MEDIA: why". -1 with err naming root when it cannot be read or holds no file of the layout.
int layout_read(const Layout *L, const char *root, CorpusRow **rows, size_t *n, AvtErr *err);

// labels.csv, written atomically: "id,speaker,<the layout's fields>", then the stored rows in order.
int layout_write_labels(const Layout *L, const char *path, const CorpusRow *rows, size_t n, AvtErr *err);

#endif
