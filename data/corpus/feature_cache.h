// The resumable feature cache of `avt prepare --layout`: one file per finished media file, so a rerun (after an
// interruption, or with new files) computes only what is not there.
//
// Entry file DIR/<16 hex digits>.feat, every integer little-endian:
//   char[8] "AVTFCACH", u32 version (2), i32 T, d_a, d_v, u32 path length, u32 CRC-32 (data/corpus/store.h) of the
//   audio and video bytes, the path relative to the dataset root, audio (T, d_a) f32, video (T, d_v) f32
// The name hashes (relative path, the media file's size and mtime, and its separate audio file's), so an edited or
// replaced file misses; the stored path guards the (unlikely) hash collision, the size and the CRC a damaged file.
// Version 2 added the CRC, and entries written before prepare rejected streams whose durations disagree
// (data/media/av_features.h): version-1 entries miss, and are recomputed.
#ifndef AVT_FEATURE_CACHE_H
#define AVT_FEATURE_CACHE_H

#include "base/common.h"
#include "data/corpus/features.h"

// *entry (malloc'd): the entry file in dir for media file `media` (its path relative to the dataset root: rel)
// with its separate audio file `wav`, or NULL when it has none. -1 with err naming a file that cannot be stat'ed.
int feature_cache_entry(char **entry, const char *dir, const char *rel, const char *media, const char *wav,
                        AvtErr *err);
// 0 with the features in a and v (free them); -1 with err saying why when the entry is missing or is not a whole,
// intact entry for rel with these widths (the caller then recomputes it).
int feature_cache_read(const char *entry, const char *rel, int d_a, int d_v, Features *a, Features *v, AvtErr *err);
// Writes the entry atomically (base/common.h); a and v must have the same T.
int feature_cache_write(const char *entry, const char *rel, const Features *a, const Features *v, AvtErr *err);

#endif
