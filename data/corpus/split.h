// The validation split of a corpus store: which utterances are held out. It depends on the seed only, neither on
// the store's row order nor on its speaker indices: items are ranked by a Philox hash of (seed, name) and taken
// into validation in that order until it holds >= val_fraction of the utterances, the last item always left to
// training.
//   two or more speakers: the items are speakers, each goes wholly to one side (speaker-independent validation);
//                         with val_fraction > 0 each side gets at least one speaker
//   one speaker:          the items are its utterances (by id); with val_fraction > 0 and two or more utterances,
//                         validation gets at least one (not speaker-independent: the caller says so)
//   val_fraction 0:       no split, every utterance trains
#ifndef AVT_SPLIT_H
#define AVT_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include "data/corpus/store.h"

typedef struct {
    size_t *train, *val;   // (n_train), (n_val) utterance indices, ascending
    size_t n_train, n_val;
    uint32_t val_speakers; // speakers held out wholly (0 when by_utterance)
    int by_utterance;      // 1: the store has one speaker and validation holds some of its utterances
} StoreSplit;

void store_split(const Store *s, double val_fraction, uint64_t seed, StoreSplit *sp);
void store_split_free(StoreSplit *sp);

#endif
